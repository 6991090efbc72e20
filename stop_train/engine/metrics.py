"""Classification metrics from scores (numpy): top-1/top-5, mean class accuracy, confusion matrix."""

from __future__ import annotations

import numpy as np


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K) counts, rows = true class, columns = predicted class."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (labels, preds), 1)
    return cm


def classification_metrics(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """scores (N, K), labels (N,) -> top1, top5 (top-k for k = min(5, K)), mean_class_acc (over classes present)."""
    n, k = scores.shape
    if n == 0:
        return {"top1": float("nan"), "top5": float("nan"), "mean_class_acc": float("nan"), "count": 0}
    order = np.argsort(-scores, axis=1)
    top1 = order[:, 0] == labels
    top5 = (order[:, : min(5, k)] == labels[:, None]).any(axis=1)
    cm = confusion_matrix(labels, order[:, 0], k)
    present = cm.sum(axis=1) > 0
    per_class = np.diag(cm)[present] / cm.sum(axis=1)[present]
    return {
        "top1": float(top1.mean()),
        "top5": float(top5.mean()),
        "mean_class_acc": float(per_class.mean()),
        "count": int(n),
    }
