"""Create STOP models from presets, and save/load them as a folder (model.safetensors + config.json)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import torch

from ..config import ModelConfig, apply_overrides, load_config
from .backbone import load_clip_weights, pretrained_quick_gelu, resolve_pretrained
from .stop import STOP

log = logging.getLogger(__name__)

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


def resolve_config(
    preset_or_path: str | Path | ModelConfig = "stop-b32", pretrained: str | None = None, **overrides: Any
) -> ModelConfig:
    """The config a model is built from: preset (or file, or config) + overrides + the activation the CLIP
    weights `pretrained` were trained with (`quick_gelu`). Downloads nothing; errors as `create_model`."""
    cfg = preset_or_path if isinstance(preset_or_path, ModelConfig) else load_config(preset_or_path)
    cfg = apply_overrides(cfg, overrides)
    if pretrained not in (None, "none"):
        quick_gelu = pretrained_quick_gelu(cfg, pretrained)
        if quick_gelu != cfg.quick_gelu:
            log.info(
                "weights %s use %sQuickGELU: setting quick_gelu=%s", pretrained, "" if quick_gelu else "no ", quick_gelu
            )
            cfg = dataclasses.replace(cfg, quick_gelu=quick_gelu)
    return cfg


def create_model(
    preset_or_path: str | Path | ModelConfig = "stop-b32",
    pretrained: str | None = None,
    precision: str = "fp32",
    device: str | torch.device = "cpu",
    **overrides: Any,
) -> STOP:
    """Build a STOP model.

    preset_or_path: a preset name (`list_presets()`), a JSON config file or a `ModelConfig`.
    pretrained: CLIP weights for the backbone: an open_clip tag of `cfg.clip_model` (e.g. 'openai'), a
        local checkpoint file, or None / 'none' for random weights. The STOP parts start from their init.
    overrides: config fields, e.g. `frames=12`, `mode='official'`, `vision={'image_size': 288}` or
        `**{'vision.image_size': 288}`; unknown keys, and one field given both ways with different values,
        raise ValueError.
    The model's `cfg` is `resolve_config(preset_or_path, pretrained, **overrides)`.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    cfg = resolve_config(preset_or_path, pretrained, **overrides)
    model = STOP(cfg)
    if pretrained not in (None, "none"):
        load_clip_weights(model.clip, resolve_pretrained(cfg, pretrained))
    return model.to(device=device, dtype=PRECISIONS[precision])


def save_model(model: STOP, folder: str | Path) -> Path:
    """Write `folder/model.safetensors` and `folder/config.json`, replacing the folder as a whole
    (`stop_train.atomic.replacing_folder`: a failure leaves the previous pair; other files in it are kept)."""
    from safetensors.torch import save

    from ..atomic import atomic_write_bytes, atomic_write_json, replacing_folder

    folder = Path(folder)
    weights = save({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()})
    with replacing_folder(folder, files_from=folder, skip=(WEIGHTS_FILE, CONFIG_FILE)) as staging:
        atomic_write_bytes(staging / WEIGHTS_FILE, weights)
        atomic_write_json(staging / CONFIG_FILE, model.cfg.to_dict())
    return folder


def load_model(folder: str | Path, device: str | torch.device = "cpu", **overrides: Any) -> STOP:
    """Load a model folder written by `save_model` or by the converter (or `FOLDER.old`, where a crash while
    `save_model` replaced it left only that). Raises FileNotFoundError (not a model folder), ValueError (a
    damaged file, named)."""
    from ..atomic import settled_folder
    from .weights import load_weights

    folder = Path(folder)
    found = settled_folder(folder, (WEIGHTS_FILE, CONFIG_FILE))
    if found is None:
        missing = next(name for name in (WEIGHTS_FILE, CONFIG_FILE) if not (folder / name).is_file())
        raise FileNotFoundError(f"{folder} has no {missing}: not a STOP model folder")
    if found != folder:
        log.warning("%s is missing: reading %s, which a save interrupted between its renames left", folder, found)
    folder = found
    cfg = ModelConfig.from_dict(json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8-sig")))
    model = STOP(apply_overrides(cfg, overrides))
    model.load_state_dict(load_weights(folder / WEIGHTS_FILE))
    return model.to(device)


def model_fingerprint(model: STOP) -> str:
    """16 hex digits of SHA-256 over the model config and every weight (float32 bytes, in name order): what
    a label bank or a cache keyed on the model compares. Labels and the export format do not enter it."""
    digest = hashlib.sha256(json.dumps(model.cfg.to_dict(), sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]
