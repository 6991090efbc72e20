"""Tolerances of DECISIONS §5, defined once. Tests, export checks and the TensorRT check import these.

Relative error = max|a - b| / max|b| over the whole tensor (no element-wise rtol/atol).
"""

from __future__ import annotations

import numpy as np

GOLDEN_REL_ERR = 1e-4  # golden parity, and PyTorch <-> ONNX Runtime FP32: float outputs
BATCH_REL_ERR = 1e-5  # one video alone vs. inside a batch
TOP1_MARGIN_FACTOR = 10.0  # top-1 must agree where the top-2 margin exceeds this x the measured error
FP16_EMBED_COSINE = 0.999  # FP16 engine vs ONNX Runtime FP32: cosine of video_embedding
FP16_TOP1_AGREEMENT = 0.99  # FP16: top-1 agreement on clips whose margin exceeds TOP1_MARGIN_FACTOR x error


def _array(x) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, without importing torch
        x = x.detach().cpu().float().numpy()
    return np.asarray(x, dtype=np.float64)


def relative_error(actual, expected) -> float:
    """max|actual - expected| / max|expected|; works on numpy arrays and torch tensors."""
    a, b = _array(actual), _array(expected)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    scale = np.abs(b).max() if b.size else 0.0
    diff = np.abs(a - b).max() if a.size else 0.0
    return float(diff / scale) if scale > 0 else float(diff)
