"""The test views of DECISIONS §4 for one video (N clips x M crops), defined once for evaluation during
training and for the runtime's `--protocol eval`. Torch-free."""
from __future__ import annotations

import os

import numpy as np

from .decode import VideoInfo, read_frames
from .preprocess import PreprocessCfg, crop_positions, prepare_clip
from .sampling import SamplingCfg, eval_view_indices


def eval_views(path: str | os.PathLike, info: VideoInfo, sampling: SamplingCfg, pre: PreprocessCfg) -> np.ndarray:
    """uint8 (N*M, T, S, S, 3): for each of the N test clips, its M crops."""
    views = []
    for indices in eval_view_indices(sampling, info.times()):
        frames = read_frames(path, indices, info)
        views += [prepare_clip(frames, pre, crop) for crop in crop_positions(sampling.test_crops)]
    return np.stack(views)
