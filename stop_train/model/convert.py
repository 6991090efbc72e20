"""Convert checkpoints of the published STOP code (CVPR2025-STOP, `modules/clip.py`) to this project.

The published state dict uses CLIP's names plus its own (`visual.TemporalPrompt.*`, `*.LoRA.*`,
`unified_prompt_*`, `PromptTransformer.*`), with a `clip.` prefix when saved from the CLIP4Clip wrapper.
The configuration is inferred from tensor shapes, as the published loader does. The result is an
`official`-mode model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch

from ..config import ModelConfig, TextCfg, VisionCfg
from .weights import CheckpointError

PUBLISHED_TEXT_PROMPTS = 8  # the published default `text_prompt_length` (4 prefix + 4 postfix)
PUBLISHED_MAX_WORDS = 32
PUBLISHED_SPATIAL_TOPK = 6  # hard-coded `eta`

_RENAMES = [  # (published pattern, our replacement); first match wins
    (r"^visual\.TemporalPrompt\.Conv\.", "spatial.conv."),
    (r"^visual\.TemporalPrompt\.MLP\.", "spatial.mlp."),
    (r"^visual\.TemporalPrompt\.Cal_Net\.", "spatial.score_net."),
    (r"^visual\.TemporalPrompt\.Attention\.", "temporal.attention."),
    (r"^visual\.TemporalPrompt\.InterConv\.", "temporal.conv."),
    (r"^visual\.TemporalPrompt\.InterMLP\.", "temporal.mlp."),
    (r"^visual\.TemporalPrompt\.Cal_Net_Inter\.", "temporal.score_net."),
    (r"^visual\.transformer\.resblocks\.(\d+)\.LoRA\.", r"visual_adapters.\1."),
    (r"^transformer\.resblocks\.(\d+)\.LoRA\.", r"text_adapters.\1."),
    (r"^visual\.prompt_embeddings$", "global_prompts"),
    (r"^unified_prompt_embedding\.weight$", "prompts.embedding.weight"),
    (r"^PromptTransformer\.resblocks\.0\.", "prompts.block."),
    (r"^unified_prompt_mlp\.", "prompts.text_mlp."),
    (r"^visual_prompt_embedding$", "prompts.embedding"),
    (r"^prefix_text_prompt_proj_layer\.", "prompts.prefix_proj."),
    (r"^postfix_text_prompt_proj_layer\.", "prompts.postfix_proj."),
    (
        r"^(visual\.|transformer\.|token_embedding\.|positional_embedding$|ln_final\.|text_projection$|logit_scale$)",
        r"clip.\1",
    ),
]
_DROPPED = ("visual.position_ids",)


def _strip_prefix(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if any(k.startswith("clip.") for k in state):
        return {k[len("clip.") :]: v for k, v in state.items() if k.startswith("clip.")}
    return dict(state)


def _count_blocks(state: Mapping[str, torch.Tensor], prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.attn\.in_proj_weight$")
    return len({m.group(1) for k in state if (m := pattern.match(k))})


def infer_config(
    state: Mapping[str, torch.Tensor], frames: int | None = None, text_prompts: int = PUBLISHED_TEXT_PROMPTS
) -> ModelConfig:
    """The `official` ModelConfig of a published state dict (without the `clip.` prefix)."""
    if "visual.proj" not in state:
        raise CheckpointError("not a published STOP/CLIP ViT checkpoint: 'visual.proj' is missing")
    width, _, patch, _ = state["visual.conv1.weight"].shape
    grid = round((state["visual.positional_embedding"].shape[0] - 1) ** 0.5)
    text_width = state["ln_final.weight"].shape[0]
    vision = VisionCfg(
        image_size=patch * grid,
        patch_size=patch,
        width=width,
        layers=_count_blocks(state, "visual.transformer.resblocks."),
        head_width=64,
    )
    text = TextCfg(
        context_length=state["positional_embedding"].shape[0],
        vocab_size=state["token_embedding.weight"].shape[0],
        width=text_width,
        heads=max(1, text_width // 64),
        layers=_count_blocks(state, "transformer.resblocks."),
        max_tokens=PUBLISHED_MAX_WORDS,
    )
    local = state["visual.TemporalPrompt.InterMLP.2.weight"].shape[0]
    generator, cols, frames = _prompt_generator(state, local, frames, text_prompts)
    lora = [k for k in state if k.endswith(".LoRA.0.weight")]
    return ModelConfig(
        mode="official",
        frames=frames,
        clip_model="published",
        embed_dim=state["text_projection"].shape[1],
        quick_gelu=True,
        vision=vision,
        text=text,
        freeze_backbone=True,
        global_prompts=state["visual.prompt_embeddings"].shape[1],
        local_prompts=local,
        text_prefix_prompts=text_prompts // 2,
        text_postfix_prompts=text_prompts - text_prompts // 2,
        prompt_layers=cols // width,
        prompt_generator=generator,
        spatial_topk=PUBLISHED_SPATIAL_TOPK,
        mask_layout="lattice",
        adapter_dim=state[lora[0]].shape[0] if lora else 0,
    )


def _prompt_generator(
    state: Mapping[str, torch.Tensor], local: int, frames: int | None, text_prompts: int
) -> tuple[str, int, int]:
    """(generator kind, its output width, frames T) of a published state dict: the transformer generator records
    T in its rows (checked against `frames` when given), the linear one does not (`frames` is then required).
    Raises ValueError."""
    if "unified_prompt_embedding.weight" in state:
        rows, cols = state["unified_prompt_embedding.weight"].shape
        inferred = (rows - text_prompts) / local
        if not inferred.is_integer() or (frames is not None and frames != inferred):
            raise CheckpointError(
                f"the prompt generator has {rows} rows = {text_prompts} text + {local} x T: "
                f"T={inferred:g} does not fit{'' if frames is None else f' frames={frames}'}"
            )
        return "transformer", cols, int(inferred)
    if "visual_prompt_embedding" in state:
        if frames is None:
            raise CheckpointError("a linear-generator checkpoint does not record its frame count: pass frames=T")
        return "linear", state["visual_prompt_embedding"].shape[-1], frames
    raise CheckpointError("no prompt generator in the checkpoint (unified_prompt_embedding / visual_prompt_embedding)")


def rename_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Published names (without `clip.`) -> this project's names; float tensors become float32."""
    out = {}
    for key, value in state.items():
        if key in _DROPPED:
            continue
        for pattern, repl in _RENAMES:
            new, hits = re.subn(pattern, repl, key)
            if hits:
                break
        else:
            raise CheckpointError(f"unexpected key in a published STOP checkpoint: {key}")
        out[new] = value.float() if value.is_floating_point() else value
    return out


def convert_state_dict(
    state: Mapping[str, torch.Tensor], frames: int | None = None, text_prompts: int = PUBLISHED_TEXT_PROMPTS
):
    """A published state dict (with or without `clip.`) -> (ModelConfig, state dict for `STOP`)."""
    state = _strip_prefix(state)
    return infer_config(state, frames, text_prompts), rename_state_dict(state)


def load_published(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a published checkpoint safely (`torch.load(weights_only=True)`; `.safetensors` also accepted)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    return state


def convert_checkpoint(path: str | Path, frames: int | None = None, text_prompts: int = PUBLISHED_TEXT_PROMPTS):
    """Load a published checkpoint file into an `official`-mode `STOP` model (eval mode)."""
    from .stop import STOP

    cfg, state = convert_state_dict(load_published(path), frames, text_prompts)
    model = STOP(cfg)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"checkpoint does not match the inferred config: missing {missing}, unexpected {unexpected}"
        )
    return model.eval()
