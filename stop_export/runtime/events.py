"""Scores over time -> action events: EMA smoothing, a threshold with hysteresis, a minimum duration.
Shared by `stop-recognize` and the app."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from stop_train.errors import ConfigError


@dataclass(frozen=True)
class EventCfg:
    smoothing: float = 0.5  # EMA weight of the newest scores (1 = no smoothing)
    on: float = 0.6  # smoothed score that starts an event
    off: float = 0.4  # smoothed score below which it ends (hysteresis: off <= on)
    min_duration_s: float = 1.0  # shorter events are dropped

    def __post_init__(self) -> None:
        if not 0 < self.smoothing <= 1:
            raise ConfigError("smoothing must lie in (0, 1]")
        if not 0 <= self.off <= self.on <= 1:
            raise ConfigError("thresholds need 0 <= off <= on <= 1")
        if self.min_duration_s < 0:
            raise ConfigError("min_duration_s must be >= 0")


@dataclass
class Event:
    label: str
    start_s: float
    end_s: float
    peak: float  # highest smoothed score during the event

    def to_dict(self) -> dict:
        return asdict(self)


class EventDetector:
    """Feed `update(t, scores)` per prediction; finished events come back as they end. `finish` closes the
    open ones where playback ends or jumps (end of a file, a loop, a seek) and starts the smoothing afresh.
    `stop-recognize` and the app drive this one class in the same order, so they report the same events."""

    def __init__(self, labels: list[str], cfg: EventCfg = EventCfg()):
        self.labels, self.cfg = list(labels), cfg
        self.smoothed: np.ndarray | None = None
        self._open: dict[int, Event] = {}

    def update(self, t: float, scores: np.ndarray) -> list[Event]:
        scores = np.asarray(scores, dtype=np.float64)
        if scores.shape != (len(self.labels),):
            raise ConfigError(f"expected {len(self.labels)} scores, got shape {scores.shape}")
        a = self.cfg.smoothing
        self.smoothed = scores.copy() if self.smoothed is None else a * scores + (1 - a) * self.smoothed
        done = []
        for k, s in enumerate(self.smoothed):
            event = self._open.get(k)
            if event is None and s >= self.cfg.on:
                self._open[k] = Event(self.labels[k], t, t, float(s))
            elif event is not None:
                event.end_s, event.peak = t, max(event.peak, float(s))
                if s < self.cfg.off:
                    done.extend(self._close(k))
        return done

    def finish(self, t: float | None = None) -> list[Event]:
        """Close every open event at `t` (the last frame's time; None: at its last prediction) and forget the
        smoothed scores: the next `update` starts afresh. Returns the events long enough to keep."""
        done = []
        for k in list(self._open):
            if t is not None:
                self._open[k].end_s = max(self._open[k].end_s, t)
            done.extend(self._close(k))
        self.smoothed = None
        return done

    def active(self) -> list[Event]:
        """Copies of the open (ongoing) events, end = their latest prediction so far."""
        return [replace(e) for e in self._open.values()]

    def _close(self, k: int) -> list[Event]:
        event = self._open.pop(k)
        return [event] if event.end_s - event.start_s >= self.cfg.min_duration_s else []
