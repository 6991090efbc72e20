"""DGL-style prompt generators (shared latent space for text and visual deep prompts) and global prompts."""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn

from ..config import ModelConfig
from .layers import QuickGELU


def prompt_init_bound(patch_size: int, width: int) -> float:
    """Xavier-uniform bound the published code uses for prompt parameters."""
    return math.sqrt(6.0 / float(3 * patch_size * patch_size + width))


class PromptBlock(nn.Module):
    """One pre-LN transformer block (QuickGELU MLP, no mask) mixing the prompt rows."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            OrderedDict(
                [
                    ("c_fc", nn.Linear(width, width * 4)),
                    ("gelu", QuickGELU()),
                    ("c_proj", nn.Linear(width * 4, width)),
                ]
            )
        )

    def forward(self, x: torch.Tensor, rows: slice = slice(None)) -> torch.Tensor:
        """x (batch, rows, D) -> the outputs of `rows` only (every row is still attended to)."""
        h = self.ln_1(x)
        x = x[:, rows] + self.attn(h[:, rows], h, h, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class TransformerPromptGenerator(nn.Module):
    """`shared_latent_space = transformer`: an embedding of (text + L*T) rows per layer, mixed by one block.

    The rows are per frame position, so the generator is tied to the number of frames T.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.vision.width
        self.layers = cfg.prompt_layers
        self.width = d
        self.text_prompts = cfg.text_prefix_prompts + cfg.text_postfix_prompts
        self.frames = cfg.frames
        rows = self.text_prompts + cfg.local_prompts * cfg.frames
        self.embedding = nn.Embedding(rows, cfg.prompt_layers * d)
        self.block = PromptBlock(d, cfg.vision.heads)
        self.text_mlp = nn.Sequential(
            OrderedDict(
                [
                    ("c_fc", nn.Linear(d, d * 2)),
                    ("gelu", QuickGELU()),
                    ("c_proj", nn.Linear(d * 2, cfg.text.width)),
                ]
            )
        )

    def _rows(self) -> torch.Tensor:
        rows = self.embedding.weight.shape[0]
        return self.embedding.weight.view(rows, self.layers, self.width).transpose(0, 1)  # (layers, rows, D)

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        """-> text prompts (layers, n_text, Wt), local visual prompts (layers, L*T, D), frame-major."""
        o = self.block(self._rows())
        return self.text_mlp(o[:, : self.text_prompts]), o[:, self.text_prompts :]

    def text(self) -> torch.Tensor:
        """Text prompts only (the visual rows are attended to but not computed)."""
        return self.text_mlp(self.block(self._rows(), slice(0, self.text_prompts)))

    def visual(self) -> torch.Tensor:
        """Local visual prompts only."""
        return self.block(self._rows(), slice(self.text_prompts, None))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "embedding.weight"
        if key in state_dict:
            rows = state_dict[key].shape[0]
            per_frame = (self.embedding.weight.shape[0] - self.text_prompts) // self.frames
            trained_t = (rows - self.text_prompts) / per_frame
            if rows != self.embedding.weight.shape[0]:
                t = int(trained_t) if trained_t.is_integer() else f"{trained_t:.2f} (inconsistent)"
                raise ValueError(
                    f"the checkpoint's prompt generator was built for T={t} frames; this model is configured for "
                    f"T={self.frames}: set frames={t}"
                )
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class LinearPromptGenerator(nn.Module):
    """`shared_latent_space = linear`: L visual prompts per layer, shared by every frame, projected to text."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.vision.width
        self.layers = cfg.prompt_layers
        self.width = d
        self.frames = cfg.frames
        self.local_prompts = cfg.local_prompts
        self.embedding = nn.Parameter(torch.zeros(1, cfg.local_prompts, cfg.prompt_layers * d))
        bound = prompt_init_bound(cfg.vision.patch_size, d)
        nn.init.uniform_(self.embedding, -bound, bound)
        self.prefix_proj = nn.Linear(d, cfg.text.width)
        self.postfix_proj = nn.Linear(d, cfg.text.width) if cfg.text_postfix_prompts else None

    def _prompts(self) -> torch.Tensor:
        return self.embedding.view(self.local_prompts, self.layers, self.width).transpose(0, 1)  # (layers, L, D)

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        """-> text prompts (layers, n_text, Wt), local visual prompts (layers, L*T, D), frame-major."""
        return self.text(), self.visual()

    def text(self) -> torch.Tensor:
        v = self._prompts()
        text = [self.prefix_proj(v)] + ([self.postfix_proj(v)] if self.postfix_proj is not None else [])
        return torch.cat(text, dim=1)

    def visual(self) -> torch.Tensor:
        return self._prompts().repeat(1, self.frames, 1)  # the same L prompts for every frame


def build_prompt_generator(cfg: ModelConfig) -> nn.Module:
    if cfg.prompt_generator == "transformer":
        return TransformerPromptGenerator(cfg)
    return LinearPromptGenerator(cfg)
