"""Training and evaluation (PyTorch)."""
