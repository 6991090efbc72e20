"""`stop_train.rundir`: the one reader of a run directory's layout (torch-free)."""

from __future__ import annotations

import json

import pytest

from stop_train.rundir import RunDir, locate, read_labels


def make_run(root, checkpoints=("best", "last"), labels="\ufeffrun\r\n\r\n  walk \r\n"):
    root.mkdir(parents=True)
    (root / "config.json").write_text(json.dumps({"train": {"task": "recognition"}, "model": {}}), encoding="utf-8")
    if labels is not None:
        (root / "labels.txt").write_text(labels, encoding="utf-8")
    for name in checkpoints:
        folder = root / "checkpoints" / name
        folder.mkdir(parents=True)
        for file in ("model.safetensors", "config.json"):
            (folder / file).write_bytes(b"x")
    (root / "checkpoints").mkdir(exist_ok=True)
    return root


def test_a_run_its_checkpoints_and_a_model_folder_are_told_apart(tmp_path):
    run = make_run(tmp_path / "run")
    where = locate(run)
    assert where.run.path == run and where.checkpoint == "best" and where.folder == run / "checkpoints" / "best"
    inside = locate(run / "checkpoints" / "last")
    assert inside.run.path == run and inside.checkpoint == "last"
    assert locate(run, "last").folder == run / "checkpoints" / "last"
    alone = tmp_path / "model"
    alone.mkdir()
    for file in ("model.safetensors", "config.json"):
        (alone / file).write_bytes(b"x")
    assert locate(alone).run is None and locate(alone).folder == alone
    assert locate(tmp_path / "nothing") is None and locate(tmp_path) is None
    with pytest.raises(FileNotFoundError, match=r"no checkpoint 'epoch3' \(found: best, last\)"):
        locate(run, "epoch3")


def test_best_else_last_and_a_save_cut_between_its_renames(tmp_path):
    run = make_run(tmp_path / "run", checkpoints=("last",))
    assert RunDir(run).chosen() == "last" and locate(run).checkpoint == "last"
    (run / "checkpoints" / "last").rename(run / "checkpoints" / "last.old")  # killed between the two renames
    assert RunDir(run).checkpoint("last") == run / "checkpoints" / "last.old"
    assert locate(run).folder == run / "checkpoints" / "last.old"


def test_labels_are_read_one_way_and_config_errors_name_the_file(tmp_path):
    run = RunDir(make_run(tmp_path / "run"))
    assert run.labels() == ["run", "walk"] == read_labels(run.labels_file)
    assert run.task == "recognition"
    assert RunDir(make_run(tmp_path / "retrieval", labels=None)).labels() is None
    (run.path / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="config.json is damaged"):
        _ = RunDir(run.path).config
    (run.path / "config.json").write_text("[]", encoding="utf-8")
    with pytest.raises(ValueError, match="not a run's config.json"):
        _ = RunDir(run.path).config
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        _ = RunDir(tmp_path / "absent").config
