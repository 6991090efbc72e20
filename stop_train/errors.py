"""The root of the toolkit's errors (torch-free: the runtime and the app use it too).

Every error the toolkit raises for a user to act on (a bad file, a missing model, a source that cannot be
read, a full disk while saving) is a `StopError`, with a one-line message naming what to fix; each area
subclasses it (`ExportError`, `BackendError`, `VideoReadError`, ...) and keeps the built-in base callers
already catch (ValueError, RuntimeError, OSError). An entry point catches `StopError` once and prints the
message; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class StopError(Exception):
    """An error with a one-line message for the user; `exit_code` for a command line (2: bad input)."""

    exit_code = 2


class ConfigError(StopError, ValueError):
    """A setting, flag, preset, label set or run file the user gave that cannot be used, with what to give."""


class TrainingError(StopError, RuntimeError):
    """Training or evaluation cannot go on (a loss or weights that are not finite, a split with nothing to
    evaluate), with what was kept and what to change."""
