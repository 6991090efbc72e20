"""Inter-frame temporal prompters: the published soft weighting (`official`) and the gap prompts (`dynamic`)."""

from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from .layers import FFTConv3d, min_max_per_video, same_padding

# Published prompter sizes (architecture hyper-parameters).
CONV_CHANNELS = 9
CONV_KERNEL = (3, 15, 25)  # (time, token, channel)
MIX_HIDDEN = 16
SCORE_KERNEL = (5, 11, 11)


class _TokenPrompter(nn.Module):
    """P^t: self-attention over all patch tokens of a video, a Conv3d over (time, token, channel),
    then a mix of the N patch tokens into `out_tokens` tokens."""

    def __init__(self, cfg: ModelConfig, out_tokens: int):
        super().__init__()
        d = cfg.vision.width
        pad = same_padding(CONV_KERNEL)
        self.attention = nn.MultiheadAttention(d, cfg.vision.heads, batch_first=True)
        self.conv = nn.Sequential(
            FFTConv3d(1, CONV_CHANNELS, CONV_KERNEL, padding=pad),  # one input channel: oneDNN's worst case
            nn.PReLU(),
            FFTConv3d(CONV_CHANNELS, 1, CONV_KERNEL, padding=pad),
        )
        self.mlp = nn.Sequential(nn.Linear(cfg.num_patches, MIX_HIDDEN), nn.PReLU(), nn.Linear(MIX_HIDDEN, out_tokens))

    def attend(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, S, N, D) -> (B, 1, S, N, D): full self-attention over the S*N tokens of each video."""
        b, s, n, d = tokens.shape
        z = tokens.reshape(b, s * n, d)
        z = self.attention(z, z, z, need_weights=False)[0]
        return z.view(b, 1, s, n, d)

    def mix(self, z: torch.Tensor) -> torch.Tensor:
        """(B, 1, S, N, D) -> (B, S, out_tokens, D)."""
        q = self.conv(z).squeeze(1)  # (B, S, N, D)
        return self.mlp(q.transpose(-1, -2)).transpose(-1, -2)


class OfficialTemporalPrompter(_TokenPrompter):
    """The published inter-frame prompting: L tokens per frame, softly weighted by (1 + w_t).

    w_t is min-max normalised per video (the published code normalises over the whole batch, bug B3; the
    two agree for B = 1). As published, the weighting uses the spatial cells reinterpreted as patch
    indices (B4).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg, cfg.local_prompts)
        self.score_net = FFTConv3d(1, 1, SCORE_KERNEL, padding=same_padding(SCORE_KERNEL))
        self.scale = cfg.temporal_scale

    def forward(self, tokens: torch.Tensor, cells: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens (B, T, 1+N, D) layer-0 frame tokens, cells (B, T, g, g) -> prompts (B, T, L, D), w (B, T)."""
        b, t = tokens.shape[:2]
        z = self.attend(tokens[:, :, 1:])  # (B, 1, T, N, D)
        c = self.score_net(z).squeeze(1)  # (B, T, N, D)
        c = c + c * cells.reshape(b, t, -1, 1).to(c.dtype)
        weight = min_max_per_video(c.mean(dim=(2, 3)))  # (B, T)
        q = self.mix(z)  # (B, T, L, D)
        q = q + q * weight[:, :, None, None]
        return q * self.scale, weight


class DynamicTemporalPrompter(_TokenPrompter):
    """Gap prompt candidates from the frame difference: (B, T-1, P, D), one set per adjacent pair."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg, cfg.prompts_per_gap)
        self.num_patches = cfg.num_patches
        self.scale = cfg.temporal_scale

    def forward(self, frame_tokens: torch.Tensor) -> torch.Tensor:
        """frame_tokens (B, T, F, D), patches last -> gap prompts (B, T-1, P, D)."""
        patches = frame_tokens[:, :, -self.num_patches :]
        diff = patches[:, 1:] - patches[:, :-1]  # (B, T-1, N, D)
        return self.mix(self.attend(diff)) * self.scale
