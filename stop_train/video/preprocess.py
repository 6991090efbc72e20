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
    def for_model(cls, cfg) -> PreprocessCfg:
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


CROPS = ("center", "start", "end")


def resize_short_side(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 (T, H, W, 3) -> short side `size`, bicubic (as CLIP's transform), aspect kept."""
    import cv2

    t, h, w, _ = frames.shape
    scale = size / min(h, w)
    new_h, new_w = max(size, round(h * scale)), max(size, round(w * scale))
    if (new_h, new_w) == (h, w):
        return frames
    return np.stack([cv2.resize(f, (new_w, new_h), interpolation=cv2.INTER_CUBIC) for f in frames])


def crop_square(frames: np.ndarray, size: int, where: str = "center") -> np.ndarray:
    """A size x size crop at the centre or at the start/end of the long side: (T, H, W, 3) -> (T, S, S, 3)."""
    if where not in CROPS:
        raise ValueError(f"crop {where!r} is not one of {', '.join(CROPS)}")
    _, h, w, _ = frames.shape
    frac = {"center": 0.5, "start": 0.0, "end": 1.0}[where]
    y = round((h - size) * (frac if h > w else 0.5))
    x = round((w - size) * (frac if w >= h else 0.5))
    return frames[:, y : y + size, x : x + size]


def prepare_clip(frames: np.ndarray, cfg: PreprocessCfg, crop: str = "center") -> np.ndarray:
    """Decoded uint8 RGB frames -> the model's uint8 input (T, S, S, 3): short side to S, square crop."""
    return np.ascontiguousarray(crop_square(resize_short_side(frames, cfg.size), cfg.size, crop))


def crop_positions(count: int) -> tuple[str, ...]:
    """The M test crops of DECISIONS §4."""
    return ("center",) if count == 1 else ("center", "start", "end")
