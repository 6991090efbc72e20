"""Frame samplers of DECISIONS §4 (torch-free): `segments` (TSN) and `interval` (fixed time step).

Every function returns frame indices (int64) in time order; clips shorter than asked are sampled with
repetition.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

SAMPLERS = ("segments", "interval")


@dataclass(frozen=True)
class SamplingCfg:
    sampler: str = "segments"  # 'segments' or 'interval'
    frames: int = 8  # T
    frame_interval_s: float = 0.5  # interval sampler: seconds between sampled frames
    test_clips: int = 1  # N test views along time
    test_crops: int = 1  # M test crops (1: centre, 3: centre and both ends of the long side)

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"sampler={self.sampler!r} is not one of {', '.join(SAMPLERS)}")
        if self.test_crops not in (1, 3):
            raise ConfigError("test_crops must be 1 or 3")
        if self.frames < 1 or self.test_clips < 1 or self.frame_interval_s <= 0:
            raise ConfigError("frames and test_clips must be >= 1, frame_interval_s > 0")


def segment_indices(
    num_frames: int, frames: int, rng: np.random.Generator | None = None, offset: float = 0.5
) -> np.ndarray:
    """TSN: `frames` equal segments; a random position in each (training, `rng` given) or `offset` of each."""
    edges = np.linspace(0.0, num_frames, frames + 1)
    pos = rng.random(frames) if rng is not None else np.full(frames, offset)
    idx = np.floor(edges[:-1] + pos * (edges[1:] - edges[:-1])).astype(np.int64)
    return np.clip(idx, 0, num_frames - 1)


def interval_indices(
    times: np.ndarray, frames: int, interval_s: float, rng: np.random.Generator | None = None, start: float = 0.5
) -> np.ndarray:
    """`frames` frames `interval_s` seconds apart, by the frames' own times (`times`: seconds of each frame,
    increasing; variable frame rate included): for each target time the nearest frame. The window starts at
    random (training) or at fraction `start` of the room left (0.5: centred). Windows longer than the clip
    repeat its last frame."""
    times = np.asarray(times, dtype=np.float64)
    span = (frames - 1) * interval_s
    room = max(0.0, times[-1] - times[0] - span)
    first = times[0] + (rng.random() if rng is not None else start) * room
    targets = first + np.arange(frames) * interval_s
    position = np.interp(targets, times, np.arange(len(times), dtype=np.float64))  # fractional frame index
    return np.clip(np.round(position), 0, len(times) - 1).astype(np.int64)


def train_indices(cfg: SamplingCfg, times: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One training clip of a video whose frames are at `times` (seconds)."""
    if cfg.sampler == "segments":
        return segment_indices(len(times), cfg.frames, rng)
    return interval_indices(times, cfg.frames, cfg.frame_interval_s, rng)


def eval_view_indices(cfg: SamplingCfg, times: np.ndarray) -> list[np.ndarray]:
    """The N test clips of a video whose frames are at `times` (seconds): segments take offset (n + 0.5)/N in
    every segment; interval windows spread evenly."""
    n = cfg.test_clips
    if cfg.sampler == "segments":
        return [segment_indices(len(times), cfg.frames, offset=(i + 0.5) / n) for i in range(n)]
    starts = [0.5] if n == 1 else [i / (n - 1) for i in range(n)]
    return [interval_indices(times, cfg.frames, cfg.frame_interval_s, start=s) for s in starts]
