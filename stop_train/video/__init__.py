"""Torch-free video pre-processing shared by training, export checks, the runtime and the app."""
from .preprocess import CLIP_MEAN, CLIP_STD, PreprocessCfg, normalize_frames

__all__ = ["CLIP_MEAN", "CLIP_STD", "PreprocessCfg", "normalize_frames"]
