"""Display widgets: the video with the spatial-mask heatmap, the top-k bars, and the temporal plot."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QGridLayout, QLabel, QProgressBar, QWidget


class VideoView(QWidget):
    """Paints the newest frame scaled to fit, and over the model's centre crop the spatial mask as a heatmap."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumSize(320, 240)
        self._image: QImage | None = None
        self._mask: np.ndarray | None = None  # (g, g) bool, of the clip's newest frame
        self.heatmap = True
        self.message = "open a video, a camera or a stream"

    def set_frame(self, frame: np.ndarray) -> None:
        h, w, _ = frame.shape
        self._image = QImage(frame.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
        self.update()

    def set_mask(self, mask: np.ndarray | None) -> None:
        self._mask = mask
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt name)
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(20, 20, 20))
        if self._image is None:
            p.setPen(QColor(200, 200, 200))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.message)
            return
        iw, ih = self._image.width(), self._image.height()
        scale = min(self.width() / iw, self.height() / ih)
        target = QRectF((self.width() - iw * scale) / 2, (self.height() - ih * scale) / 2, iw * scale, ih * scale)
        p.drawImage(target, self._image)
        if self.heatmap and self._mask is not None:
            side = min(iw, ih) * scale  # the model sees the centre square (short side resized, centre crop)
            x0 = target.x() + (target.width() - side) / 2
            y0 = target.y() + (target.height() - side) / 2
            g = self._mask.shape[0]
            cell = side / g
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(255, 60, 0, 110))
            for r, c in zip(*np.nonzero(self._mask)):
                p.drawRect(QRectF(x0 + c * cell, y0 + r * cell, cell, cell))
            p.setPen(QPen(QColor(255, 255, 255, 120), 1))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(QRectF(x0, y0, side, side))


class TopK(QWidget):
    """k labels with score bars."""

    def __init__(self, k: int = 5, parent=None):
        super().__init__(parent)
        layout = QGridLayout(self)
        self.names = [QLabel("-") for _ in range(k)]
        self.bars = [QProgressBar() for _ in range(k)]
        for i, (name, bar) in enumerate(zip(self.names, self.bars)):
            bar.setRange(0, 1000)
            bar.setTextVisible(False)
            layout.addWidget(name, i, 0)
            layout.addWidget(bar, i, 1)
        layout.setColumnStretch(1, 1)

    def show_scores(self, scores: np.ndarray, labels: list[str]) -> None:
        order = np.argsort(-scores)[: len(self.names)]
        for slot, i in enumerate(order):
            self.names[slot].setText(f"{labels[i]}  {scores[i]:.2f}")
            self.bars[slot].setValue(int(round(float(scores[i]) * 1000)))

    def top_label(self) -> str:
        return self.names[0].text().rsplit("  ", 1)[0]


class TemporalPlot(QWidget):
    """Per-gap variation with prompt counts (dynamic) or per-frame weights (official), as bars."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumHeight(90)
        self.values: np.ndarray | None = None
        self.counts: np.ndarray | None = None
        self.title = ""

    def show_values(self, title: str, values: np.ndarray, counts: np.ndarray | None = None) -> None:
        self.title, self.values, self.counts = title, np.asarray(values, float), counts
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(245, 245, 245))
        p.setPen(QColor(60, 60, 60))
        p.drawText(6, 14, self.title or "temporal prompts")
        if self.values is None or not len(self.values):
            return
        top, bottom = 20, self.height() - 16
        peak = max(float(self.values.max()), 1e-9)
        width = (self.width() - 12) / len(self.values)
        for i, v in enumerate(self.values):
            h = (bottom - top) * float(v) / peak
            p.fillRect(QRectF(6 + i * width + 2, bottom - h, width - 4, h), QColor(40, 110, 200))
            if self.counts is not None:
                p.drawText(QRectF(6 + i * width, bottom, width, 14), Qt.AlignmentFlag.AlignCenter, str(int(self.counts[i])))
