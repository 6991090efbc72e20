"""Dataset indexing: real split-file lines, per-format quirks, grouped hold-outs, missing videos, layout errors."""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from stop_train.data import (
    DATASET_SPLIT_ROLES,
    DATASETS,
    DatasetIndex,
    DatasetLayoutError,
    VideoItem,
    check_classes_have_training_clips,
    grouped_holdout,
    index_folder,
    index_hmdb51,
    index_kinetics400,
    index_list,
    index_ssv2,
    index_ucf101,
    open_dataset,
)
from stop_train.data.hmdb51 import hmdb_group
from stop_train.labels import load_labels

SHARED = Path(__file__).resolve().parents[2] / "shared"
UCF_LISTS = SHARED / "datasets" / "ucf101" / "ucfTrainTestlist"
UCF = load_labels("ucf101")
HMDB = load_labels("hmdb51")
K400 = load_labels("kinetics400")
SSV2 = load_labels("ssv2")


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


# ---------------------------------------------------------------- UCF101


def _ucf_lines() -> tuple[list[str], list[str], list[str]]:
    """classInd, trainlist01 and testlist01 lines: real ones (clips c01-c02 of groups g08-g10 / g01) or hand-written."""
    if SHARED.is_dir():
        raw = {n: (UCF_LISTS / n).read_bytes() for n in ("classInd.txt", "trainlist01.txt", "testlist01.txt")}
        for data in raw.values():  # the official files are CRLF throughout
            assert data.endswith(b"\r\n") and b"\n" not in data.replace(b"\r\n", b"")
        lines = {n: d.decode().split("\r\n")[:-1] for n, d in raw.items()}
        train = [line for line in lines["trainlist01.txt"] if re.search(r"_g(08|09|10)_c0[12]\.avi", line)]
        test = [line for line in lines["testlist01.txt"] if re.search(r"_g01_c0[12]\.avi", line)]
        return lines["classInd.txt"], train, test
    stem = {c: ("HandStandPushups" if c == "HandstandPushups" else c) for c in UCF}
    train = [
        f"{c}/v_{stem[c]}_g{g:02d}_c{k:02d}.avi {i + 1}" for i, c in enumerate(UCF) for g in (8, 9, 10) for k in (1, 2)
    ]
    test = [f"{c}/v_{stem[c]}_g01_c{k:02d}.avi" for c in UCF for k in (1, 2)]
    return [f"{i + 1} {c}" for i, c in enumerate(UCF)], train, test


CLASS_IND, TRAIN, TEST = _ucf_lines()
SMALL_TRAIN, SMALL_TEST = [line for line in TRAIN if "_g08_" in line], TEST[:20]  # fewer files to create


def make_ucf(root: Path, train=TRAIN, test=TEST, skip=lambda rel: False) -> Path:
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    for name, lines in (("classInd.txt", CLASS_IND), ("trainlist01.txt", train), ("testlist01.txt", test)):
        (lists / name).write_bytes("".join(line + "\r\n" for line in lines).encode())
    for line in train + test:
        rel = line.split()[0]
        if not skip(rel):
            _touch(root / "UCF-101" / rel)
    return root


@pytest.fixture(scope="module")
def ucf_root(tmp_path_factory) -> Path:
    return make_ucf(tmp_path_factory.mktemp("ucf"))


def test_ucf101_index_follows_classind_and_folder_names(ucf_root):
    index = index_ucf101(ucf_root, fold=1)
    assert index.classes == UCF == [line.split()[1] for line in CLASS_IND]
    assert set(index.splits) == {"train", "test"} and index.flip_safe and index.missing == []
    assert (len(index.splits["train"]), len(index.splits["test"])) == (len(TRAIN), len(TEST))
    expected = {ucf_root / "UCF-101" / line.split()[0]: int(line.split()[1]) - 1 for line in TRAIN}
    assert {item.path: item.label for item in index.splits["train"]} == expected
    hand = [item for split in index.splits.values() for item in split if item.path.parent.name == "HandstandPushups"]
    assert hand and all(item.path.name.startswith("v_HandStandPushups_") for item in hand)
    assert {item.label for item in hand} == {UCF.index("HandstandPushups")}
    assert {item.group for item in hand} == {f"HandstandPushups_g{g:02d}" for g in (1, 8, 9, 10)}
    assert all(item.path.is_absolute() for item in index.splits["test"])


