"""Issue 24: a write of user data that fails at any point (a crash, a full disk) leaves the previous state readable,
and leaves no temporary file behind (or the next write removes it)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from faults import each_fault, leftovers

from stop_export.runtime.bank import Example, LabelBank
from stop_export.runtime.search import SearchIndex, WindowCfg
from stop_train.atomic import atomic_write_json, dumps


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def small_bank(classes: int) -> LabelBank:
    rng = np.random.default_rng(classes)
    bank = LabelBank("f1", "/m/model.onnx")
    for c in range(classes):
        bank.add(
            f"class {c}",
            unit(rng.normal(size=(2, 8))),
            [Example(f"/v/{c}-{i}.mp4", 0.0, 1.0) for i in range(2)],
            f"a video of class {c}.",
            unit(rng.normal(size=8)),
            rng.normal(size=(2, 16)),
        )
    return bank


def same_bank(a: LabelBank, b: LabelBank) -> bool:
    return a.document() == b.document() and all(
        np.array_equal(getattr(a, k), getattr(b, k)) for k in ("text", "example", "example_class", "frames")
    )


def test_a_bank_write_that_fails_anywhere_keeps_the_previous_bank(tmp_path, monkeypatch):
    path = tmp_path / "site.json"
    old, new = small_bank(1), small_bank(2)
    old.save(path)
    outcomes = []
    for k, error in each_fault(monkeypatch, lambda: new.save(path)):
        now = LabelBank.load(path)
        assert same_bank(now, old if error else new), (
            k
        )  # a failed write changed nothing; a write that returned is whole
        assert leftovers(tmp_path) == [], k
        if error:
            assert error.filename in (str(path), str(path.with_suffix(".npz"))), k  # the file, not a temporary name
        outcomes.append(error is None)
        old.save(path)
    assert outcomes[0] is False and outcomes[-1] is True


def small_index(videos: int) -> SearchIndex:
    rng = np.random.default_rng(videos)
    index = SearchIndex("f1", "/m/model.onnx", WindowCfg(8, 0.25, 1.0))
    from stop_export.runtime.search import IndexedVideo

    index.videos = [IndexedVideo(f"/v/{i}.mp4", 100 + i, 7, 3.0, 2) for i in range(videos)]
    index.embedding = unit(rng.normal(size=(2 * videos, 8)))
    index.video = np.repeat(np.arange(videos), 2).astype(np.int32)
    index.start, index.end = np.tile([0.0, 1.0], videos), np.tile([1.75, 2.75], videos)
    return index


def test_an_index_write_that_fails_anywhere_keeps_the_previous_index(tmp_path, monkeypatch):
    path = tmp_path / "index"
    old, new = small_index(1), small_index(3)
    old.save(path)
    for k, error in each_fault(monkeypatch, lambda: new.save(path)):
        now = SearchIndex.load(path)
        want = old if error else new
        assert [v.path for v in now.videos] == [v.path for v in want.videos], k
        assert np.array_equal(now.embedding, want.embedding) and np.array_equal(now.end, want.end), k
        assert leftovers(tmp_path) == [], k
        old.save(path)


def test_pairs_of_the_old_format_are_read_and_edits_to_the_json_count(tmp_path):
    bank = small_bank(2)
    path = tmp_path / "old.json"  # as the toolkit wrote banks before: the document only in the JSON
    path.write_text(json.dumps({**bank.document(), "arrays": "old.npz"}), encoding="utf-8")
    np.savez(
        tmp_path / "old.npz",
        text=bank.text,
        example=bank.example,
        example_class=bank.example_class,
        frames=bank.frames.astype(np.float32),
    )
    assert same_bank(LabelBank.load(path), bank)
    bank.save(path)  # the new format; a person edits its JSON: the tools see the edit
    doc = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(dict(doc, alpha=3.5)), encoding="utf-8")
    assert LabelBank.load(path).alpha == 3.5
    path.unlink()  # a crash after the first npz of a new bank: the npz alone is the bank
    assert same_bank(LabelBank.load(path), bank)


def test_temporary_files_of_a_killed_writer_are_removed_by_the_next_write(tmp_path):
    path = tmp_path / "site.json"
    dead = 2**22 + 12345  # above the kernel's pid_max default: no such process
    stale = [
        tmp_path / f".site.npz.tmp-{dead}",
        tmp_path / f"site.npz.{dead}.tmp.npz",
        tmp_path / f"site.json.{dead}.tmp",
    ]
    for p in stale:
        p.write_bytes(b"half")
    small_bank(1).save(path)
    assert leftovers(tmp_path) == []


def test_json_is_strict_and_keeps_names_that_are_not_utf8(tmp_path):
    data = {"loss": float("nan"), "top1": float("inf"), "path": "caf\udce9.avi"}
    text = dumps(data)
    assert b"NaN" not in text and b"Infinity" not in text
    assert json.loads(text) == {"loss": None, "top1": None, "path": "caf\udce9.avi"}
    atomic_write_json(tmp_path / "m.json", data)
    assert json.loads((tmp_path / "m.json").read_text(encoding="utf-8"))["path"] == "caf\udce9.avi"


def together(pair, module: str, command: str, argvs: list[list[str]]) -> None:
    """Run `module`'s main once per argv, all at once, on the pair at `pair`: its lock is held until every one has
    said that it waits, so that all of them start before any may change the pair; each must then succeed."""
    import subprocess
    import sys

    from test_run_safety import hold

    from stop_export.runtime.files import pair_lock

    holder = hold(pair_lock(pair))
    run = f"import sys; from {module} import main; sys.exit(main(sys.argv[1:]))"
    procs = [
        subprocess.Popen([sys.executable, "-c", run, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for argv in argvs
    ]
    for proc in procs:
        assert f"waiting for another {command} to finish with" in proc.stderr.readline()
    holder.communicate("")
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err


def test_two_stop_teach_at_once_keep_both_classes(exported, tmp_path):
    """Two stop-teach adding classes to one bank: the second waits for the first (the bank's lock), so that
    neither saves over the other's class."""
    from stop_train.data.synthetic import SyntheticSpec, render_scene, write_video

    clip = tmp_path / "left.avi"
    write_video(clip, render_scene("MovingLeft", SyntheticSpec(frames=50), np.random.default_rng(0)), fps=25)
    bank = tmp_path / "site.json"
    together(
        bank,
        "stop_export.teach_cli",
        "stop-teach",
        [
            ["add", str(exported["dynamic"]), "--bank", str(bank), "--label", label, str(clip)]
            for label in ("first", "second")
        ],
    )
    assert sorted(LabelBank.load(bank).names) == ["first", "second"]


def test_json_output_never_holds_nan(capsys):
    from stop_export.recognize_cli import Printer

    printer = Printer(True, None)
    printer.window(1.0, [("a", float("nan")), ("b", 0.5)])
    printer.video([("a", float("nan"))], "eval", 1)
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["top"][0] for line in lines] == [["a", None], ["a", None]]
    assert all("NaN" not in line for line in lines)


