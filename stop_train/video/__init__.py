"""Torch-free video decoding, sampling and pre-processing shared by training, export checks, the runtime and the app."""

from .preprocess import (
    CLIP_MEAN,
    CLIP_STD,
    PreprocessCfg,
    crop_square,
    normalize_frames,
    prepare_clip,
    resize_short_side,
)
from .sampling import SamplingCfg, eval_view_indices, interval_indices, segment_indices, train_indices

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "PreprocessCfg",
    "SamplingCfg",
    "crop_square",
    "interval_indices",
    "normalize_frames",
    "prepare_clip",
    "resize_short_side",
    "segment_indices",
    "eval_view_indices",
    "train_indices",
]
