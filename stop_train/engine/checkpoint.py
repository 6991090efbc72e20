"""Checkpoint folders: `model.safetensors` + `trainer_state.pt`, each written to a temp file, fsynced, renamed."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..config import ModelConfig

WEIGHTS = "model.safetensors"
STATE = "trainer_state.pt"
CONFIG = "config.json"


def _fsync_replace(tmp: Path, final: Path) -> None:
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    tmp.replace(final)


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temp file, fsync, rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    _fsync_replace(tmp, path)


def save_checkpoint(folder: Path, model: torch.nn.Module, model_cfg: ModelConfig, state: dict[str, Any]) -> Path:
    """Write a complete checkpoint folder; a crash leaves either the old folder or the new one, never half."""
    folder = Path(folder)
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    weights = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(weights, str(staging / (WEIGHTS + ".tmp")))
    _fsync_replace(staging / (WEIGHTS + ".tmp"), staging / WEIGHTS)
    torch.save(state, staging / (STATE + ".tmp"))
    _fsync_replace(staging / (STATE + ".tmp"), staging / STATE)
    write_json(staging / CONFIG, model_cfg.to_dict())
    _swap(staging, folder)
    return folder


def _swap(staging: Path, folder: Path) -> None:
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.replace(old)
    staging.replace(folder)
    shutil.rmtree(old, ignore_errors=True)


def link_checkpoint(src: Path, dst: Path) -> Path:
    """Make `dst` a checkpoint folder with the files of `src` (hard links where the file system has them,
    else copies), swapped in as atomically as `save_checkpoint`. Files are never rewritten in place, so the
    two folders stay independent."""
    src, dst = Path(src), Path(dst)
    staging = dst.with_name(dst.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for f in src.iterdir():
        try:
            os.link(f, staging / f.name)
        except OSError:
            shutil.copy2(f, staging / f.name)
    _swap(staging, dst)
    return dst


def rewrite_state(folder: Path, state: dict[str, Any]) -> None:
    """Replace only the trainer state of a checkpoint folder (temp file, fsync, rename)."""
    folder = Path(folder)
    torch.save(state, folder / (STATE + ".tmp"))
    _fsync_replace(folder / (STATE + ".tmp"), folder / STATE)


def load_checkpoint(folder: Path, model: torch.nn.Module | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """-> (weights, trainer state); loads the weights into `model` when given."""
    folder = Path(folder)
    for name in (WEIGHTS, STATE):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder} is not a complete checkpoint: {name} is missing")
    weights = load_file(str(folder / WEIGHTS))
    if model is not None:
        model.load_state_dict(weights)
    state = torch.load(folder / STATE, map_location="cpu", weights_only=False)  # our own file: RNG states, config
    return weights, state