def test_ucf101_accepts_the_video_folder_as_root(ucf_root):
    inner = index_ucf101(ucf_root / "UCF-101")  # ucfTrainTestlist lies beside it
    assert inner.splits == index_ucf101(ucf_root).splits


def test_ucf101_trainlist_label_must_agree_with_classind(tmp_path):
    first = TRAIN[0].split()
    make_ucf(tmp_path, train=[f"{first[0]} {int(first[1]) + 1}"], test=[])
    with pytest.raises(ValueError, match="disagrees with classInd"):
        index_ucf101(tmp_path)


def test_open_dataset_ucf101_holds_out_whole_groups(ucf_root):
    index = open_dataset("ucf101", ucf_root, val_fraction=0.3, seed=1)
    train, val, test = (index.splits[s] for s in ("train", "val", "test"))
    assert len(train) + len(val) == len(TRAIN) and len(test) == len(TEST)
    assert not {i.group for i in train} & {i.group for i in val}
    assert {i.label for i in train} == set(range(len(UCF)))
    assert 0.15 < len(val) / len(TRAIN) < 0.45
    again = open_dataset("ucf101", ucf_root, val_fraction=0.3, seed=1)
    assert again.splits["val"] == val


def test_missing_videos_are_counted_and_the_run_continues(tmp_path, caplog):
    train, test = ([line.split()[0] for line in lines] for lines in (SMALL_TRAIN, SMALL_TEST))
    gone = {train[0], train[-1], train[len(train) // 2], test[0]}
    make_ucf(tmp_path, SMALL_TRAIN, SMALL_TEST, skip=gone.__contains__)
    with caplog.at_level(logging.WARNING, logger="stop_train.data"):
        index = open_dataset("ucf101", tmp_path)
    assert sorted(index.missing) == sorted((rel, "test" if rel == test[0] else "train") for rel in gone)
    assert len(index.splits["train"]) + len(index.splits["val"]) == len(train) - 3
    assert len(index.splits["test"]) == len(test) - 1
    assert any("4 listed videos are missing" in r.getMessage() for r in caplog.records)


def test_class_that_loses_all_training_clips_is_named(tmp_path):
    yoyo_train = {line.split()[0] for line in SMALL_TRAIN if line.startswith("YoYo/")}
    make_ucf(tmp_path, SMALL_TRAIN, SMALL_TEST, skip=yoyo_train.__contains__)
    with pytest.raises(ValueError, match=r"no training clips.*YoYo"):
        open_dataset("ucf101", tmp_path)


# ---------------------------------------------------------------- HMDB51

HMDB_CLIPS = [  # (name pattern, tag)
    ("April_09_{c}_u_nm_np1_ba_goo_0.avi", 1),
    ("April_09_{c}_u_nm_np1_ba_goo_1.avi", 1),
    ("(Rad)Schlag_die_Bank!_{c}_f_cm_np1_le_med_0.avi", 1),
    ("Prelinger_HabitPat1954_{c}_h_nm_np1_fr_med_26.avi", 1),
    ("Prelinger_HabitPat1954_{c}_u_cm_np1_fr_goo_25.avi", 1),
    ("My_Hair_Routine_{c}_h_nm_np1_le_goo_0.avi", 2),
    ("Unused_&_odd+name_{c}_f_nm_np2_ri_bad_3.avi", 0),
]


def make_hmdb(root: Path, videos: bool = True) -> Path:
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True)
    for cls in HMDB:
        names = [(pattern.format(c=cls), tag) for pattern, tag in HMDB_CLIPS]
        (splits / f"{cls}_test_split1.txt").write_text("".join(f"{n} {t} \n" for n, t in names))
        (root / cls).mkdir()
        for name, _ in names if videos else []:
            (root / cls / name).touch()
    return root


@pytest.fixture(scope="module")
def hmdb_root(tmp_path_factory) -> Path:
    return make_hmdb(tmp_path_factory.mktemp("hmdb"))


def test_hmdb51_tags_trailing_spaces_and_groups(hmdb_root):
    index = index_hmdb51(hmdb_root, fold=1)
    assert index.classes == HMDB and index.flip_safe and index.missing == []
    per_class = {tag: sum(t == tag for _, t in HMDB_CLIPS) for tag in (1, 2)}
    assert len(index.splits["train"]) == per_class[1] * len(HMDB)
    assert len(index.splits["test"]) == per_class[2] * len(HMDB)
    assert not any("Unused" in i.path.name for s in index.splits.values() for i in s)
    kick = [i for i in index.splits["train"] if i.path.parent.name == "kick"]
    assert {i.label for i in kick} == {HMDB.index("kick")}  # kick is a prefix of kick_ball
    assert Counter(i.group for i in kick) == {
        "April_09_kick": 2,
        "Prelinger_HabitPat1954_kick": 2,
        "(Rad)Schlag_die_Bank!_kick": 1,
    }


def test_hmdb_group_rule():
    assert hmdb_group("April_09_brush_hair_u_nm_np1_ba_goo_0.avi") == "April_09_brush_hair"
    assert hmdb_group("Prelinger_HabitPat1954_brush_hair_h_nm_np1_fr_med_26.avi") == "Prelinger_HabitPat1954_brush_hair"
    assert hmdb_group("no_tags_here_12.avi") == "no_tags_here"
    assert hmdb_group("plain.avi") == "plain"


def test_open_dataset_hmdb51_builds_val_from_train(hmdb_root):
    index = open_dataset("hmdb51", hmdb_root, val_fraction=0.3)
    train_groups = {(i.label, i.group) for i in index.splits["train"]}
    val_groups = {(i.label, i.group) for i in index.splits["val"]}
    assert val_groups and not train_groups & val_groups
    assert len(index.splits["test"]) == len(HMDB)


def test_hmdb51_missing_class_folder_and_split_file_are_named(tmp_path):
    make_hmdb(tmp_path, videos=False)
    shutil.rmtree(tmp_path / "sword_exercise")
    (tmp_path / "testTrainMulti_7030_splits" / "kick_test_split1.txt").unlink()
    with pytest.raises(DatasetLayoutError, match=r"(?s)sword_exercise.*kick_test_split1\.txt.*expected layout"):
        index_hmdb51(tmp_path)


# ---------------------------------------------------------------- Kinetics-400


def test_kinetics400_official_csv(tmp_path):
    ann = tmp_path / "annotations"
    ann.mkdir()
    (ann / "train.csv").write_text(
        "label,youtube_id,time_start,time_end,split,is_cc\n"
        '"passing American football (in game)",-3B32lodo2M,59,69,train,0\n'
        '"massaging person\'s head",abc_XYZ-012,5,15,train,0\n'
        "abseiling,0wR5jVB-WPk,417,427,train,0\n"
    )
    (ann / "validate.csv").write_text(
        'label,youtube_id,time_start,time_end,split\n"air drumming",--dQw4w9WgX,0,10,val\n'
    )
    _touch(tmp_path / "train" / "passing_American_football_(in_game)" / "-3B32lodo2M_000059_000069.mp4")
    _touch(tmp_path / "train" / "massaging person's head" / "abc_XYZ-012_000005_000015.mp4")
    _touch(tmp_path / "val" / "--dQw4w9WgX_000000_000010.mp4")
    index = index_kinetics400(tmp_path)
    assert index.classes == K400 and index.flip_safe
    train = index.splits["train"]
    assert [i.label for i in train] == [
        K400.index("passing American football (in game)"),
        K400.index("massaging person's head"),
    ]
    assert train[0].group == "-3B32lodo2M" and train[0].path.parent.name == "passing_American_football_(in_game)"
    assert index.splits["val"] == [VideoItem(tmp_path / "val" / "--dQw4w9WgX_000000_000010.mp4", 1, "--dQw4w9WgX")]
    assert index.missing == [("0wR5jVB-WPk_000417_000427.mp4", "train")]


def test_kinetics400_unknown_label_is_named(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train.csv").write_text('label,youtube_id,time_start,time_end,split\n"dancing, badly",-x,1,11,train\n')
    with pytest.raises(ValueError, match="'dancing, badly'"):
        index_kinetics400(tmp_path)


def test_kinetics400_list_format(tmp_path):
    (tmp_path / "train.txt").write_text("abseiling/a.mp4 0\nair_drumming/b.mp4 air drumming\n")
    (tmp_path / "val.txt").write_text("abseiling/c.mp4 0\n")
    for rel in ("abseiling/a.mp4", "air_drumming/b.mp4"):
        _touch(tmp_path / rel)
    index = index_kinetics400(tmp_path, lists={"train": "train.txt", "val": tmp_path / "val.txt"})
    assert index.name == "kinetics400" and index.classes == K400
    assert [(i.path.name, i.label) for i in index.splits["train"]] == [("a.mp4", 0), ("b.mp4", 1)]
    assert index.splits["val"] == [] and index.missing == [("abseiling/c.mp4", "val")]


# ---------------------------------------------------------------- SSv2


def make_ssv2(root: Path, labels: dict | None = None) -> Path:
    labels = labels or {t: str(i) for i, t in enumerate(SSV2)}
    (root / "something-something-v2-labels.json").write_text(json.dumps(labels, indent=4))
    train = [
        {
            "id": "78687",
            "label": "holding potato next to vicks vaporub bottle",
            "template": "Holding [something] next to [something]",
            "placeholders": ["potato", "vicks vaporub bottle"],
        },
        {
            "id": "42326",
            "label": "pushing a pen from left to right",
            "template": "Pushing [something] from left to right",
            "placeholders": ["a pen"],
        },
    ]
    val = [
        {
            "id": "1",
            "label": "pushing cup from right to left",
            "template": "Pushing [something] from right to left",
            "placeholders": ["cup"],
        }
    ]
    (root / "something-something-v2-train.json").write_text(json.dumps(train))
    (root / "something-something-v2-validation.json").write_text(json.dumps(val))
    for vid in ("78687", "42326"):
        _touch(root / "20bn-something-something-v2" / f"{vid}.webm")
    return root


def test_ssv2_templates_map_to_classes_and_flip_is_unsafe(tmp_path):
    index = index_ssv2(make_ssv2(tmp_path))
    assert index.classes == SSV2 and index.flip_safe is False
    assert [(i.path.name, i.label, i.group) for i in index.splits["train"]] == [
        ("78687.webm", SSV2.index("Holding something next to something"), "78687"),
        ("42326.webm", SSV2.index("Pushing something from left to right"), "42326"),
    ]
    assert index.splits["val"] == [] and index.missing == [("1.webm", "val")]


def test_ssv2_labels_json_must_follow_label_order(tmp_path):
    labels = {t: str(i) for i, t in enumerate(SSV2)}
    labels[SSV2[0]], labels[SSV2[1]] = "1", "0"
    with pytest.raises(ValueError, match="does not match"):
        index_ssv2(make_ssv2(tmp_path, labels))


def test_ssv2_reencoded_mp4_copy_is_found_by_extension(tmp_path):
    root = make_ssv2(tmp_path)
    shutil.rmtree(root / "20bn-something-something-v2")
    for vid in ("78687", "42326", "1"):
        _touch(root / "videos_mp4" / f"{vid}.mp4")
    index = index_ssv2(root, videos="videos_mp4")
    assert [i.path.name for i in index.splits["train"]] == ["78687.mp4", "42326.mp4"] and index.missing == []
    assert index_ssv2(root, videos="videos_mp4", ext="webm").missing[0] == ("78687.webm", "train")


def test_kinetics400_extensions_and_split_folders_are_found(tmp_path):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "train.csv").write_text(
        "label,youtube_id,time_start,time_end,split\nabseiling,aaa,1,11,train\nabseiling,bbb,2,12,train\n"
    )
    _touch(tmp_path / "k" / "train_256" / "abseiling" / "aaa_000001_000011.mkv")  # downloads mix containers
    _touch(tmp_path / "k" / "train_256" / "bbb_000002_000012.webm")
    index = index_kinetics400(tmp_path, videos="k")
    assert [i.path.name for i in index.splits["train"]] == ["aaa_000001_000011.mkv", "bbb_000002_000012.webm"]


def test_kinetics400_mmaction_lists_are_discovered_and_resolved_in_the_split_folders(tmp_path):
    (tmp_path / "kinetics400_train_list_videos.txt").write_text(
        "abseiling/aaa_000001_000011.mp4 0\nbbb_000002_000012.mp4 1\n"
    )
    (tmp_path / "kinetics400_val_list_videos.txt").write_text("ccc_000000_000010.mp4 0\n")
    _touch(tmp_path / "videos_train" / "abseiling" / "aaa_000001_000011.mp4")
    _touch(tmp_path / "videos_train" / "bbb_000002_000012.mp4")
    _touch(tmp_path / "videos_val" / "ccc_000000_000010.mp4")
    index = index_kinetics400(tmp_path)
    assert [(i.path.parent.name, i.label, i.group) for i in index.splits["train"]] == [
        ("abseiling", 0, "aaa"),
        ("videos_train", 1, "bbb"),
    ]
    assert [i.group for i in index.splits["val"]] == ["ccc"] and index.missing == []


# ---------------------------------------------------------------- folder and list formats


def test_folder_with_split_subroots_uses_union_of_classes(tmp_path, caplog):
    for rel in (
        "train/b_run/1.mp4",
        "train/b_run/2.AVI",
        "train/a_walk/3.mkv",
        "train/a_walk/notes.txt",
        "val/a_walk/4.webm",
        "val/c_jump/5.mov",
        "test/b_run/6.mp4",
    ):
        _touch(tmp_path / rel)
    with caplog.at_level(logging.WARNING, logger="stop_train.data"):
        index = index_folder(tmp_path, flip_safe=False)
    assert index.classes == ["a_walk", "b_run", "c_jump"] and index.flip_safe is False
    assert [(i.path.name, i.label) for i in index.splits["train"]] == [("3.mkv", 0), ("1.mp4", 1), ("2.AVI", 1)]
    assert [(i.path.name, i.label) for i in index.splits["val"]] == [("4.webm", 0), ("5.mov", 2)]
    assert [i.label for i in index.splits["test"]] == [1]
    assert "c_jump" in caplog.text
    with pytest.raises(ValueError, match="c_jump"):
        open_dataset("folder", tmp_path)


def test_open_dataset_plain_folder_is_all_train_plus_holdout(tmp_path):
    for cls in ("run", "walk"):
        for k in range(4):
            _touch(tmp_path / cls / f"{cls}{k}.mp4")
    index = open_dataset("folder", tmp_path, val_fraction=0.25)
    assert index.classes == ["run", "walk"] and set(index.splits) == {"train", "val"}
    assert Counter(i.label for i in index.splits["val"]) == {0: 1, 1: 1}
    assert len(index.splits["train"]) == 6


def test_list_format_labels_by_index_or_name(tmp_path):
    for rel in ("v/a.mp4", "v/b.mp4", "v/c.mp4"):
        _touch(tmp_path / rel)
    (tmp_path / "ints.txt").write_text("v/a.mp4 0\r\nv/b.mp4 2\r\nv/gone.mp4 1\r\n")
    index = index_list(tmp_path, {"train": tmp_path / "ints.txt"})
    assert index.classes == ["class_0", "class_1", "class_2"]
    assert [i.label for i in index.splits["train"]] == [0, 2] and index.missing == [("v/gone.mp4", "train")]
    (tmp_path / "names.txt").write_text("v/a.mp4 walk\nv/c.mp4 run\n")
    assert index_list(tmp_path, {"train": "names.txt"}).classes == ["run", "walk"]
    (tmp_path / "classes.txt").write_text("walk\nrun\njump\n")
    given = index_list(tmp_path, {"train": "names.txt", "test": "names.txt"}, classes=tmp_path / "classes.txt")
    assert [i.label for i in given.splits["test"]] == [0, 1]
    (tmp_path / "bad.txt").write_text("v/a.mp4 swim\n")
    with pytest.raises(ValueError, match="'swim'"):
        index_list(tmp_path, {"train": "bad.txt"}, classes=["walk", "run"])


# ---------------------------------------------------------------- hold-out and checks


def _items(spec: dict[int, list[int]]) -> list[VideoItem]:
    """Items from {label: [group sizes]}."""
    return [
        VideoItem(Path(f"/v/{lab}_{g}_{k}.mp4"), lab, f"{lab}_g{g}")
        for lab, sizes in spec.items()
        for g, size in enumerate(sizes)
        for k in range(size)
    ]


def test_grouped_holdout_keeps_groups_whole_and_every_class_trainable():
    items = _items({0: [3] * 10, 1: [5], 2: [1, 1], 3: [2, 4, 3]})
    items.append(VideoItem(Path("/v/x.mp4"), 1, "2_g0"))  # a group spanning classes 2 and 1
    train, val = grouped_holdout(items, 0.2, seed=3)
    assert sorted(train + val, key=str) == sorted(items, key=str)
    assert not {i.group for i in train} & {i.group for i in val}
    assert {i.label for i in train} == {0, 1, 2, 3}
    assert sum(i.label == 0 for i in val) == 6
    assert (train, val) == grouped_holdout(items, 0.2, seed=3)
    assert set(grouped_holdout(items[::-1], 0.2, seed=3)[1]) == set(val)  # input order does not matter
    assert grouped_holdout(items, 0.0, seed=3) == (items, [])
    with pytest.raises(ValueError):
        grouped_holdout(items, 1.0, seed=0)


def test_check_classes_have_training_clips_names_them():
    index = DatasetIndex("toy", ["a", "b", "c"], {"train": _items({0: [1]}), "test": _items({1: [1]})}, True)
    with pytest.raises(ValueError, match=r"2 of 3 classes.*1:b.*2:c"):
        check_classes_have_training_clips(index)


# ---------------------------------------------------------------- registry and errors


@pytest.mark.parametrize("name", list(DATASETS))
@pytest.mark.parametrize("exists", [False, True])
def test_bad_root_gives_layout_error_with_the_expected_tree(tmp_path, name, exists):
    root = tmp_path / "not_here"
    if exists:
        root.mkdir()
    options = {"lists": {"train": "train.txt"}} if name == "list" else {}
    with pytest.raises(DatasetLayoutError) as err:
        open_dataset(name, root, **options)
    message = str(err.value)
    assert "expected layout:" in message and "├──" in message and str(root) in message
    assert message.startswith(f"{name}: ")


def test_unknown_dataset_and_bad_fold_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="valid names: ucf101, hmdb51, kinetics400, ssv2, folder, list"):
        open_dataset("ucf-101", tmp_path)
    with pytest.raises(ValueError, match="no folds"):
        open_dataset("kinetics400", tmp_path, fold=2)
    with pytest.raises(ValueError, match="fold must be 1, 2 or 3"):
        open_dataset("ucf101", tmp_path, fold=4)


