"""The test views of DECISIONS §4 for one video (N clips x M crops), defined once for evaluation during
training, the runtime's `--protocol eval` and the examples of a label bank (a time range of a file, or frames
recorded from a camera). Torch-free."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from .decode import VideoInfo, read_frames
from .preprocess import PreprocessCfg, crop_positions, prepare_clip
from .sampling import SamplingCfg, eval_view_indices


def sampled_views(
    times: np.ndarray, take: Callable[[np.ndarray], np.ndarray], sampling: SamplingCfg, pre: PreprocessCfg
) -> np.ndarray:
    """uint8 (N*M, T, S, S, 3): the N test clips x M crops of the frames at `times` (seconds, increasing);
    `take(indices)` returns those frames (len(indices), H, W, 3) uint8 RGB."""
    views = []
    for indices in eval_view_indices(sampling, np.asarray(times, dtype=np.float64)):
        frames = take(indices)
        views += [prepare_clip(frames, pre, crop) for crop in crop_positions(sampling.test_crops)]
    return np.stack(views)


def frames_in_range(times: np.ndarray, start_s: float | None = None, end_s: float | None = None) -> slice:
    """The frames whose time (seconds, increasing) lies in [`start_s`, `end_s`] (open where None), as a slice of
    `times`. Raises ValueError when the range holds no frame."""
    if start_s is None and end_s is None:
        return slice(0, len(times))
    inside = np.flatnonzero((times >= (start_s or 0.0) - 1e-6) & (times <= (np.inf if end_s is None else end_s) + 1e-6))
    if inside.size == 0:
        asked = f"after {start_s:.2f} s" if end_s is None else f"between {start_s or 0:.2f} and {end_s:.2f} s"
        raise ValueError(f"no frame {asked} (the video has frames from {times[0]:.2f} to {times[-1]:.2f} s)")
    return slice(int(inside[0]), int(inside[-1]) + 1)


def eval_views(
    path: str | os.PathLike,
    info: VideoInfo,
    sampling: SamplingCfg,
    pre: PreprocessCfg,
    start_s: float | None = None,
    end_s: float | None = None,
) -> np.ndarray:
    """uint8 (N*M, T, S, S, 3): for each of the N test clips, its M crops — of the whole file, or of its frames
    whose time lies in [`start_s`, `end_s`] (seconds). Raises ValueError when that range holds no frame."""
    times = info.times()
    kept = frames_in_range(times, start_s, end_s)
    return sampled_views(times[kept], lambda idx: read_frames(path, idx + kept.start, info), sampling, pre)
