"""Issue 24, training side: checkpoints and run files survive a failed write at any point, one stop-train per run
directory, no run silently replaces another, a loss that is not finite stops the run, a damaged checkpoint is
named and the previous one used, a full disk is said in words."""

from __future__ import annotations

import csv
import errno
import subprocess
import sys

import pytest
import torch
from faults import each_fault, leftovers
from test_training import args, data_root  # noqa: F401  (the module's synthetic data set)

from stop_train.cli import main
from stop_train.config import load_config
from stop_train.engine.checkpoint import (
    CheckpointWriteError,
    link_checkpoint,
    load_checkpoint,
    rewrite_state,
    save_checkpoint,
    usable,
)
from stop_train.rundir import append_row


class Tiny(torch.nn.Module):
    def __init__(self, value: float):
        super().__init__()
        self.w = torch.nn.Parameter(torch.full((3, 2), value))


def saved(folder) -> tuple[float, int]:
    weights, state = load_checkpoint(usable(folder))
    return float(weights["w"][0, 0]), state["step"]


def test_a_checkpoint_save_that_fails_anywhere_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    cfg, last, best = load_config("tiny"), tmp_path / "checkpoints" / "last", tmp_path / "checkpoints" / "best"
    save_checkpoint(last, Tiny(1.0), cfg, {"step": 1})
    link_checkpoint(last, best)
    writes = {
        "save": lambda: save_checkpoint(last, Tiny(2.0), cfg, {"step": 2}),
        "rewrite": lambda: rewrite_state(last, {"step": 2}),
        "link": lambda: link_checkpoint(last, best),
    }
    for what, write in writes.items():
        for k, error in each_fault(monkeypatch, write):
            target = best if what == "link" else last
            value, step = saved(target)
            if error is not None:  # nothing changed, and the message says where
                assert isinstance(error, CheckpointWriteError) and str(target) in str(error), (what, k)
            if what != "link":
                assert (value, step) == ((1.0, 1) if error else (2.0 if what == "save" else 1.0, 2)), (what, k)
            assert leftovers(tmp_path) == [], (what, k)
            save_checkpoint(last, Tiny(1.0), cfg, {"step": 1})


def test_a_full_disk_is_said_in_words_and_loses_nothing(tmp_path, monkeypatch):
    last = tmp_path / "last"
    save_checkpoint(last, Tiny(1.0), load_config("tiny"), {"step": 1})
    torn = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 6528 vs 6420")
    for error in (torn, OSError(errno.ENOSPC, "No space left on device")):

        def fail(*a, **k):
            raise error

        with monkeypatch.context() as m:
            m.setattr(torch, "save", fail)
            with pytest.raises(CheckpointWriteError) as err:
                save_checkpoint(last, Tiny(2.0), load_config("tiny"), {"step": 2})
        message = str(err.value)
        assert "disk is full" in message and str(last) in message and "written before are unchanged" in message
        assert "\n" not in message and saved(last) == (1.0, 1) and leftovers(tmp_path) == []


def test_weights_that_are_not_finite_are_never_saved(tmp_path):
    from stop_train.errors import TrainingError

    with pytest.raises(TrainingError, match="not finite"):  # one line from stop-train, as every error of ours
        save_checkpoint(tmp_path / "last", Tiny(float("nan")), load_config("tiny"), {"step": 1})
    assert not (tmp_path / "last").exists()


def test_metrics_rows_survive_a_failed_append(tmp_path, monkeypatch):
    path, fields = tmp_path / "metrics.csv", ["epoch", "loss"]
    append_row(path, fields, {"epoch": 1, "loss": 0.5})
    before = path.read_text()
    for k, error in each_fault(monkeypatch, lambda: append_row(path, fields, {"epoch": 2, "loss": 0.4})):
        rows = list(csv.DictReader(open(path, encoding="utf-8")))
        assert [r["epoch"] for r in rows] == (["1"] if error else ["1", "2"]), k
        assert leftovers(tmp_path) == [], k
        path.write_text(before)


