"""MSR-VTT as the published code (CLIP4Clip's loaders) reads it: the captions of ``MSRVTT_data.json``, the
training videos of ``MSRVTT_train.9k.csv`` (or ``.7k``; ``--train-list``), the 1k-A test pairs of
``MSRVTT_JSFUSION_test.csv`` (``--test-list``), one ``<video_id>.mp4`` per video."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from .caption_types import CaptionIndex, build_split, locator, need_columns, read_csv
from .types import DatasetError, abs_root, layout_error, short_list

logger = logging.getLogger(__name__)

MSRVTT_LAYOUT = """\
<root>/
├── MSRVTT_data.json             captions: {"sentences": [{"video_id", "caption"}, ...]}
├── MSRVTT_train.9k.csv          training video ids (column video_id); or MSRVTT_train.7k.csv (--train-list)
├── MSRVTT_JSFUSION_test.csv     1k-A test pairs (columns key, vid_key, video_id, sentence)
└── videos/all/<video_id>.mp4    (or MSRVTT_Videos/, videos/; any folder with --video-dir)
the three annotation files may also sit in <root>/msrvtt_data/ (CLIP4Clip) or in --annotations"""
MSRVTT_VIDEO_DIRS = ("videos/all", "MSRVTT_Videos", "videos", "all", "")


def _find_file(name: str, folders: list[Path]) -> Path | None:
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    return None


def index_msrvtt(
    root: Path,
    annotations: str = "",
    videos: str = "",
    ext: str = "",
    lists: Mapping[str, str | Path] | None = None,
    name: str = "msrvtt",
) -> CaptionIndex:
    """Index MSR-VTT as CLIP4Clip / STOP read it: train = every caption of the training videos (the
    published ``--expand_msrvtt_sentences``), test = the JSFusion 1k-A pairs (one caption per video).

    ``lists`` may name 'train' (``MSRVTT_train.7k.csv`` for 7k) and 'test' files; relative names are looked
    up in the annotation folders. Raises DatasetLayoutError when a file or the video folder is not found,
    ValueError for a file without the expected columns.
    """
    root = abs_root(root)
    if not root.is_dir():
        raise layout_error(name, root, "root folder not found", MSRVTT_LAYOUT)
    if annotations:  # relative to the root, else as given
        folders = [root / annotations if (root / annotations).is_dir() else abs_root(annotations)]
    else:
        folders = [root, root / "msrvtt_data"]
    lists = dict(lists or {})
    unknown = set(lists) - {"train", "test"}
    if unknown:
        raise DatasetError(
            f"{name}: lists for train and test only (a validation hold-out comes from train), "
            f"got {', '.join(sorted(unknown))}"
        )
    data_path, train_path, test_path = (
        _need_file(filename, what, folders, root, name)
        for filename, what in (
            ("MSRVTT_data.json", "caption file"),
            (str(lists.get("train", "MSRVTT_train.9k.csv")), "train list"),
            (str(lists.get("test", "MSRVTT_JSFUSION_test.csv")), "test list"),
        )
    )
    video_dir = _video_dir(root, videos, name)
    sentences = _read_sentences(data_path)
    train_ids, test_rows = _read_lists(train_path, test_path, name)
    bare = sorted(train_ids - {vid for vid, _ in sentences})
    if bare:
        logger.warning(
            "%s: %d training videos have no caption in %s (skipped): %s",
            name,
            len(bare),
            data_path.name,
            short_list(bare, 5),
        )
    locate = locator([video_dir], ext)
    missing: list[tuple[str, str]] = []
    train = build_split([(v, c) for v, c in sentences if v in train_ids], locate, "train", missing)
    test = build_split([(r["video_id"], r["sentence"]) for r in test_rows], locate, "test", missing)
    logger.info(
        "%s: train %s (%d captions), test %s (%d captions), videos from %s",
        name,
        len(train.videos),
        len(train.captions),
        len(test.videos),
        len(test.captions),
        video_dir,
    )
    return CaptionIndex(name, {"train": train, "test": test}, missing)


def _need_file(filename: str, what: str, folders: list[Path], root: Path, name: str) -> Path:
    """An annotation file: an absolute path as given, else the first of `folders` holding it. Raises
    DatasetLayoutError naming where it was looked for."""
    given = Path(os.path.expanduser(filename))
    found = given if given.is_absolute() and given.is_file() else _find_file(filename, folders)
    if found is None:
        raise layout_error(name, root, f"{what} {filename} not found in {', '.join(map(str, folders))}", MSRVTT_LAYOUT)
    return found


def _video_dir(root: Path, videos: str, name: str) -> Path:
    """--video-dir (relative to the root, as kinetics400 and ssv2 take it, else as given), or the first of
    MSRVTT_VIDEO_DIRS holding video<N> files. Raises DatasetLayoutError when there is none."""
    if videos:
        video_dir = root / videos if (root / videos).is_dir() else abs_root(videos)
        if not video_dir.is_dir():
            raise layout_error(name, root, f"video folder {video_dir} not found (--video-dir)", MSRVTT_LAYOUT)
        return video_dir
    for d in MSRVTT_VIDEO_DIRS:
        if (root / d).is_dir() and any(n.startswith("video") for n in os.listdir(root / d)):
            return root / d
    raise layout_error(
        name,
        root,
        "no folder of video<N>.mp4 files found (tried "
        + ", ".join(d or "." for d in MSRVTT_VIDEO_DIRS)
        + "); give --video-dir",
        MSRVTT_LAYOUT,
    )


def _read_sentences(data_path: Path) -> list[tuple[str, str]]:
    """(video id, caption) of every sentence of MSRVTT_data.json. Raises ValueError for another file."""
    try:
        data = json.loads(data_path.read_text(encoding="utf-8-sig"))
        return [(str(s["video_id"]), str(s["caption"]).strip()) for s in data["sentences"]]
    except (ValueError, KeyError, TypeError) as err:
        raise DatasetError(
            f"{data_path}: not MSR-VTT's caption file (expected {{'sentences': [{{'video_id', 'caption'}}]}}): {err}"
        ) from None


def _read_lists(train_path: Path, test_path: Path, name: str) -> tuple[set[str], list[dict[str, str]]]:
    """(the training video ids, the test rows: video_id and sentence). Raises ValueError for missing columns or a
    video in both."""
    train_rows = read_csv(train_path)
    need_columns(train_path, train_rows, ("video_id",))
    train_ids = {r["video_id"] for r in train_rows}
    test_rows = read_csv(test_path)
    need_columns(test_path, test_rows, ("video_id", "sentence"))
    overlap = train_ids & {r["video_id"] for r in test_rows}
    if overlap:
        raise DatasetError(
            f"{name}: {len(overlap)} video{'s are' if len(overlap) > 1 else ' is'} in both "
            f"{train_path.name} and {test_path.name}: "
            f"{short_list(sorted(overlap), 5)}"
        )
    return train_ids, test_rows
