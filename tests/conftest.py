"""Shared fixtures. Skips are allowed only for the reasons of DECISIONS §7 (here: no ../shared)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # Qt widgets and QObjects in tests run headless

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"no ../shared: {SHARED} not found")
    return SHARED


@pytest.fixture(autouse=True, scope="session")
def _own_config_home(tmp_path_factory):
    """The app remembers settings under XDG_CONFIG_HOME and keeps banks under XDG_DATA_HOME: the suite (and every
    process it starts) has its own, never reading or writing the user's."""
    previous = {name: os.environ.get(name) for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME")}
    for name in previous:
        os.environ[name] = str(tmp_path_factory.mktemp(name.lower()))
    yield
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


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


def write_statistics(model, checkpoint: Path, videos: Path, per_class: int = 3) -> None:
    """The trainer's class-statistics pass (`frame_statistics`) over generated videos of the synthetic classes,
    written into the model folder `checkpoint` as the trainer writes it."""
    import contextlib

    from stop_train.data.synthetic import SyntheticSpec, render_scene, write_video
    from stop_train.data.types import VideoItem
    from stop_train.engine.data import ClipDataset
    from stop_train.engine.distributed import DistInfo
    from stop_train.engine.evaluation import frame_statistics
    from stop_train.statistics import STATISTICS_FILE
    from stop_train.video.decode import probe
    from stop_train.video.preprocess import PreprocessCfg
    from stop_train.video.sampling import SamplingCfg

    rng = np.random.default_rng(1)
    items = []
    videos.mkdir(parents=True, exist_ok=True)
    for name in SYNTHETIC_LABELS[::2]:  # the forward classes; the others have no clips
        for i in range(per_class):
            path = videos / f"{name}_{i}.avi"
            write_video(path, render_scene(name, SyntheticSpec(frames=25), rng), fps=25)
            items.append(VideoItem(path, SYNTHETIC_LABELS.index(name), str(i)))
    data = ClipDataset(
        items,
        [probe(v.path) for v in items],
        SamplingCfg(frames=model.cfg.frames),
        PreprocessCfg.for_model(model.cfg),
        train=False,
    )
    stats = frame_statistics(model, data, SYNTHETIC_LABELS, "cpu", contextlib.nullcontext, DistInfo(), 4, 0)
    stats.save(checkpoint / STATISTICS_FILE)


def export_tiny(folder: Path, mode: str) -> Path:
    """Save the tiny preset (random weights) as a model folder and export it with the synthetic labels.

    Returns the .onnx path; the model folder is `<folder>/model`, the labels `<folder>/labels.txt`.
    """
    import torch

    from stop_export.cli import export_main
    from stop_train.model import create_model, save_model

    torch.manual_seed(0)
    model = create_model("tiny", **(OFFICIAL_TINY if mode == "official" else {}))
    save_model(model, folder / "model")
    if mode == "dynamic":  # class statistics beside the weights, as a trained checkpoint has them
        write_statistics(model, folder / "model", folder / "train-videos")
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
