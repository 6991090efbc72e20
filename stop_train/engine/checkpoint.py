"""Checkpoint folders: `model.safetensors` + `trainer_state.pt` + `config.json`, written into `NAME.partial` and
swapped in by renames (`NAME` -> `NAME.old`, `NAME.partial` -> `NAME`): a crash leaves the previous checkpoint,
as `NAME` or, between the two renames, `NAME.old` (`usable`). A write that fails says where and why in one line
(`CheckpointWriteError`: a full disk is named as such); a damaged file is named when read (`CheckpointError`)."""

from __future__ import annotations

import errno
import io
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save

from ..atomic import atomic_write, atomic_write_bytes, atomic_write_json, replacing_folder, settled_folder
from ..config import ModelConfig
from ..errors import StopError, TrainingError
from ..model.weights import CheckpointError, first_line, load_weights

WEIGHTS = "model.safetensors"
STATE = "trainer_state.pt"
CONFIG = "config.json"


class CheckpointWriteError(StopError, OSError):
    """A checkpoint that could not be written; the checkpoints written before are unchanged."""

    def __str__(self) -> str:
        return self.strerror


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (`stop_train.atomic`: temp file, fsync, rename; NaN as null)."""
    atomic_write_json(path, data)


def _write_failed(err: BaseException, folder: Path) -> CheckpointWriteError:
    """One line for a checkpoint write that failed: a full disk (ENOSPC, or torch's "unexpected pos" from its zip
    writer) is said in words."""
    text = str(err)
    full = getattr(err, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "unexpected pos" in text
    why = (
        f"the disk is full (df -h {folder.parent})"
        if full
        else (getattr(err, "strerror", None) or text.splitlines()[0])
    )
    return CheckpointWriteError(
        errno.ENOSPC if full else getattr(err, "errno", None) or errno.EIO,
        f"could not write checkpoint {folder}: {why}; the checkpoints written before are unchanged",
    )


def save_checkpoint(folder: Path, model: torch.nn.Module, model_cfg: ModelConfig, state: dict[str, Any]) -> Path:
    """Write a complete checkpoint folder; a crash leaves either the old folder or the new one, never half.
    Raises ValueError for weights that are not finite (nothing written), CheckpointWriteError (the staging folder
    removed)."""
    folder = Path(folder)
    weights = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    bad = next((k for k, v in weights.items() if v.is_floating_point() and not torch.isfinite(v).all()), None)
    if bad is not None:
        raise TrainingError(
            f"the weights are not finite ({bad} holds NaN or infinity): not saved as {folder}; the "
            "checkpoints written before are unchanged"
        )
    try:
        with replacing_folder(folder) as staging:
            atomic_write_bytes(staging / WEIGHTS, save(weights))  # bytes: save_file renames a file of its own
            atomic_write(staging / STATE, lambda f: torch.save(state, f))
            atomic_write_json(staging / CONFIG, model_cfg.to_dict())
    except (OSError, RuntimeError) as err:
        raise _write_failed(err, folder) from None
    return folder


def usable(folder: Path) -> Path | None:
    """`folder`, or `folder.old` when a crash between `swap_folder`'s renames left only it; None when neither has both
    files."""
    return settled_folder(folder, (WEIGHTS, STATE))


def link_checkpoint(src: Path, dst: Path) -> Path:
    """Make `dst` a checkpoint folder with the files of `src` (hard links where the file system has them,
    else copies), swapped in as atomically as `save_checkpoint`. Files are never rewritten in place, so the
    two folders stay independent."""
    src, dst = Path(src), Path(dst)
    try:
        with replacing_folder(dst, files_from=src):
            pass
    except OSError as err:
        raise _write_failed(err, dst) from None
    return dst


def rewrite_state(folder: Path, state: dict[str, Any]) -> None:
    """Replace only the trainer state of a checkpoint folder (temp file, fsync, rename)."""
    try:
        atomic_write(Path(folder) / STATE, lambda f: torch.save(state, f))
    except (OSError, RuntimeError) as err:
        raise _write_failed(err, Path(folder)) from None


def load_checkpoint(
    folder: Path, model: torch.nn.Module | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """-> (weights, trainer state); loads the weights into `model` when given (after both files are read).
    Raises FileNotFoundError (a file is missing), CheckpointError naming a file that cannot be read."""
    folder = Path(folder)
    for name in (WEIGHTS, STATE):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder} is not a complete checkpoint: {name} is missing")
    weights = load_weights(folder / WEIGHTS)
    try:  # our own file: RNG states, config
        state = torch.load(io.BytesIO((folder / STATE).read_bytes()), map_location="cpu", weights_only=False)
    except (EOFError, RuntimeError, ValueError, OSError, ImportError, AttributeError) as err:
        raise CheckpointError(f"{folder / STATE} is damaged ({first_line(err) or 'empty'})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{folder / STATE} is not a trainer state")
    if model is not None:
        model.load_state_dict(weights)
    return weights, state