def test_stop_export_refuses_weights_that_are_not_finite(tmp_path, capsys):
    import torch

    from stop_export.cli import export_main
    from stop_train.model import create_model, save_model

    model = create_model("tiny")
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    save_model(model, tmp_path / "model")
    (tmp_path / "labels.txt").write_text("a\nb\n")
    out = tmp_path / "model.onnx"
    assert export_main([str(tmp_path / "model"), "--labels", str(tmp_path / "labels.txt"), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "the weights are not finite" in err and "nothing exported" in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_stop_search_index_checks_the_output_first_and_says_a_full_disk_in_one_line(
    retrieval_models, tmp_path, capsys, monkeypatch
):
    import errno
    import os

    from faults import Faults

    from stop_export.search_cli import main as search
    from stop_train.data.synthetic import SyntheticSpec, render_scene, write_video

    model = str(retrieval_models[0])
    videos = tmp_path / "videos"
    videos.mkdir()
    write_video(
        videos / "a.avi", render_scene("MovingLeft", SyntheticSpec(frames=50), np.random.default_rng(0)), fps=25
    )
    (tmp_path / "file").write_text("")
    unwritable = [tmp_path / "file" / "index"]  # under a file: nothing can be written there, not even by root
    if os.geteuid() != 0:
        (tmp_path / "ro").mkdir(mode=0o555)
        unwritable.append(tmp_path / "ro" / "index")
    for out in unwritable:
        assert search(["index", model, str(videos), "-o", str(out)]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and str(out.parent) in err, err
        assert "a.avi" not in err  # refused before any video was embedded
    index = tmp_path / "index"
    assert search(["index", model, str(videos), "-o", str(index)]) == 0
    before = SearchIndex.load(index)
    write_video(videos / "b.avi", render_scene("MovingUp", SyntheticSpec(frames=50), np.random.default_rng(1)), fps=25)
    capsys.readouterr()
    with monkeypatch.context() as m:
        Faults(m, 1, OSError(errno.ENOSPC, "No space left on device"), full=True)
        assert search(["index", model, str(videos), "-o", str(index)]) == 2
    err = capsys.readouterr().err
    assert "the disk is full; the index written before (if any) is unchanged" in err and "Traceback" not in err
    assert [v.path for v in SearchIndex.load(index).videos] == [v.path for v in before.videos]
    assert leftovers(tmp_path) == []


def test_an_export_that_fails_keeps_the_files_exported_before(tmp_path, capsys, monkeypatch):
    import errno

    from conftest import export_tiny
    from faults import Faults

    from stop_export.cli import export_main

    out = export_tiny(tmp_path, "dynamic")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    capsys.readouterr()
    # the disk fills while the model, the text encoder, the BPE file or the class statistics is written (each
    # written file costs an open, an fsync and a rename): none of the files exported before changes, so the
    # model never sits beside another export's text encoder (on 97ce12d model.onnx was already replaced)
    labels = (tmp_path / "labels.txt").read_text().split()
    (tmp_path / "other-labels.txt").write_text("\n".join(reversed(labels)) + "\n")  # a model.onnx of other bytes
    before["other-labels.txt"] = (tmp_path / "other-labels.txt").read_bytes()
    for at in (1, 4, 7, 10):
        with monkeypatch.context() as m:
            Faults(m, at, OSError(errno.ENOSPC, "No space left on device"), full=True)
            code = export_main(
                [str(tmp_path / "model"), "--labels", str(tmp_path / "other-labels.txt"), "-o", str(out)]
            )
        err = capsys.readouterr().err
        assert code == 2 and "the disk is full; the files exported before are unchanged" in err, (at, err)
        assert "Traceback" not in err and ".staging-" not in err and str(tmp_path) in err  # the file where it goes
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before, at
        assert leftovers(tmp_path) == [] and not list(tmp_path.glob(".*staging*")), at


def test_a_text_encoder_of_another_export_is_refused(exported, tmp_path):
    """A process killed between an export's renames can leave a model beside another export's text encoder: it is
    named, never used to score (their fingerprints differ)."""
    import shutil

    from stop_export.runtime.errors import BackendError
    from stop_export.runtime.recognizer import Recognizer

    for f in exported["dynamic"].parent.iterdir():
        if f.is_file():
            shutil.copy(f, tmp_path / f.name)
    other = exported["official"]
    shutil.copy(other.with_name(other.stem + ".text.onnx"), tmp_path / "tiny-dynamic.text.onnx")
    rec = Recognizer.open(tmp_path / "tiny-dynamic.onnx", "cpu")
    with pytest.raises(BackendError, match="belongs to another export than the model beside it"):
        rec.set_labels(["walking", "running"])


def test_two_stop_search_index_at_once_keep_both_videos(retrieval_models, tmp_path):
    """Two stop-search index into one index, each with a video of its own: the second waits for the first (the
    index's lock), so that neither saves over the other's videos."""
    from stop_train.data.synthetic import SyntheticSpec, render_scene, write_video

    clips = [tmp_path / "left.avi", tmp_path / "up.avi"]
    for clip, scene in zip(clips, ("MovingLeft", "MovingUp")):
        write_video(clip, render_scene(scene, SyntheticSpec(frames=50), np.random.default_rng(0)), fps=25)
    index = tmp_path / "index"
    together(
        index,
        "stop_export.search_cli",
        "stop-search index",
        [["index", str(retrieval_models[0]), str(clip), "-o", str(index)] for clip in clips],
    )
    assert sorted(v.path for v in SearchIndex.load(index).videos) == sorted(map(str, clips))
