"""The edge boundary (DECISIONS §9): the runtime and the app run with torch, onnx, onnxscript, the TensorRT
builder and the model code unimportable; TensorRT engines, sidecars and the plugin library give the runtime's
own one-line messages; stop-gui says why Qt cannot start instead of aborting."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from stop_train.data.synthetic import SyntheticSpec, render_scene, write_video

# a meta-path finder that makes export-time code unimportable, installed before anything else runs
BLOCK = textwrap.dedent("""
    import sys
    BLOCKED = ("torch", "onnx", "onnxscript", "stop_export.trt.builder", "stop_export.onnx", "stop_train.model",
               "open_clip")
    class Block:
        def find_spec(self, name, path=None, target=None):
            if any(name == b or name.startswith(b + ".") for b in BLOCKED):
                raise ImportError(f"blocked on the edge box: {name}")
    sys.meta_path.insert(0, Block())
""")


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("edge") / "left.avi"
    write_video(path, render_scene("MovingLeft", SyntheticSpec(frames=50), np.random.default_rng(0)), fps=25)
    return path


def edge_python(code: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    env_code = BLOCK + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", env_code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        # PYTHONPATH passes: a checkout tried with the venv of another (a git worktree) tests its own code
        env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin", "HOME": str(cwd)}
        | {k: v for k, v in os.environ.items() if k == "PYTHONPATH"},
    )


def engine_with_sidecar(onnx_path: Path, folder: Path, **tensorrt) -> Path:
    """An engine file with the sidecar `stop-export --engine` writes (the bytes are never read: every path
    tested here stops before TensorRT deserialises them)."""
    import onnx

    meta = json.loads(
        {p.key: p.value for p in onnx.load(str(onnx_path), load_external_data=False).metadata_props}["stop"]
    )
    import tensorrt_rtx

    meta["tensorrt"] = {
        "flavour": "tensorrt_rtx",
        "version": tensorrt_rtx.__version__,
        "compute_capability": "",
        "precision": "fp16",
        "plugin_version": "",
        **tensorrt,
    }
    engine = folder / "model-fp16.engine"
    engine.write_bytes(b"not an engine")
    (folder / "model-fp16.engine.json").write_text(json.dumps(meta))
    return engine


def test_runtime_and_app_run_with_export_code_blocked(exported, video, tmp_path):
    engine = engine_with_sidecar(exported["dynamic"], tmp_path)
    result = edge_python(
        f"""
        import json, sys
        from stop_export.cli import recognize_main
        from stop_export.runtime.recognizer import Recognizer
        from stop_export.runtime.errors import BackendError
        rec = Recognizer.open({str(exported["dynamic"])!r}, "cpu")
        print("labels", len(rec.labels))
        assert recognize_main([{str(exported["dynamic"])!r}, "--source", {str(video)!r}, "--json",
                               "--frame-interval", "0.25"]) == 0
        try:
            Recognizer.open({str(engine)!r})
        except BackendError as err:
            print("ENGINE:", err)
        from stop_gui.main import main
        code = main(["--model", {str(exported["dynamic"])!r}, "--source", {str(video)!r}, "--quit-after", "2"])
        print("GUI", code)
        loaded = [m for m in sys.modules if m.split(".")[0] in ("torch", "onnx", "onnxscript", "open_clip")
                  or m.startswith(("stop_export.trt.builder", "stop_export.onnx", "stop_train.model"))]
        print("LOADED", loaded)
    """,
        tmp_path,
    )
    out = result.stdout
    assert result.returncode == 0, result.stderr[-3000:]
    assert "labels 6" in out and '"type": "video"' in out and "GUI 0" in out and "LOADED []" in out
    engine_line = next(line for line in out.splitlines() if line.startswith("ENGINE:"))
    assert "GPU" in engine_line and "Import" not in engine_line  # the runtime's own reason, not an ImportError


def test_foreign_and_corrupt_sidecars_and_a_missing_plugin(exported, tmp_path):
    from stop_export.runtime.errors import BackendError
    from stop_export.runtime.recognizer import Recognizer

    engine = engine_with_sidecar(exported["dynamic"], tmp_path)
    sidecar = Path(str(engine) + ".json")
    good = sidecar.read_text()
    for text in ('{"not": "a stop sidecar"}', "{broken", "[1, 2]", json.dumps({**json.loads(good), "tensorrt": {}})):
        sidecar.write_text(text)
        with pytest.raises(BackendError, match=f"^not a STOP engine sidecar: {sidecar}"):
            Recognizer.open(engine)
    sidecar.write_text(good)
    with pytest.raises(BackendError, match="no plugin library at /nowhere/libstop_tpi_plugin.so"):
        Recognizer.open(engine, plugin="/nowhere/libstop_tpi_plugin.so")
    with_plugin = engine_with_sidecar(exported["dynamic"], tmp_path, plugin_version="1")
    from stop_export.runtime.trt_backend import check_compatible, read_sidecar

    with pytest.raises(BackendError, match="pass its library with --plugin"):
        check_compatible(
            read_sidecar(with_plugin), "tensorrt_rtx", read_sidecar(with_plugin).tensorrt["version"], "", None
        )


def test_plugin_flag_reaches_the_tensorrt_backend(exported, tmp_path, capsys, monkeypatch):
    from stop_export.cli import recognize_main
    from stop_export.runtime import trt_backend

    seen = {}

    def fake(engine, plugin=None):
        seen["plugin"] = plugin
        raise trt_backend.BackendError("stop here")

    monkeypatch.setattr(trt_backend, "TensorRTBackend", fake)
    engine = engine_with_sidecar(exported["dynamic"], tmp_path)
    assert recognize_main([str(engine), "--source", "x.mp4", "--plugin", "/opt/libstop_tpi_plugin.so"]) == 2
    assert seen["plugin"] == "/opt/libstop_tpi_plugin.so" and "stop here" in capsys.readouterr().err
    from stop_gui.main import _parser

    assert _parser().parse_args(["--plugin", "lib.so"]).plugin == "lib.so"


def test_gui_says_why_qt_cannot_start(tmp_path):
    from stop_gui.display import debian_package, display_problem

    assert debian_package("libxcb-cursor.so.0") == "libxcb-cursor0"
    assert debian_package("libxkbcommon-x11.so.0") == "libxkbcommon-x11-0"
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}) is None
    problem = display_problem({"PATH": "/usr/bin:/bin"})  # xcb, and no DISPLAY
    assert problem.startswith("no display") and "QT_QPA_PLATFORM=offscreen" in problem
    problem = display_problem({"PATH": "/usr/bin:/bin", "QT_QPA_PLATFORM": "xcb", "DISPLAY": ":97"})
    # which libraries are missing depends on the machine (libxcb-cursor0 alone, or more on a bare one): the
    # message names the Debian packages of the missing ones, or, with all present, the display it cannot reach
    missing = re.search(
        r"needs libraries that are not installed \((.+)\): on Debian/Ubuntu, sudo apt install (.+)$", problem or ""
    )
    assert missing or "could not connect to the display ':97'" in (problem or ""), problem
    if missing:
        assert len(missing.group(1).split(", ")) == len(missing.group(2).split()), problem  # a package per library
    result = subprocess.run(
        [str(Path(sys.executable).parent / "stop-gui")],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "QT_QPA_PLATFORM": "xcb", "DISPLAY": ":97"},
        timeout=120,
    )
    err = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(err) == 1 and err[0].startswith("stop-gui: "), result.stderr


def test_recognizer_offers_the_clip_buffer(exported):
    from stop_export.runtime.recognizer import Recognizer

    rec = Recognizer.open(exported["dynamic"], "cpu")
    buffer = rec.clip_buffer(0.25)
    assert buffer.frames == rec.meta.frames and buffer.every == 0.25
    assert buffer.interval == rec.meta.sampling.frame_interval_s and buffer.pre == rec.preprocess
    assert rec.clip_buffer(0.25, frame_interval_s=0.1).span == pytest.approx(0.1 * (rec.meta.frames - 1))
    with pytest.raises(ValueError):
        rec.clip_buffer(0.0)


REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def edge_env() -> Path:
    """The wheel installed with only [runtime,gui,rtx] (`make edge-venv`, reused while its inputs are unchanged)."""
    result = subprocess.run(
        ["make", "edge-venv", f"VENV={Path(sys.executable).parent.parent}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return REPO / "build" / "edge-venv"


def test_the_edge_install_runs_every_runtime_path(edge_env, exported, video, tmp_path):
    py = str(edge_env / "bin" / "python")
    for module in ("torch", "onnx", "onnxscript", "open_clip"):  # the environment really lacks them
        assert subprocess.run([py, "-c", f"import {module}"], capture_output=True).returncode != 0, module
    labels = tmp_path / "labels.txt"
    labels.write_text("Biking\nDiving\nPushUps\n")
    result = subprocess.run(
        [
            str(edge_env / "bin" / "stop-recognize"),
            str(exported["dynamic"]),
            "--source",
            str(video),
            "--json",
            "--labels",
            str(labels),
            "--frame-interval",
            "0.25",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert records[-1]["type"] == "video" and {k for k, _ in records[-1]["top"]} == {"Biking", "Diving", "PushUps"}
    shot = tmp_path / "shot.png"
    result = subprocess.run(
        [
            str(edge_env / "bin" / "stop-gui"),
            "--model",
            str(exported["dynamic"]),
            "--source",
            str(video),
            "--screenshot",
            str(shot),
            "--quit-after",
            "3",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 0 and shot.stat().st_size > 0, result.stderr[-2000:]
    engine = engine_with_sidecar(exported["dynamic"], tmp_path)
    code = (
        f"from stop_export.runtime.recognizer import Recognizer\n"
        f"from stop_export.runtime.errors import BackendError\n"
        f"try:\n    Recognizer.open({str(engine)!r})\nexcept BackendError as err:\n    print('ENGINE:', err)\n"
    )
    result = subprocess.run([py, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]  # never an ImportError
    line = result.stdout.strip()
    assert line.startswith("ENGINE:") and ("cuda-python" in line or "GPU" in line), line


def test_bad_recognize_inputs_are_one_line(exported, video, tmp_path, capsys):
    from stop_export.cli import recognize_main

    model = str(exported["dynamic"])
    for extra, message in (
        (["--predict-every", "0"], "--predict-every: must be > 0"),
        (["--smoothing", "2"], "--smoothing: must be in (0, 1]"),
        (["--on", "0.2", "--off", "0.5"], "must not exceed --on"),
        (["--events", str(tmp_path / "no" / "dir.jsonl")], "cannot write events to"),
    ):
        with pytest.raises(SystemExit) if extra[0] != "--events" else contextlib.nullcontext():
            code = recognize_main([model, "--source", str(video), *extra])
            assert code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert message in err[-1] and "Traceback" not in "".join(err), err  # argparse: usage, then the error
    assert recognize_main([str(video), "--source", str(video)]) == 2
    assert "is not a model" in capsys.readouterr().err
    assert recognize_main([str(tmp_path / "nope.engine"), "--source", str(video)]) == 2
    assert "no model file at" in capsys.readouterr().err
    engine = engine_with_sidecar(exported["dynamic"], tmp_path)
    sidecar = Path(str(engine) + ".json")
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "schema_version": 99}))
    assert recognize_main([str(engine), "--source", str(video)]) == 2
    err = capsys.readouterr().err
    assert "schema 99" in err and "not a STOP engine sidecar" not in err