def test_split_roles_document_every_dataset():
    assert set(DATASET_SPLIT_ROLES) == set(DATASETS)
    assert all(set(roles) == {"train", "val", "test"} and all(roles.values()) for roles in DATASET_SPLIT_ROLES.values())
    assert "hold-out" in DATASET_SPLIT_ROLES["ucf101"]["val"] and "testlist" in DATASET_SPLIT_ROLES["ucf101"]["test"]


def test_list_files_with_standard_names_are_discovered(tmp_path):
    for rel in ("a/1.mp4", "b/2.mp4", "a/3.mp4"):
        _touch(tmp_path / rel)
    (tmp_path / "train.txt").write_text("a/1.mp4 open valve\nb/2.mp4 close valve\n")
    (tmp_path / "test_list.txt").write_text("a/3.mp4 open valve\n")
    index = index_list(tmp_path)
    assert index.classes == ["close valve", "open valve"] and set(index.splits) == {"train", "test"}
    (tmp_path / "train.txt").unlink()
    with pytest.raises(DatasetLayoutError) as err:
        index_list(tmp_path)
    first = str(err.value).splitlines()[0]
    assert first.startswith("list: no train list given (--train-list)") and "train.txt" in first


def test_folder_holdout_groups_are_files_not_stems_shared_across_classes(tmp_path):
    for c in ("a", "b", "c"):
        for k in range(10):
            _touch(tmp_path / c / f"clip{k}.mp4")
    index = open_dataset("folder", tmp_path, val_fraction=0.1)
    assert Counter(i.label for i in index.splits["val"]) == {0: 1, 1: 1, 2: 1}
    assert len({i.group for i in index.splits["train"]}) == 27


def test_list_splits_not_given_are_found_and_classes_are_read_under_the_root(tmp_path, caplog):
    for rel in ("a/1.mp4", "b/2.mp4", "a/3.mp4", "b/4.mp4"):
        _touch(tmp_path / rel)
    (tmp_path / "mine.txt").write_text("a/1.mp4 wave\nb/2.mp4 clap\nb/4.mp4 clpa\n")
    (tmp_path / "val.txt").write_text("a/3.mp4 wave\n")
    with caplog.at_level(logging.INFO, logger="stop_train.data"):
        index = index_list(tmp_path, {"train": "mine.txt"})
    assert set(index.splits) == {"train", "val"} and index.classes == ["clap", "clpa", "wave"]
    assert "single clip, typos?" in caplog.text and "'clpa' (1 clip)" in caplog.text
    (tmp_path / "classes.txt").write_text("wave\nclap\n")
    with pytest.raises(ValueError, match="mine.txt:3: label 'clpa'"):
        index_list(tmp_path, {"train": "mine.txt"}, classes="classes.txt")
