"""The runtime's error type, imported by every backend (no backend imports another)."""


class BackendError(RuntimeError):
    """A model or backend that cannot be used, with the reason."""
