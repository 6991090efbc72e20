"""The runtime: clip buffer, events, `stop-recognize` on a generated video and a generated 30 fps stream,
and the runtime working from the built wheel in a fresh virtual environment without PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from stop_export.cli import recognize_main
from stop_export.recognize_cli import stream_windows
from stop_export.runtime.buffer import ClipBuffer
from stop_export.runtime.events import EventCfg, EventDetector
from stop_export.runtime.recognizer import Recognizer
from stop_train.data.synthetic import SyntheticSpec, render_scene, write_video
from stop_train.video import PreprocessCfg


def stamped(count: int, fps: float, height: int = 48, width: int = 64):
    """Frames whose pixel value encodes their index, with timestamps i / fps."""
    for i in range(count):
        yield i / fps, np.full((height, width, 3), i % 256, dtype=np.uint8)


def test_clip_buffer_samples_the_last_t_frames_at_the_interval():
    buffer = ClipBuffer(frames=4, frame_interval_s=0.5, predict_every_s=1.0, preprocess=PreprocessCfg(size=32))
    due = []
    for t, frame in stamped(91, 30.0):  # 3 s at 30 fps
        buffer.push(frame, t)
        if buffer.due():
            clip, end = buffer.clip()
            assert clip.shape == (4, 32, 32, 3) and clip.dtype == np.uint8
            due.append((round(end, 3), clip[:, 0, 0, 0].tolist()))
    # the first clip needs 1.5 s of history; then one every second
    assert [d[0] for d in due] == [1.5, 2.5]
    assert due[0][1] == [0, 15, 30, 45] and due[1][1] == [30, 45, 60, 75]
    assert len(buffer._times) <= 2 * 15 + 2 * 15 + 2  # keeps about span + one interval, not the whole stream


def test_clip_buffer_ignores_repeated_timestamps_and_rejects_bad_settings():
    buffer = ClipBuffer(2, 0.1, 0.1, PreprocessCfg(size=8))
    buffer.push(np.zeros((8, 8, 3), np.uint8), 0.0)
    buffer.push(np.full((8, 8, 3), 9, np.uint8), 0.0)
    assert buffer.latest == 0.0 and not buffer.ready
    with pytest.raises(ValueError):
        ClipBuffer(2, 0.0, 1.0, PreprocessCfg(size=8))


def test_events_hysteresis_smoothing_and_minimum_duration():
    det = EventDetector(["a", "b"], EventCfg(smoothing=1.0, on=0.6, off=0.4, min_duration_s=1.0))
    seq = [(0, [0.9, 0.1]), (1, [0.5, 0.5]), (2, [0.45, 0.55]), (3, [0.3, 0.7]), (3.5, [0.9, 0.1]), (4, [0.1, 0.9])]
    done = [e for t, s in seq for e in det.update(t, np.array(s))]
    # 'a' holds through 0.5 and 0.45 (hysteresis) and ends at 3; 'b' (3 -> 3.5) and the second 'a'
    # (3.5 -> 4) are shorter than 1 s and dropped; 'b' starts again at 4 and is still open
    assert [(e.label, e.start_s, e.end_s) for e in done] == [("a", 0, 3)]
    assert [(e.label, e.start_s) for e in det.active()] == [("b", 4)]
    closing = det.finish(5.0)
    assert [(e.label, e.start_s, e.end_s) for e in closing] == [("b", 4, 5.0)]
    smooth = EventDetector(["a"], EventCfg(smoothing=0.5, on=0.6, off=0.4, min_duration_s=0))
    assert not smooth.update(0, np.array([0.0])) and not smooth.update(1, np.array([1.0]))
    assert not smooth.active()  # EMA 0.5 < 0.6: one high score alone does not start an event
    with pytest.raises(ValueError):
        EventCfg(on=0.3, off=0.5)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("video") / "left.avi"
    write_video(path, render_scene("MovingLeft", SyntheticSpec(frames=75), np.random.default_rng(0)), fps=25)
    return path


def test_recognize_video_live_and_eval_json(exported, video, tmp_path, capsys):
    events = tmp_path / "events.jsonl"
    code = recognize_main(
        [
            str(exported["dynamic"]),
            "--source",
            str(video),
            "--json",
            "--predict-every",
            "0.5",
            "--frame-interval",
            "0.25",
            "--on",
            "0",
            "--off",
            "0",
            "--min-duration",
            "0",
            "--events",
            str(events),
        ]
    )
    assert code == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    windows = [r for r in records if r["type"] == "window"]
    # 3 s at 25 fps (frames 0.04 s apart): the first clip needs 0.75 s of history, then one clip at the
    # first frame 0.5 s or more after the previous one
    assert [w["t"] for w in windows] == [0.76, 1.28, 1.8, 2.32, 2.84]
    assert all(len(w["top"]) == 3 and w["top"][0][1] >= w["top"][1][1] for w in windows)
    assert records[-1]["type"] == "video" and records[-1]["windows"] == 5
    logged = [json.loads(line) for line in events.read_text().splitlines()]
    assert logged and all(e["type"] == "event" for e in logged)
    assert recognize_main([str(exported["official"]), "--source", str(video), "--protocol", "eval", "--json"]) == 0
    (final,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert final["protocol"] == "eval" and abs(sum(s for _, s in final["top"]) - 1) < 0.5


def test_recognize_stream_pushed_at_30_fps(exported):
    rec = Recognizer.open(exported["dynamic"], backend="cpu")
    frames = render_scene("MovingUp", SyntheticSpec(frames=90), np.random.default_rng(1))
    buffer = ClipBuffer(rec.meta.frames, 0.2, 0.5, rec.preprocess)
    out = list(stream_windows(rec, ((i / 30.0, f) for i, f in enumerate(frames)), buffer))
    assert [round(t, 3) for t, _ in out] == [0.6, 1.1, 1.6, 2.1, 2.6]
    for _, scores in out:
        assert scores.shape == (6,) and abs(scores.sum() - 1) < 1e-6


def test_recognize_errors_are_one_line(exported, tmp_path, capsys):
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"not a video")
    for source in [str(tmp_path / "missing.avi"), str(bad)]:
        assert recognize_main([str(exported["dynamic"]), "--source", source]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("stop-recognize:") and "Traceback" not in "".join(err)
    no_meta = tmp_path / "plain.onnx"
    import onnx

    model = onnx.load(str(exported["official"]))
    del model.metadata_props[:]
    onnx.save(model, str(no_meta))
    assert recognize_main([str(no_meta), "--source", str(bad)]) == 2
    assert "no STOP metadata" in capsys.readouterr().err
    assert recognize_main(["no-such-model", "--source", str(bad)]) == 2  # a mistyped model: read as a run or preset
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'no-such-model' is not a run directory, a model folder or a preset" in err[0]


def test_a_reader_that_goes_away_stops_recognition_quietly(exported, video):
    """`stop-recognize ... | head -1`: the reader closes the pipe; the command stops with 141 (SIGPIPE), no traceback."""
    import subprocess
    import sys

    run = "import sys; from stop_export.cli import recognize_main; sys.exit(recognize_main(sys.argv[1:]))"
    proc = subprocess.Popen(
        [sys.executable, "-c", run, str(exported["dynamic"]), "--source", str(video), "--predict-every", "0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # before the model is even loaded: its first line meets a closed pipe
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert "Traceback" not in err and "Broken pipe" not in err, err


def test_events_reach_their_file_even_when_stdout_is_gone(tmp_path, monkeypatch):
    import sys

    from stop_export.recognize_cli import Printer
    from stop_export.runtime.events import Event

    class Gone:
        def write(self, _text):
            raise BrokenPipeError

        def flush(self):
            pass

    printer = Printer(False, tmp_path / "events.jsonl")
    monkeypatch.setattr(sys, "stdout", Gone())
    with pytest.raises(BrokenPipeError):
        printer.event(Event("waving", 1.0, 2.5, 0.9))
    printer.close()
    assert [json.loads(line)["label"] for line in (tmp_path / "events.jsonl").read_text().splitlines()] == ["waving"]


def test_readme_runtime_example_runs(exported, capsys):
    import re

    page = Path(__file__).resolve().parents[1] / "docs" / "recognition.md"
    block = re.search(r"## The runtime from Python\s+```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
    clips = np.zeros((2, 4, 64, 64, 3), np.uint8)
    code = block.group(1).replace('"model.onnx"', repr(str(exported["dynamic"])))
    exec(compile(code, str(page), "exec"), {"clips": clips})
    tops = eval(capsys.readouterr().out)
    classes = ("MovingLeft", "MovingRight", "MovingUp", "MovingDown", "GrowingBigger", "ShrinkingSmaller")
    assert len(tops) == 2 and all(len(top) == 3 and all(label in classes for label, _ in top) for top in tops)


def test_recognize_takes_plain_arguments(exported, video, capsys):
    from stop_export.recognize_cli import Printer, recognize
    from stop_export.runtime.events import EventCfg

    rec = Recognizer.open(exported["dynamic"], "cpu")
    assert (
        recognize(
            rec,
            str(video),
            Printer(True, None),
            predict_every_s=0.5,
            frame_interval_s=0.25,
            events=EventCfg(0.5, 0.0, 0.0, 0.0),
        )
        == 0
    )
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert records[-1]["type"] == "video" and records[-1]["windows"] == sum(r["type"] == "window" for r in records)
    assert any(r["type"] == "event" for r in records)
