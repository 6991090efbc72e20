"""Display widgets: the video with the spatial-mask heatmap, the top-k bars, the temporal plot, the seek bar
and a label that elides instead of widening its panel."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen
from PySide6.QtWidgets import (
    QGridLayout,
    QLabel,
    QProgressBar,
    QSizePolicy,
    QSlider,
    QStyle,
    QStyleOptionSlider,
    QWidget,
)


class ElidedLabel(QLabel):
    """A one-line label that shows as much of its text as fits ("Playing guit…") and the whole text as its
    tooltip; it never asks its layout for more width than `min_chars` characters."""

    def __init__(self, text: str = "", min_chars: int = 8, parent=None):
        super().__init__(parent)
        self._full = ""
        self._min_chars = min_chars
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt name)
        self._full = text
        self.setToolTip(text if text else "")
        self._elide()

    def full_text(self) -> str:
        return self._full

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(self.fontMetrics().averageCharWidth() * self._min_chars, super().minimumSizeHint().height())

    def sizeHint(self) -> QSize:  # noqa: N802
        return self.minimumSizeHint()

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        super().setText(self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, max(0, self.width())))


class SeekSlider(QSlider):
    """A horizontal seek bar in milliseconds that jumps to where it is clicked (Qt's default steps a page) and
    then drags from there; `seekRequested(ms)` on a click and on release, `scrubbed(ms)` while dragging."""

    seekRequested = Signal(int)
    scrubbed = Signal(int)

    def __init__(self, parent=None):
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.sliderMoved.connect(self.scrubbed)
        self.sliderReleased.connect(lambda: self.seekRequested.emit(self.value()))
        self.marks: list[tuple[int, int]] = []  # (start ms, end ms) spans drawn over the groove (search hits)

    def set_marks(self, spans: list[tuple[int, int]]) -> None:
        self.marks = list(spans)
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802
        super().paintEvent(event)
        if not self.marks or self.maximum() <= self.minimum():
            return
        opt = QStyleOptionSlider()
        self.initStyleOption(opt)
        handle = self.style().subControlRect(
            QStyle.ComplexControl.CC_Slider, opt, QStyle.SubControl.SC_SliderHandle, self
        )
        span = max(1, self.width() - handle.width())
        painter = QPainter(self)
        colour = QColor(self.palette().highlight().color())
        colour.setAlpha(150)
        h = max(4, self.height() // 4)
        for start, end in self.marks:
            x0 = QStyle.sliderPositionFromValue(self.minimum(), self.maximum(), start, span) + handle.width() // 2
            x1 = QStyle.sliderPositionFromValue(self.minimum(), self.maximum(), min(end, self.maximum()), span)
            painter.fillRect(x0, self.height() - h, max(3, x1 + handle.width() // 2 - x0), h, colour)
        painter.end()

    def mousePressEvent(self, event) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton and self.isEnabled():
            opt = QStyleOptionSlider()
            self.initStyleOption(opt)
            handle = self.style().subControlRect(
                QStyle.ComplexControl.CC_Slider, opt, QStyle.SubControl.SC_SliderHandle, self
            )
            if not handle.contains(event.position().toPoint()):
                span = max(1, self.width() - handle.width())
                x = int(event.position().x() - handle.width() / 2)
                value = QStyle.sliderValueFromPosition(self.minimum(), self.maximum(), x, span)
                self.setValue(value)
                self.seekRequested.emit(value)
        super().mousePressEvent(event)  # on the handle (now under the pointer): a drag starts


class VideoView(QWidget):
    """Paints the newest frame scaled to fit, and over the model's centre crop the spatial mask as a heatmap."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumSize(320, 240)
        self._image: QImage | None = None
        self._mask: np.ndarray | None = None  # (g, g) bool, of the clip's newest frame
        self.heatmap = True
        self.paused = False
        self.message = "open a video, a camera or a stream"

    def set_frame(self, frame: np.ndarray) -> None:
        h, w, _ = frame.shape
        self._image = QImage(frame.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
        self.update()

    def set_mask(self, mask: np.ndarray | None) -> None:
        self._mask = mask
        self.update()

    def clear(self, message: str) -> None:
        self._image, self._mask, self.message = None, None, message
        self.update()

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
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
        if self.paused:  # a badge, as players show it
            font = QFont(p.font())
            font.setPointSizeF(font.pointSizeF() * 1.4)
            font.setBold(True)
            p.setFont(font)
            badge = QRectF(12, 12, p.fontMetrics().horizontalAdvance("❚❚ paused") + 24, p.fontMetrics().height() + 12)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(0, 0, 0, 170))
            p.drawRoundedRect(badge, 6, 6)
            p.setPen(QColor(255, 255, 255))
            p.drawText(badge, Qt.AlignmentFlag.AlignCenter, "❚❚ paused")


class TopK(QWidget):
    """k labels (elided, full text as tooltip) with their scores and score bars; rows beyond the number of
    labels stay blank."""

    def __init__(self, k: int = 5, parent=None):
        super().__init__(parent)
        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.names = [ElidedLabel("-") for _ in range(k)]
        self.values = [QLabel("") for _ in range(k)]
        self.bars = [QProgressBar() for _ in range(k)]
        for i, (name, value, bar) in enumerate(zip(self.names, self.values, self.bars)):
            bar.setRange(0, 1000)
            bar.setTextVisible(False)
            bar.setMaximumHeight(14)
            value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            layout.addWidget(name, i, 0)
            layout.addWidget(value, i, 1)
            layout.addWidget(bar, i, 2)
        layout.setColumnStretch(0, 3)
        layout.setColumnStretch(2, 2)

    def show_scores(self, scores: np.ndarray, labels: list[str]) -> None:
        order = np.argsort(-scores)[: len(self.names)]
        for slot in range(len(self.names)):
            if slot < len(order):
                i = order[slot]
                self.names[slot].setText(labels[i])
                self.values[slot].setText(f"{scores[i]:.2f}")
                self.bars[slot].setValue(int(round(float(scores[i]) * 1000)))
            else:
                self.names[slot].setText("")
                self.values[slot].setText("")
                self.bars[slot].setValue(0)

    def clear(self) -> None:
        self.show_scores(np.zeros(0), [])

    def rows(self) -> list[tuple[str, str]]:
        """(label, score text) per row, as shown ('' for blank rows)."""
        return [(n.full_text(), v.text()) for n, v in zip(self.names, self.values)]

    def top_label(self) -> str:
        return self.names[0].full_text()


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
                p.drawText(
                    QRectF(6 + i * width, bottom, width, 14), Qt.AlignmentFlag.AlignCenter, str(int(self.counts[i]))
                )
