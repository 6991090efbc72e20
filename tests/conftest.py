"""Shared fixtures. Skips are allowed only for the reasons of DECISIONS §7 (here: no ../shared)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # Qt widgets and QObjects in tests run headless

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


SYNTHETIC_LABELS = ["MovingLeft", "MovingRight", "MovingUp", "MovingDown", "GrowingBigger", "ShrinkingSmaller"]
OFFICIAL_TINY = {"mode": "official", "mask_layout": "lattice", "text_postfix_prompts": 2}


def export_tiny(folder: Path, mode: str) -> Path:
    """Save the tiny preset (random weights) as a model folder and export it with the synthetic labels.

    Returns the .onnx path; the model folder is `<folder>/model`, the labels `<folder>/labels.txt`.
    """
    import torch

    from stop_export.cli import export_main
    from stop_train.model import create_model, save_model

    torch.manual_seed(0)
    save_model(create_model("tiny", **(OFFICIAL_TINY if mode == "official" else {})), folder / "model")
    (folder / "labels.txt").write_text("\n".join(SYNTHETIC_LABELS) + "\n")
    out = folder / f"tiny-{mode}.onnx"
    assert export_main([str(folder / "model"), "--labels", str(folder / "labels.txt"), "-o", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def exported(tmp_path_factory) -> dict[str, Path]:
    """The tiny preset exported in both modes (ONNX, text encoder and BPE file beside)."""
    pytest.importorskip("onnx")
    root = tmp_path_factory.mktemp("exported")
    return {mode: export_tiny(root / mode, mode) for mode in ("dynamic", "official")}


def export_retrieval(folder: Path, seed: int) -> Path:
    """The tiny preset (random weights, `seed`) exported as a retrieval model: `<folder>/search.onnx`, with its text
    encoder; the model folder is `<folder>/model`."""
    import torch

    from stop_export.cli import export_main
    from stop_train.model import create_model, save_model

    torch.manual_seed(seed)
    save_model(create_model("tiny"), folder / "model")
    out = folder / "search.onnx"
    assert export_main([str(folder / "model"), "--task", "retrieval", "-o", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def retrieval_models(tmp_path_factory) -> tuple[Path, Path]:
    """Two tiny retrieval exports with different random weights."""
    pytest.importorskip("onnx")
    root = tmp_path_factory.mktemp("retrieval-export")
    return export_retrieval(root / "a", 0), export_retrieval(root / "b", 1)


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """The project's wheel, built once per session."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("wheel")
    root = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(root)]
    subprocess.run(cmd, check=True, capture_output=True)
    (path,) = out.glob("stop_toolkit-*.whl")
    return path


@pytest.fixture
def silent_url():
    """An http:// URL on a 127.0.0.1 server that accepts connections and never answers (a stalled stream)."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield f"http://127.0.0.1:{server.getsockname()[1]}/live.ts"
    server.close()
