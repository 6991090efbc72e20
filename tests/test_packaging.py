"""Packaging: Python 3.10 compatibility, torch-free imports, entry points, what the wheel ships."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ["stop_train", "stop_export", "stop_gui", "tests", "benchmarks", "scripts", ".ci"]
BIN = Path(sys.executable).parent


def python_files():
    return sorted(p for d in SOURCES if (ROOT / d).is_dir() for p in (ROOT / d).rglob("*.py"))


def test_sources_parse_as_python_310():
    files = python_files()
    assert len(files) > 10
    for path in files:
        ast.parse(path.read_text(encoding="utf-8"), filename=str(path), feature_version=(3, 10))


def test_no_stdlib_api_newer_than_310():
    # `long` is excluded: vermin mistakes torch's Tensor.long() for Python 2's builtin
    cmd = [str(BIN / "vermin"), "-t=3.10-", "--violations", "--no-tips", "--exclude", "long", "-q"]
    result = subprocess.run(
        cmd + [str(ROOT / d) for d in SOURCES if (ROOT / d).is_dir()], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "module",
    [
        "stop_train",
        "stop_train.config",
        "stop_train.labels",
        "stop_train.tolerances",
        "stop_train.video",
        "stop_train.video.decode",
        "stop_train.video.source",
        "stop_train.data",
        "stop_export",
        "stop_train.schema",
        "stop_export.runtime.backends",
        "stop_export.runtime.frames",
        "stop_export.recognize_cli",
        "stop_export.runtime.tokenizer",
        "stop_gui",
        "stop_gui.window",
        "stop_gui.pipeline",
        "stop_export.runtime.trt_backend",
    ],
)
def test_light_modules_import_without_torch(module):
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # any import of torch now fails\n"
        f"import {module}\n"
        "import stop_train.config as c\n"
        "assert c.load_config('stop-b32').frames == 8\n"
        "assert 'open_clip' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_the_runtime_is_one_module_and_every_name_loads_without_torch_or_onnx():
    code = (
        "import sys\n"
        "for blocked in ('torch', 'onnx', 'onnxscript', 'open_clip', 'tensorrt'):\n"
        "    sys.modules[blocked] = None  # any import of them now fails\n"
        "import stop_export.runtime as runtime\n"
        "assert len(runtime.__all__) >= 30\n"
        "for name in runtime.__all__:\n"
        "    getattr(runtime, name)\n"
        "assert issubclass(runtime.BankError, runtime.StopError)\n"
        "assert not any(m.startswith(('stop_train.model', 'stop_train.engine', 'stop_export.onnx')) for m in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_wheel_ships_presets_and_labels_and_no_torch_dependency(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        metadata = next(zf.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    for preset in ["stop-b32", "stop-b16", "stop-l14", "stop-official-b32", "tiny"]:
        assert f"stop_train/models/presets/{preset}.json" in names
    for labels in ["ucf101", "hmdb51", "kinetics400", "ssv2"]:
        assert f"stop_train/models/labels/{labels}.txt" in names
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    base = [r for r in requires if "extra ==" not in r]
    assert base and not any("torch" in r for r in base), base
    assert any("torch" in r and "extra == " in r and "train" in r for r in requires)
    assert "Requires-Python: >=3.10" in metadata


def test_installed_layout_finds_its_own_presets(wheel, tmp_path):
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(tmp_path)
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import stop_train.config as c, stop_train.labels as l\n"
        "print(c.presets_dir()); print(l.labels_dir()); print(len(l.load_labels('ucf101')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": ""},
    )
    assert result.returncode == 0, result.stderr
    presets, labels, count = result.stdout.split()
    assert Path(presets) == tmp_path / "stop_train" / "models" / "presets"
    assert Path(labels) == tmp_path / "stop_train" / "models" / "labels" and count == "101"


def test_every_error_class_of_ours_derives_from_the_root():
    """One error family (`stop_train.errors.StopError`): an entry point catches the root once. Read from the
    sources (no imports): every class whose bases name an exception derives from StopError, directly or not."""
    found = {}
    for package in ("stop_train", "stop_export", "stop_gui"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ClassDef):
                    found[node.name] = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
    errors = {name for name, bases in found.items() if any(b.endswith(("Error", "Exception")) for b in bases)}
    family = {"StopError"}
    while grown := {n for n in errors - family if found[n] & family}:
        family |= grown
    assert len(family) >= 16
    assert errors - family == set(), f"error classes outside the StopError family: {sorted(errors - family)}"
