"""Intra-frame spatial prompting (pixel space, before patchify) and the spatial mask."""

from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from .layers import FFTConv3d, same_conv3d, same_padding

# Prompter sizes of the published code (architecture hyper-parameters, not data sizes).
PROMPTER_CHANNELS = (9, 9, 16)
PROMPTER_MLP_HIDDEN = 16
PROMPTER_KERNEL = (3, 11, 11)
SCORE_KERNEL = (5, 11, 11)


class SpatialPrompter(nn.Module):
    """P^s (Conv3d stack + per-pixel MLP) and the top-k spatial mask.

    `mask_layout='lattice'` reproduces the published pooling (cells are pixels with equal (h mod g, w mod g),
    bug B1) and, like the published code, gives the score network no gradient (B2). `mask_layout='patch'`
    pools real ViT patches; with `trainable_mask` the hard top-k mask is made differentiable with a
    straight-through estimator (forward: the hard mask; backward: d sigmoid(score - threshold)).
    """

    def __init__(self, cfg: ModelConfig, trainable_mask: bool):
        super().__init__()
        c1, c2, c3 = PROMPTER_CHANNELS
        k, pad = PROMPTER_KERNEL, same_padding(PROMPTER_KERNEL)
        self.conv = nn.Sequential(  # FFTConv3d: nn.Conv3d, computed by FFT on the CPU
            FFTConv3d(3, c1, k, padding=pad),
            FFTConv3d(c1, c1, k, padding=pad),
            nn.PReLU(),
            FFTConv3d(c1, c2, k, padding=pad),
            nn.PReLU(),
            FFTConv3d(c2, c3, k, padding=pad),
        )
        self.mlp = nn.Sequential(nn.Linear(c3, PROMPTER_MLP_HIDDEN), nn.PReLU(), nn.Linear(PROMPTER_MLP_HIDDEN, 3))
        self.dropout = nn.Dropout(cfg.spatial_dropout)
        self.score_net = FFTConv3d(3, 1, SCORE_KERNEL, padding=same_padding(SCORE_KERNEL))
        self.patch_size = cfg.vision.patch_size
        self.grid = cfg.vision.grid
        self.topk = cfg.spatial_topk
        self.scale = cfg.spatial_scale
        self.layout = cfg.mask_layout
        self.trainable_mask = trainable_mask

    def forward(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """video (B, T, 3, H, W), CLIP-normalised -> prompted video (same shape), mask (B, T, g, g) bool."""
        # channels-last: oneDNN's direct convolution (export, tracing) runs faster on it; the CPU's FFT path
        # takes any layout
        x = video.transpose(1, 2).contiguous(memory_format=torch.channels_last_3d)  # (B, 3, T, H, W)
        h = self.conv[:-1](x)
        last, first_linear = self.conv[-1], self.mlp[0]
        if self.training:
            p = first_linear(self.dropout(last(h)).permute(0, 2, 3, 4, 1))  # (B, T, H, W, C)
        else:
            # eval: the dropout between them is the identity, so conv then Linear is one convolution
            weight = torch.einsum("oc,c...->o...", first_linear.weight, last.weight)
            bias = first_linear.weight @ last.bias + first_linear.bias
            p = same_conv3d(h, weight, bias).permute(0, 2, 3, 4, 1)
        p = self.mlp[2](self.mlp[1](p))  # (B, T, H, W, 3)
        p = self.dropout(self.dropout(p)).permute(0, 1, 4, 2, 3)  # published applies this dropout twice
        cells, pixels = self.mask(x)
        return video + p * self.scale + p * pixels.unsqueeze(2) * self.scale, cells

    def mask(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, 3, T, H, W) -> cells (B, T, g, g) bool, pixel mask (B, T, H, W) float."""
        b, _, t, h, w = x.shape
        g, p = self.grid, self.patch_size
        score = self.score_net(x).squeeze(1)  # (B, T, H, W)
        if self.layout == "lattice":
            cell_score = score.reshape(b, t, p, g, p, g).mean(dim=(2, 4))
        else:
            cell_score = score.reshape(b, t, g, p, g, p).mean(dim=(3, 5))
        flat = cell_score.flatten(2)  # (B, T, g*g)
        threshold = flat.topk(self.topk + 1, dim=-1).values[..., self.topk :]  # (k+1)-th largest
        cells = flat > threshold  # exactly k cells per frame (ties aside), as the published code
        soft = cells.to(x.dtype)
        if self.trainable_mask and torch.is_grad_enabled():
            sig = torch.sigmoid(flat - threshold.detach())
            soft = soft + (sig - sig.detach())  # value unchanged, gradient of the sigmoid
        soft = soft.view(b, t, g, g)
        if self.layout == "lattice":  # pixel (y, x) <- cell (y mod g, x mod g)
            pixels = soft[:, :, None, :, None, :].expand(b, t, p, g, p, g)
        else:  # pixel (y, x) <- cell (y // p, x // p)
            pixels = soft[:, :, :, None, :, None].expand(b, t, g, p, g, p)
        return cells.view(b, t, g, g), pixels.reshape(b, t, h, w)
