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
