"""The runtime's error types (no runtime module imports another for its errors)."""

from stop_train.errors import StopError


class BackendError(StopError, RuntimeError):
    """A model or backend that cannot be used, with the reason."""


class RecognizeError(StopError, RuntimeError):
    """A source or model that cannot be used, with the reason; `exit_code` for the CLI."""

    exit_code = 2


class SourceGaveUp(RecognizeError):
    """A camera or stream was lost and the reconnect policy gave up."""

    exit_code = 3


class BankError(StopError, ValueError):
    """A label bank that cannot be read, that belongs to another model, or a request it cannot satisfy."""
