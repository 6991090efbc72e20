"""The CLIP backbone from open_clip: built from the config, optionally loaded with pretrained weights."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import open_clip
from open_clip.model import CLIP

from ..config import ModelConfig

log = logging.getLogger(__name__)


def build_clip(cfg: ModelConfig) -> CLIP:
    """An open_clip `CLIP` with the sizes of `cfg` (random weights)."""
    v, t = cfg.vision, cfg.text
    vision_cfg = dict(
        image_size=v.image_size,
        patch_size=v.patch_size,
        width=v.width,
        layers=v.layers,
        head_width=v.head_width,
        mlp_ratio=v.mlp_ratio,
    )
    text_cfg = dict(
        context_length=t.context_length,
        vocab_size=t.vocab_size,
        width=t.width,
        heads=t.heads,
        layers=t.layers,
        mlp_ratio=t.mlp_ratio,
    )
    return CLIP(
        cfg.embed_dim, vision_cfg, text_cfg, quick_gelu=cfg.quick_gelu, init_logit_scale=math.log(cfg.init_logit_scale)
    )


def _pretrained_cfg(cfg: ModelConfig, pretrained: str) -> dict:
    pcfg = open_clip.get_pretrained_cfg(cfg.clip_model, pretrained)
    if not pcfg:
        tags = open_clip.list_pretrained_tags_by_model(cfg.clip_model)
        raise ValueError(
            f"{pretrained!r} is neither a file nor a pretrained tag of {cfg.clip_model}; "
            f"tags: {', '.join(tags) or 'none'} (or 'none' for random weights)"
        )
    return pcfg


def pretrained_quick_gelu(cfg: ModelConfig, pretrained: str) -> bool:
    """Whether the weights `pretrained` (a tag of `cfg.clip_model` or a local file) were trained with
    QuickGELU; a local file keeps `cfg.quick_gelu`. Downloads nothing; an unknown tag raises ValueError."""
    if Path(pretrained).expanduser().is_file():
        return cfg.quick_gelu
    return bool(_pretrained_cfg(cfg, pretrained).get("quick_gelu", pretrained == "openai"))


def resolve_pretrained(cfg: ModelConfig, pretrained: str) -> str:
    """A pretrained tag of `cfg.clip_model` (e.g. 'openai') or a local file -> local path.

    Tags are downloaded (and cached) by open_clip; an unknown tag raises and lists the known ones.
    """
    if Path(pretrained).expanduser().is_file():
        return str(Path(pretrained).expanduser())
    path = open_clip.download_pretrained(_pretrained_cfg(cfg, pretrained))
    if not path:
        raise RuntimeError(f"could not fetch the {pretrained!r} weights of {cfg.clip_model}")
    return path


def load_clip_weights(clip: CLIP, path: str) -> None:
    """Load a CLIP checkpoint (open_clip or OpenAI layout) into `clip`, strictly."""
    incompatible = open_clip.load_checkpoint(clip, path, strict=True)
    log.info("loaded CLIP weights from %s (%s)", path, incompatible)
