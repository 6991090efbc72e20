"""Pre-processing configuration and normalisation (numpy only)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # OpenAI CLIP, RGB
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class PreprocessCfg:
    size: int = 224  # square input side, = the model's vision.image_size
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD

    @classmethod
    def for_model(cls, cfg) -> "PreprocessCfg":
        """The pre-processing of a ModelConfig."""
        return cls(size=cfg.vision.image_size)


def normalize_frames(frames: np.ndarray, cfg: PreprocessCfg) -> np.ndarray:
    """uint8 RGB frames (..., T, H, W, 3) already at cfg.size -> float32 (..., T, 3, H, W), mean/std normalised."""
    if frames.dtype != np.uint8 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 RGB frames (..., H, W, 3), got {frames.dtype} {frames.shape}")
    if frames.shape[-3:-1] != (cfg.size, cfg.size):
        raise ValueError(f"frames are {frames.shape[-3]}x{frames.shape[-2]}, the model takes {cfg.size}x{cfg.size}")
    mean = np.asarray(cfg.mean, dtype=np.float32) * 255.0
    inv_std = 1.0 / (np.asarray(cfg.std, dtype=np.float32) * 255.0)
    x = (frames.astype(np.float32) - mean) * inv_std
    return np.ascontiguousarray(np.moveaxis(x, -1, -3))
