"""STOP toolkit: model and training.

Importing `stop_train` imports nothing heavy; `stop_train.create_model` and friends load torch on first use.
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {"create_model", "load_model", "save_model", "STOP", "convert_checkpoint"}


def __getattr__(name: str):
    if name in _LAZY:
        if name == "convert_checkpoint":
            from .model.convert import convert_checkpoint

            return convert_checkpoint
        from . import model

        return getattr(model, name)
    raise AttributeError(f"module 'stop_train' has no attribute {name!r}")
