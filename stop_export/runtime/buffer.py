"""The live clip buffer (DECISIONS §4): frames are pushed as they arrive; a clip is the last T frames
`frame_interval_s` apart, and a prediction falls due every `predict_every_s`."""

from __future__ import annotations

from collections import deque

import numpy as np

from stop_train.errors import ConfigError
from stop_train.video.preprocess import PreprocessCfg, prepare_clip


class ClipBuffer:
    """Keeps just enough pre-processed history for one clip; torch-free."""

    def __init__(self, frames: int, frame_interval_s: float, predict_every_s: float, preprocess: PreprocessCfg):
        if frames < 1 or frame_interval_s <= 0 or predict_every_s <= 0:
            raise ConfigError("frames >= 1, frame_interval_s > 0 and predict_every_s > 0 are required")
        self.frames, self.interval, self.every = frames, frame_interval_s, predict_every_s
        self.pre = preprocess
        self.span = (frames - 1) * frame_interval_s
        self._times: deque[float] = deque()
        self._images: deque[np.ndarray] = deque()
        self._last_prediction: float | None = None

    def push(self, frame: np.ndarray, t: float) -> None:
        """An RGB uint8 frame (H, W, 3) at time `t` seconds (increasing)."""
        if self._times and t <= self._times[-1]:
            return  # a repeated or out-of-order timestamp: keep the first frame seen for it
        if self._times and t - self._times[-1] > self.span + self.interval:  # a gap (a lost source): no history
            self._times.clear()
            self._images.clear()
        self._times.append(t)
        self._images.append(prepare_clip(frame[None], self.pre)[0])  # resize + centre crop once per frame
        horizon = t - self.span - self.interval  # one interval of slack for the nearest-frame lookup
        while len(self._times) > 1 and self._times[1] <= horizon:
            self._times.popleft()
            self._images.popleft()

    def clear(self) -> None:
        """Forget the history (a reopened source); the `predict_every_s` clock starts again too."""
        self._times.clear()
        self._images.clear()
        self._last_prediction = None

    @property
    def latest(self) -> float | None:
        """Time of the newest frame (None before the first)."""
        return self._times[-1] if self._times else None

    @property
    def ready(self) -> bool:
        """Enough history for a clip: the buffer spans (T-1) * frame_interval_s."""
        return bool(self._times) and self._times[-1] - self._times[0] >= self.span - 1e-6

    def due(self) -> bool:
        """A prediction is due: ready, and `predict_every_s` since the last one (by stream time)."""
        if not self.ready:
            return False
        return self._last_prediction is None or self._times[-1] - self._last_prediction >= self.every - 1e-6

    def clip(self) -> tuple[np.ndarray, float]:
        """(T, S, S, 3) uint8: for each target time now - k * interval the latest frame at or before it;
        returns the clip and its end time, and restarts the `predict_every_s` clock."""
        if not self._times:
            raise RuntimeError("the clip buffer is empty")
        times = np.fromiter(self._times, dtype=np.float64)
        now = times[-1]
        targets = now - self.interval * np.arange(self.frames - 1, -1, -1)
        idx = np.clip(np.searchsorted(times, targets + 1e-6, side="right") - 1, 0, len(times) - 1)
        self._last_prediction = now
        return np.stack([self._images[i] for i in idx]), float(now)
