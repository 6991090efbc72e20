"""Small building blocks shared by the STOP modules."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class Adapter(nn.Sequential):
    """Parallel bottleneck adapter on the raw residual stream (the published code calls it 'LoRA')."""

    def __init__(self, width: int, hidden: int):
        super().__init__(nn.Linear(width, hidden), nn.PReLU(), nn.Linear(hidden, width))


def pointwise_conv3d(x: torch.Tensor, linear: nn.Linear) -> torch.Tensor:
    """Apply a Linear over the channel axis of (B, C, T, H, W) without permuting."""
    return F.conv3d(x, linear.weight[:, :, None, None, None], linear.bias)


def min_max_per_video(score: torch.Tensor) -> torch.Tensor:
    """Min-max normalise (B, T) over T for each video; a constant row gives zeros (no division by zero)."""
    smin = score.amin(dim=-1, keepdim=True)
    srange = score.amax(dim=-1, keepdim=True) - smin
    nonzero = srange > 0
    return torch.where(nonzero, (score - smin) / torch.where(nonzero, srange, torch.ones_like(srange)), torch.zeros_like(score))
