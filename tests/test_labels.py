"""Tests for stop_train.labels: bundled label files and label -> prompt text."""

import csv
from pathlib import Path

import pytest

from stop_train.labels import (
    DEFAULT_TEMPLATE,
    LABEL_SETS,
    dataset_style,
    label_texts,
    label_to_text,
    label_words,
    labels_dir,
    load_labels,
)

SHARED = Path(__file__).resolve().parents[2] / "shared"
DATASETS = SHARED / "datasets"

EXPECTED_COUNTS = {"ucf101": 101, "hmdb51": 51, "kinetics400": 400, "ssv2": 174}


def _shared_file(*parts: str) -> Path:
    path = DATASETS.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"no ../shared: {path} not found")
    return path


def test_label_sets_constant():
    assert LABEL_SETS == ("ucf101", "hmdb51", "kinetics400", "ssv2")
    assert labels_dir().is_dir()


@pytest.mark.parametrize("name", LABEL_SETS)
def test_counts_and_file_format(name):
    labels = load_labels(name)
    assert len(labels) == EXPECTED_COUNTS[name]
    assert len(set(labels)) == len(labels)
    raw = (labels_dir() / f"{name}.txt").read_bytes()
    assert b"\r" not in raw
    assert raw.endswith(b"\n") and not raw.endswith(b"\n\n")
    assert raw.decode("utf-8").splitlines() == labels


@pytest.mark.parametrize("name", LABEL_SETS)
def test_auto_style_matches_dataset_style(name):
    style = dataset_style(name)
    labels = load_labels(name)
    assert [label_words(x) for x in labels] == [label_words(x, style) for x in labels]


def test_ucf101_order_matches_classind():
    path = _shared_file("ucf101", "ucfTrainTestlist", "classInd.txt")
    rows = [line.split() for line in path.read_text(encoding="utf-8").splitlines()]
    rows = [r for r in rows if r]
    assert [int(r[0]) for r in rows] == list(range(1, 102))
    assert load_labels("ucf101") == [r[1] for r in rows]


def test_ucf101_words_match_shared():
    path = _shared_file("ucf101", "classnames_words.txt")
    expected = path.read_text(encoding="utf-8").splitlines()
    labels = load_labels("ucf101")
    assert len(expected) == 101
    assert [label_words(x, "camel") for x in labels] == expected
    assert [label_words(x) for x in labels] == expected


def test_hmdb51_underscores():
    labels = load_labels("hmdb51")
    assert labels == sorted(labels)
    assert labels[:2] == ["brush_hair", "cartwheel"]
    assert labels[20:22] == ["kick", "kick_ball"]
    words = [label_words(x, "underscore") for x in labels]
    assert all("_" not in w for w in words)
    assert words[21] == "kick ball"
    assert label_words("sword_exercise") == "sword exercise"


def test_kinetics400_parentheses_match_no_parens_csv():
    path = _shared_file("kinetics400", "kinetics_400_labels.no_parens.csv")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["id", "name"]
    rows = rows[1:]
    assert [int(r[0]) for r in rows] == list(range(400))
    labels = load_labels("kinetics400")
    assert [label_words(x, "parentheses") for x in labels] == [r[1] for r in rows]
    assert [label_words(x) for x in labels] == [r[1] for r in rows]


def test_kinetics400_keeps_parentheses_in_keys():
    labels = load_labels("kinetics400")
    assert sum("(" in x for x in labels) == 9
    assert "skiing (not slalom or crosscountry)" in labels


@pytest.mark.parametrize(
    "label, expected",
    [
        ("ApplyEyeMakeup", "a video of a person apply eye makeup."),
        ("YoYo", "a video of a person yo yo."),
        ("Skijet", "a video of a person skijet."),
        ("HandstandPushups", "a video of a person handstand pushups."),
        ("brush_hair", "a video of a person brush hair."),
        ("passing American football (in game)", "a video of a person passing American football in game."),
        ("skiing (not slalom or crosscountry)", "a video of a person skiing not slalom or crosscountry."),
        ("abseiling", "a video of a person abseiling."),
        ("massaging person's head", "a video of a person massaging person's head."),
        ("Putting something on a surface", "a video of a person Putting something on a surface."),
        (
            "Touching (without moving) part of something",
            "a video of a person Touching (without moving) part of something.",
        ),
    ],
)
def test_label_to_text_examples(label, expected):
    assert label_to_text(label) == expected


def test_explicit_styles():
    assert label_words("ApplyEyeMakeup", "camel") == "apply eye makeup"
    assert label_words("brush_hair", "underscore") == "brush hair"
    assert label_words("hurling (sport)", "parentheses") == "hurling sport"
    assert label_words("  Pushing  something\tleft ", "plain") == "Pushing something left"
    assert label_words("Touching (without moving) part of something", "plain") == (
        "Touching (without moving) part of something"
    )
    assert label_words("Touching (without moving) x", "parentheses") == "Touching without moving x"


def test_dataset_style_mapping():
    assert [dataset_style(n) for n in LABEL_SETS] == ["camel", "underscore", "parentheses", "plain"]
    with pytest.raises(ValueError):
        dataset_style("ucf")


def test_label_texts_and_templates():
    assert DEFAULT_TEMPLATE == "a video of a person {label}."
    out = label_texts(["YoYo", "brush_hair"], template="a photo of {label}")
    assert out == ["a photo of yo yo", "a photo of brush hair"]
    assert label_texts(["YoYo"], style="plain") == ["a video of a person YoYo."]
    assert label_to_text("YoYo", template="{label} {{x}}") == "yo yo {{x}}"
    assert label_texts([]) == []


def test_bad_template_raises():
    with pytest.raises(ValueError, match="label"):
        label_to_text("YoYo", template="a video of {}")
    with pytest.raises(ValueError):
        label_texts(["YoYo"], template="no placeholder")


def test_bad_style_raises():
    with pytest.raises(ValueError, match="style"):
        label_words("YoYo", "snake")


def test_unknown_set_raises():
    with pytest.raises(ValueError) as exc:
        load_labels("ucf102")
    assert all(n in str(exc.value) for n in LABEL_SETS)


def test_load_labels_from_file(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_bytes(b"  jump\r\n\r\nrun_fast \r\n\nSkijet\r\n")
    assert load_labels(str(path)) == ["jump", "run_fast", "Skijet"]
    assert load_labels(path) == ["jump", "run_fast", "Skijet"]


def test_duplicate_label_in_file_raises(tmp_path):
    path = tmp_path / "dup.txt"
    path.write_text("jump\nrun\n\njump\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"'jump'.*line 4"):
        load_labels(str(path))


def test_empty_label_file_raises(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("\n \n", encoding="utf-8")
    with pytest.raises(ValueError):
        load_labels(str(path))


def test_labels_dir_resolution(tmp_path, monkeypatch):
    import stop_train.labels as mod

    site = tmp_path.resolve() / "site"
    pkg = site / "stop_train"
    pkg.mkdir(parents=True)
    monkeypatch.setattr(mod, "__file__", str(pkg / "labels.py"))
    with pytest.raises(FileNotFoundError) as exc:
        mod.labels_dir()
    assert str(pkg / "models" / "labels") in str(exc.value)
    assert str(site / "models" / "labels") in str(exc.value)
    (site / "models" / "labels").mkdir(parents=True)
    assert mod.labels_dir() == site / "models" / "labels"
    (pkg / "models" / "labels").mkdir(parents=True)
    assert mod.labels_dir() == pkg / "models" / "labels"
