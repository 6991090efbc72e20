"""Reading a safetensors weights file, for the model loader and the trainer's checkpoints."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors.torch import load, load_file

from ..errors import StopError


class CheckpointError(StopError, ValueError):
    """A checkpoint file that cannot be read (truncated, empty, not ours): the message names it."""


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file. Raises CheckpointError naming a damaged (truncated, empty) file."""
    try:
        if _utf8(os.fspath(path)):
            return load_file(os.fspath(path))  # memory-mapped: no second copy of the weights in memory
        return load(Path(path).read_bytes())  # safetensors opens only UTF-8 paths
    except Exception as err:  # safetensors raises its own SafetensorError for a truncated file
        if isinstance(err, OSError):
            raise
        raise CheckpointError(f"{path} is damaged ({first_line(err)})") from None


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else ""