def hold(lock):
    """A process that holds the file lock `lock` until its standard input closes."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from filelock import FileLock; "
            f"lock = FileLock({str(lock)!r}); lock.acquire(); print('held', flush=True); "
            "sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_stop_train_on_one_run_dir_stops_with_one_line(data_root, tmp_path, capsys):  # noqa: F811
    run = tmp_path / "run"
    run.mkdir()
    holder = hold(run / ".lock")  # another process (a first stop-train) holds the run
    try:
        assert main(args(data_root, run, "--epochs", "1")) == 1
        err = capsys.readouterr().err
        assert f"another stop-train is using {run} (lock {run / '.lock'})" in err and "Traceback" not in err
        assert not (run / "config.json").exists() and not (run / "metrics.csv").exists()
    finally:
        holder.communicate("")
    assert main(args(data_root, run, "--epochs", "1")) == 0  # the lock is released with its process
    holder = hold(run / ".lock")
    try:
        assert main(["--resume", str(run), "--workers", "0"]) == 1
        assert "another stop-train is using" in capsys.readouterr().err
        # stop-train stats and eval write into the run (its checkpoint, its metrics): they wait their turn too
        assert main(["stats", str(run), "--workers", "0"]) == 1
        assert main(["eval", str(run), "--workers", "0"]) == 1
        err = capsys.readouterr().err
        assert err.count("another stop-train is using") == 2 and "Traceback" not in err
    finally:
        holder.communicate("")
    assert len(list(csv.DictReader(open(run / "metrics.csv")))) == 1  # one epoch, written once


def test_a_new_run_does_not_replace_a_finished_one(data_root, tmp_path, capsys):  # noqa: F811
    run = tmp_path / "run"
    assert main(args(data_root, run, "--epochs", "1")) == 0
    config = (run / "config.json").read_text()
    capsys.readouterr()
    assert main(args(data_root, run, "--epochs", "2", "--lr", "1e-4")) == 1
    err = capsys.readouterr().err
    assert "already holds a run" in err and "--resume" in err and "--overwrite" in err and "Traceback" not in err
    assert (run / "config.json").read_text() == config
    assert main(args(data_root, run, "--epochs", "1", "--lr", "1e-4", "--overwrite")) == 0
    aside = next(tmp_path.glob("run.replaced-*"))
    assert (aside / "config.json").read_text() == config and (aside / "checkpoints" / "last").is_dir()
    assert '"lr": 0.0001' in (run / "config.json").read_text()
    assert [r["epoch"] for r in csv.DictReader(open(run / "metrics.csv"))] == ["1"]  # only the new run's rows
    assert "moved to" in capsys.readouterr().err


def test_a_loss_that_is_not_finite_stops_the_run_at_its_step(data_root, tmp_path, capsys, monkeypatch):  # noqa: F811
    import stop_train.engine.loop as loop

    monkeypatch.setattr(loop.F, "cross_entropy", lambda logits, *a, **k: (logits * float("nan")).sum())
    run = tmp_path / "run"
    assert main(args(data_root, run, "--epochs", "1")) == 1
    err = capsys.readouterr().err
    assert "loss is nan at step 1 (epoch 1, batch 1)" in err and "no checkpoint was saved" in err
    assert "Traceback" not in err
    assert not (run / "checkpoints" / "last").exists()


def test_resume_names_a_damaged_checkpoint_and_uses_the_previous_good_one(data_root, tmp_path, capsys):  # noqa: F811
    run = tmp_path / "run"
    assert main(args(data_root, run, "--epochs", "1")) == 0  # last and best: epoch 1
    last = run / "checkpoints" / "last"
    head = (last / "model.safetensors").read_bytes()[:1000]
    (last / "model.safetensors").unlink()  # best holds a hard link to the same file: a copy cut short, not the file
    (last / "model.safetensors").write_bytes(head)  # truncated
    capsys.readouterr()
    assert main(["--resume", str(run), "--workers", "0"]) == 0
    err = capsys.readouterr().err
    assert f"{last / 'model.safetensors'} is damaged" in err and f"resuming from {run / 'checkpoints' / 'best'}" in err
    for name in ("last", "best"):
        (run / "checkpoints" / name / "trainer_state.pt").unlink()
        (run / "checkpoints" / name / "trainer_state.pt").write_bytes(b"")  # 0 bytes
    assert main(["--resume", str(run), "--workers", "0"]) == 1
    err = capsys.readouterr().err
    assert "trainer_state.pt is damaged" in err and "no readable checkpoint" in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("stop-train")]) == 1


def test_every_run_file_writer_keeps_the_previous_file_when_it_fails(tmp_path, monkeypatch):
    """config.json / skipped_videos.json / *_metrics.json (write_json), labels.txt, class statistics, model folders:
    a write that fails at any point leaves the previous content."""
    import json

    import numpy as np

    from stop_train.atomic import atomic_write_text
    from stop_train.engine.checkpoint import write_json
    from stop_train.model import create_model, load_model, save_model
    from stop_train.statistics import FrameStatistics

    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 4))
    model = create_model("tiny")
    first = next(model.parameters())
    writers = {
        "config.json": (
            lambda v: write_json(tmp_path / "config.json", {"v": v}),
            lambda: json.loads((tmp_path / "config.json").read_text())["v"],
        ),
        "labels.txt": (
            lambda v: atomic_write_text(tmp_path / "labels.txt", f"{v}\nb\n"),
            lambda: int((tmp_path / "labels.txt").read_text().split()[0]),
        ),
        "statistics": (
            lambda v: FrameStatistics.from_sums(
                ["a", "b"],
                np.stack([x[:4].sum(0), x[4:].sum(0)]) * v,
                np.array([4.0, 4.0]),
                x.T @ x * v**2,
                fingerprint=str(v),
            ).save(tmp_path / "s.npz"),
            lambda: int(FrameStatistics.load(tmp_path / "s.npz").fingerprint),
        ),
        "model folder": (
            lambda v: (torch.nn.init.constant_(first, v), save_model(model, tmp_path / "m")),
            lambda: int(next(load_model(tmp_path / "m").parameters()).flatten()[0]),
        ),
    }
    for name, (write, read) in writers.items():
        write(1)
        for k, error in each_fault(monkeypatch, lambda: write(2)):
            assert read() == (1 if error else 2), (name, k)
            assert leftovers(tmp_path) == [], (name, k)
            write(1)


def test_a_damaged_model_file_is_named_by_eval_and_export(tmp_path, capsys):
    from stop_export.cli import export_main
    from stop_train.model import create_model, save_model

    folder = save_model(create_model("tiny"), tmp_path / "model")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:500])  # a copy cut short
    (tmp_path / "labels.txt").write_text("a\nb\n")
    assert export_main([str(folder), "--labels", str(tmp_path / "labels.txt"), "-o", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert f"{weights} is damaged" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["eval", str(folder), "--dataset", "synthetic-motion", "--data-root", str(tmp_path / "d")]) == 1
    err = capsys.readouterr().err
    assert f"{weights} is damaged" in err and "Traceback" not in err


def test_two_new_runs_started_in_one_second_get_a_folder_each(data_root, tmp_path, monkeypatch):  # noqa: F811
    import stop_train.cli as cli
    import stop_train.commands as commands

    monkeypatch.setattr(commands, "RUNS_ROOT", tmp_path / "runs")
    monkeypatch.setattr(commands.time, "strftime", lambda *a: "20261207-101500")
    argv = [
        a
        for a in args(data_root, tmp_path / "unused", "--epochs", "1")
        if a not in ("--run-dir", str(tmp_path / "unused"))
    ]
    assert cli.main(argv) == 0 and cli.main(argv) == 0
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert runs == ["synthetic-motion-tiny-20261207-101500", "synthetic-motion-tiny-20261207-101500-2"]


def test_a_model_folder_killed_between_its_renames_is_read_from_what_it_left(tmp_path, capsys):
    """`save_model` replaces a folder by two renames (FOLDER -> FOLDER.old, staging -> FOLDER); kill -9 between them
    leaves only FOLDER.old. Loading and exporting the folder read that, and the next save cleans it up."""
    import os

    from stop_export.cli import export_main
    from stop_train.model import create_model, load_model, save_model

    model = create_model("tiny")
    folder = save_model(model, tmp_path / "model")
    os.replace(folder, tmp_path / "model.old")  # the first rename done, the process killed before the second
    assert load_model(folder).cfg == model.cfg
    (tmp_path / "labels.txt").write_text("a\nb\n")
    assert export_main([str(folder), "--labels", str(tmp_path / "labels.txt"), "-o", str(tmp_path / "m.onnx")]) == 0
    save_model(model, folder)
    assert (folder / "model.safetensors").is_file() and not (tmp_path / "model.old").exists()


def test_a_full_disk_between_recording_the_best_epoch_and_linking_it_is_repaired_on_resume(
    data_root,  # noqa: F811
    tmp_path,
    monkeypatch,
    capsys,
    caplog,
):
    """A newcomer filled the disk at the end of epoch 1: `best` was linked but last's state never learnt the
    validation result, so a resumed run would have replaced `best` whatever its score. Now the state is written
    first; a failure before the link is repaired when the run resumes."""
    import stop_train.engine.loop as loop

    run, real = tmp_path / "run", loop.link_checkpoint

    def full(*a, **k):
        raise CheckpointWriteError(errno.ENOSPC, "could not write checkpoint best: the disk is full")

    monkeypatch.setattr(loop, "link_checkpoint", full)
    assert main(args(data_root, run, "--epochs", "2")) == 1
    assert "disk is full" in capsys.readouterr().err
    _, state = load_checkpoint(run / "checkpoints" / "last")
    assert state["best_epoch"] == 0 and state["best_score"] >= 0 and not (run / "checkpoints" / "best").exists()
    monkeypatch.setattr(loop, "link_checkpoint", real)
    assert main(["--resume", str(run), "--workers", "0"]) == 0
    assert "is the best epoch (1) but was not linked" in caplog.text
    _, best = load_checkpoint(run / "checkpoints" / "best")
    assert best["epoch"] >= 1 and best["best_epoch"] == best["epoch"] - 1  # the best epoch's own checkpoint


def test_ctrl_c_while_probing_videos_says_one_line_and_keeps_the_probes(
    data_root,  # noqa: F811
    tmp_path,
    monkeypatch,
    capsys,
):
    """A newcomer's Ctrl-C during training's probe printed a KeyboardInterrupt traceback."""
    import json

    from faults import interrupt_probing_at

    interrupt_probing_at(monkeypatch, 4)
    argv = args(data_root, tmp_path / "run", "--epochs", "1")
    cache = tmp_path / "interrupted-probe.json"
    argv[argv.index("--probe-cache") + 1] = str(cache)
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert "interrupted before training started" in err and "Traceback" not in err
    assert len(json.loads(cache.read_text())) >= 1  # what finished before Ctrl-C (threads: not always 3)


def test_a_start_that_fails_on_its_inputs_leaves_no_empty_run(tmp_path, capsys, monkeypatch):
    """A newcomer's typo in --data-root left runs/ucf101-stop-b32-TIME/ holding only its lock, once per try."""
    import stop_train.commands as commands

    monkeypatch.setattr(commands, "RUNS_ROOT", tmp_path / "runs")
    argv = ["--dataset", "ucf101", "--data-root", str(tmp_path / "nowhere"), "--preset", "tiny", "--pretrained", "none"]
    assert main(argv) == 1 and main([*argv, "--run-dir", str(tmp_path / "mine")]) == 1
    assert "root folder not found" in capsys.readouterr().err
    assert not (tmp_path / "mine").exists() and not list((tmp_path / "runs").glob("*"))
