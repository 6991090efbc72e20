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
        BOM + "label,youtube_id,time_start,time_end,split\r\nabseiling,aaa,1,11,train\r\n", encoding="utf-8")
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
    (ssv2 / "something-something-v2-labels.json").write_text(BOM + json.dumps({t: str(i) for i, t in enumerate(SSV2)}),
                                                              encoding="utf-8")
    (ssv2 / "something-something-v2-train.json").write_text(BOM + json.dumps([
        {"id": "7", "label": "pushing a pen from left to right", "template": "Pushing [something] from left to right",
         "placeholders": ["a pen"]}]), encoding="utf-8")
    (ssv2 / "something-something-v2-validation.json").write_text(BOM + "[]", encoding="utf-8")
    touch(ssv2 / "20bn-something-something-v2" / "7.webm")
    assert [i.label for i in index_ssv2(ssv2).splits["train"]] == [SSV2.index("Pushing something from left to right")]
