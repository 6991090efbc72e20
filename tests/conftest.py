"""Shared fixtures. Skips are allowed only for the reasons of DECISIONS §7 (here: no ../shared)."""
from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"no ../shared: {SHARED} not found")
    return SHARED


@pytest.fixture(autouse=True)
def _seed():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def golden() -> dict:
    """Tensors of the published implementation (../shared/golden)."""
    from safetensors.torch import load_file

    path = SHARED / "golden" / "stop_official_T8.safetensors"
    if not path.is_file():
        pytest.skip(f"no ../shared: {path} not found")
    return load_file(str(path))
