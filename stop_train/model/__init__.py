"""The STOP model (PyTorch). Importing this package imports torch and open_clip."""

from .factory import create_model, load_model, resolve_config, save_model
from .insert_op import temporal_prompt_insert, temporal_prompt_insert_reference
from .stop import STOP, dead_parameters

__all__ = [
    "STOP",
    "create_model",
    "dead_parameters",
    "load_model",
    "resolve_config",
    "save_model",
    "temporal_prompt_insert",
    "temporal_prompt_insert_reference",
]
