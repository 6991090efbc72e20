"""Issue 24: files users bring - text and CSV files saved with a UTF-8 byte-order mark (Excel, Notepad), file names
that are not UTF-8 (legal on Linux) - are read as they are meant."""

from __future__ import annotations

import json
from pathlib import Path

from stop_train.data import index_kinetics400, index_list, index_ssv2
from stop_train.labels import load_labels

BOM = "\ufeff"
K400 = load_labels("kinetics400")
SSV2 = load_labels("ssv2")


def touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def test_files_with_a_byte_order_mark_are_read(tmp_path):
    (tmp_path / "annotations").mkdir()  # Kinetics annotations saved by Excel ("CSV UTF-8")
    (tmp_path / "annotations" / "train.csv").write_text(
        BOM + "label,youtube_id,time_start,time_end,split\r\nabseiling,aaa,1,11,train\r\n", encoding="utf-8"
    )
    touch(tmp_path / "train" / "abseiling" / "aaa_000001_000011.mp4")
    assert [i.label for i in index_kinetics400(tmp_path).splits["train"]] == [K400.index("abseiling")]

    labels = tmp_path / "labels.txt"
    labels.write_text(BOM + "open valve\nclose valve\n", encoding="utf-8")
    assert load_labels(labels) == ["open valve", "close valve"]

    touch(tmp_path / "l" / "clips" / "a.avi")
    (tmp_path / "l" / "train.txt").write_text(BOM + "clips/a.avi\topen valve\n", encoding="utf-8")
    index = index_list(tmp_path / "l", {"train": "train.txt"}, classes=labels)
    assert [(i.path.name, i.label) for i in index.splits["train"]] == [("a.avi", 0)]

    ssv2 = tmp_path / "ssv2"
    ssv2.mkdir()
    (ssv2 / "something-something-v2-labels.json").write_text(
        BOM + json.dumps({t: str(i) for i, t in enumerate(SSV2)}), encoding="utf-8"
    )
    (ssv2 / "something-something-v2-train.json").write_text(
        BOM
        + json.dumps(
            [
                {
                    "id": "7",
                    "label": "pushing a pen from left to right",
                    "template": "Pushing [something] from left to right",
                    "placeholders": ["a pen"],
                }
            ]
        ),
        encoding="utf-8",
    )
    (ssv2 / "something-something-v2-validation.json").write_text(BOM + "[]", encoding="utf-8")
    touch(ssv2 / "20bn-something-something-v2" / "7.webm")
    assert [i.label for i in index_ssv2(ssv2).splits["train"]] == [SSV2.index("Pushing something from left to right")]


def non_utf8_clips(root: Path) -> list[Path]:
    """Two class folders of clips whose names are not UTF-8 (b'caf\\xe9'), as os.fsdecode gives them."""
    import os

    import numpy as np

    from stop_train.data.synthetic import SyntheticSpec, render_scene, write_video

    rng, clips = np.random.default_rng(0), []
    for cls, scene in ((os.fsdecode(b"caf\xe9"), "MovingLeft"), ("up", "MovingUp")):
        for k in range(4):
            path = root / cls / os.fsdecode(b"clip\xe9_%d.avi" % k)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_video(path, render_scene(scene, SyntheticSpec(frames=12, width=48, height=32), rng), fps=25)
            clips.append(path)
    return clips


def test_file_names_that_are_not_utf8_work_end_to_end(exported, retrieval_models, tmp_path, capsys):
    import os

    from faults import leftovers

    from stop_export.runtime.bank import LabelBank
    from stop_export.runtime.search import SearchIndex
    from stop_export.search_cli import main as search
    from stop_export.teach_cli import main as teach
    from stop_train.cli import main as train

    clips = non_utf8_clips(tmp_path / "data")
    run = tmp_path / os.fsdecode(b"r\xe9un")  # the run directory's name is not UTF-8 either (TensorBoard is left out)
    assert (
        train(
            [
                "--dataset",
                "folder",
                "--data-root",
                str(tmp_path / "data"),
                "--preset",
                "tiny",
                "--pretrained",
                "none",
                "--val-fraction",
                "0.25",
                "--batch-size",
                "4",
                "--workers",
                "0",
                "--epochs",
                "1",
                "--probe-cache",
                str(tmp_path / "probe.json"),
                "--run-dir",
                str(run),
            ]
        )
        == 0
    )
    assert (run / "labels.txt").read_bytes() == b"caf\xe9\nup\n"  # the folder names as the file system has them
    assert load_labels(run / "labels.txt") == [os.fsdecode(b"caf\xe9"), "up"]
    assert "Traceback" not in capsys.readouterr().err

    bank = tmp_path / "bank.json"
    assert teach(["add", str(exported["dynamic"]), "--bank", str(bank), "--label", "x", str(clips[0])]) == 0
    assert teach(["list", "--bank", str(bank)]) == 0
    assert "clip\\xe9_0.avi" in capsys.readouterr().out  # printed readably, as `ls -b` shows it
    assert os.fsencode(LabelBank.load(bank).classes[0].examples[0].source) == os.fsencode(clips[0])

    index = tmp_path / "index"
    assert search(["index", str(retrieval_models[0]), str(tmp_path / "data"), "-o", str(index)]) == 0
    assert sorted(os.fsencode(v.path) for v in SearchIndex.load(index).videos) == sorted(map(os.fsencode, clips))
    assert search(["query", str(index), "a square moving left", "--top", "1"]) == 0
    assert "Traceback" not in capsys.readouterr().err and leftovers(tmp_path) == []
