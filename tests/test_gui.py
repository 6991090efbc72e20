"""stop-gui, offscreen with pytest-qt: a generated video with the tiny exported model gives predictions,
events, overlays; failures show messages; closing leaves no thread running; the CLI takes a screenshot."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings  # noqa: E402

from stop_export.runtime.events import EventCfg  # noqa: E402
from stop_gui.window import MainWindow  # noqa: E402
from stop_train.data.synthetic import SyntheticSpec, render_scene, write_video  # noqa: E402


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("gui") / "left.avi"
    write_video(path, render_scene("MovingLeft", SyntheticSpec(frames=100), np.random.default_rng(0)), fps=25)
    return path


@pytest.fixture
def window(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    w = MainWindow(predict_every_s=0.2, settings=settings)
    qtbot.addWidget(w)
    w.show()
    yield w
    w.close()


def test_predictions_events_overlays_and_a_clean_close(window, exported, video, qtbot, tmp_path):
    assert window.open_model(str(exported["dynamic"]), "cpu")
    window.event_cfg = EventCfg(smoothing=1.0, on=0.0, off=0.0, min_duration_s=0.0)  # every label opens an event
    window.loop_box.setChecked(True)
    window.open_source(str(video))
    threads = [t for t, _ in window.threads]
    assert len(threads) == 2 and all(t.isRunning() for t in threads)
    shown = []
    window.windowShown.connect(shown.append)
    qtbot.waitUntil(lambda: len(shown) >= 3, timeout=20000)
    w = shown[-1]
    assert w.scores.shape == (6,) and abs(w.scores.sum() - 1) < 1e-6 and w.inference_s > 0
    assert window.topk.top_label() in w.labels
    assert window.video._mask is not None and window.video._mask.shape == (4, 4)
    assert window.plot.values is not None and len(window.plot.values) == 3  # T-1 gaps
    window.heatmap_box.setChecked(False)
    assert not window.video.heatmap
    window.heatmap_box.setChecked(True)
    assert window.video.heatmap
    window.finish_events()
    assert window.table.rowCount() == 6
    rows = json.loads(window.export_events(tmp_path / "events.json").read_text())
    assert {r["label"] for r in rows} == set(w.labels)
    assert window.export_events(tmp_path / "events.csv").read_text().startswith("label,start_s,end_s,peak")
    assert all(e2e >= inf for inf, e2e in window.latencies)
    window.close()
    assert not any(t.isRunning() for t in threads)


def test_lattice_model_turns_the_heatmap_off_with_the_reason(window, exported):
    assert window.open_model(str(exported["official"]), "cpu")
    assert not window.heatmap_box.isEnabled() and "lattice" in window.heatmap_note.text()


def test_failing_source_and_mismatched_model_show_messages(window, exported, qtbot, tmp_path):
    model = onnx.load(str(exported["dynamic"]))
    meta = json.loads(model.metadata_props[0].value)
    meta["labels"] = meta["labels"][:3]
    model.metadata_props[0].value = json.dumps(meta)
    bad = tmp_path / "mismatch.onnx"
    onnx.save(model, str(bad))
    assert not window.open_model(str(bad), "cpu")
    assert "scores 6 classes but its metadata lists 3 labels" in window.banner.text()
    assert window.open_model(str(exported["dynamic"]), "cpu")
    window.open_source(str(tmp_path / "missing.avi"))
    qtbot.waitUntil(lambda: "no video file at" in window.banner.text(), timeout=10000)


def test_relabelling_needs_the_text_encoder(window, exported, tmp_path):
    assert window.open_model(str(exported["dynamic"]), "cpu")
    assert window.relabel_button.isEnabled()
    assert window.apply_labels(["Biking", "Diving"]) and window.recognizer.labels == ["Biking", "Diving"]
    lone = tmp_path / "lone.onnx"
    lone.write_bytes(exported["dynamic"].read_bytes())  # no text encoder beside it
    assert window.open_model(str(lone), "cpu")
    assert not window.relabel_button.isEnabled() and "text encoder" in window.relabel_note.text()


def test_cli_starts_into_recognition_and_saves_a_screenshot(exported, video, tmp_path):
    shot = tmp_path / "shot.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run([str(Path(sys.executable).parent / "stop-gui"), "--model", str(exported["dynamic"]),
                             "--backend", "cpu", "--source", str(video), "--screenshot", str(shot),
                             "--quit-after", "3"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.is_file() and shot.stat().st_size > 10_000
