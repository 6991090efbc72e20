"""Confusion-matrix picture (OpenCV, no plotting stack needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_confusion_png(cm: np.ndarray, classes: list[str], path: Path, cell: int | None = None) -> None:
    """Row-normalised confusion matrix as a heat map; class names drawn when there are few classes."""
    import cv2

    k = cm.shape[0]
    cell = cell or max(4, min(40, 800 // max(1, k)))
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=np.float64), where=rows > 0)
    heat = cv2.applyColorMap((norm * 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS)
    heat = cv2.resize(heat, (k * cell, k * cell), interpolation=cv2.INTER_NEAREST)
    margin = 160 if k <= 30 else 0
    canvas = np.full((k * cell + margin, k * cell + margin, 3), 255, dtype=np.uint8)
    canvas[margin:, margin:] = heat
    if margin:
        for i, name in enumerate(classes):
            y = margin + i * cell + cell // 2 + 4
            cv2.putText(canvas, name[:22], (4, y), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
            if cell >= 12:
                cv2.putText(
                    canvas,
                    f"{norm[i, i]:.2f}",
                    (margin + i * cell + 2, y),
                    cv2.FONT_HERSHEY_SIMPLEX,
                    0.3,
                    (255, 255, 255),
                    1,
                    cv2.LINE_AA,
                )
        cv2.putText(
            canvas,
            "rows: true class, columns: predicted",
            (4, 16),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), canvas)
