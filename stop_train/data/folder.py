"""Generic formats: one folder per class (``index_folder``) and ``<path> <label>`` lists (``index_list``)."""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ..labels import load_labels
from .types import (
    VIDEO_EXTENSIONS,
    DatasetError,
    DatasetIndex,
    DirCache,
    VideoItem,
    abs_root,
    layout_error,
    read_lines,
    short_list,
)

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")

FOLDER_LAYOUT = """\
<root>/                          <root>/
├── <class_a>/                   ├── train/
│   ├── clip1.mp4                │   ├── <class_a>/clip1.mp4
│   └── ...            or        │   └── <class_b>/...
└── <class_b>/                   ├── val/     (and/or test/)
    └── ...                      │   └── <class_a>/...
(all videos are 'train')         (classes = union, sorted)
video files: """ + " ".join(VIDEO_EXTENSIONS)

LIST_LAYOUT = """\
<root>/
├── <any>/<clip>.mp4
└── ...
list files (one per split): lines '<path> <label>'
    path relative to <root>; label = class index or class name
    (separate with a TAB when both contain spaces)
    --train-list/--val-list/--test-list, default <root>/{train,val,test}.txt
    (or {split}list.txt, {split}_list.txt)"""
LIST_NAMES = ("{}.txt", "{}list.txt", "{}_list.txt")


def _class_dirs(folder: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def _videos(folder: Path, extensions: Sequence[str]) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [
            Path(dirpath) / f
            for f in sorted(filenames)
            if not f.startswith(".") and f.lower().endswith(tuple(extensions))
        ]
    return found


def index_folder(root: Path, flip_safe: bool = True, extensions: Sequence[str] = VIDEO_EXTENSIONS) -> DatasetIndex:
    """Index one sub-folder per class; ``train/`` + ``val/``/``test/`` sub-roots become splits.

    Without sub-roots every video is 'train'. Classes are the sorted union of the class
    folders of all sub-roots, so a label means the same class in every split. Videos
    are found recursively inside each class folder; the hold-out group is the video itself
    (``<class>/<name>`` without extension: ``a/clip1.mp4`` and ``b/clip1.mp4`` are two groups).
    """
    root = abs_root(root)
    if not root.is_dir():
        raise layout_error("folder", root, "root folder not found", FOLDER_LAYOUT)
    if (root / "train").is_dir() and any((root / s).is_dir() for s in ("val", "test")):
        roots = {s: root / s for s in SPLITS if (root / s).is_dir()}
    else:
        roots = {"train": root}
    per_split = {s: _class_dirs(r) for s, r in roots.items()}
    classes = sorted(set().union(*per_split.values()))
    if not classes:
        raise layout_error("folder", root, "no class folders found", FOLDER_LAYOUT)
    for split, names in per_split.items():
        if split != "train" and set(names) - set(per_split["train"]):
            logger.warning(
                "folder: classes in %s/ but not in train/: %s",
                split,
                short_list(sorted(set(names) - set(per_split["train"]))),
            )
    splits = {
        split: [
            VideoItem(p, label, f"{cls}/{p.relative_to(roots[split] / cls).with_suffix('')}")
            for label, cls in enumerate(classes)
            if cls in per_split[split]
            for p in _videos(roots[split] / cls, extensions)
        ]
        for split in roots
    }
    if not any(splits.values()):
        raise layout_error("folder", root, f"class folders hold no video files ({' '.join(extensions)})", FOLDER_LAYOUT)
    return DatasetIndex("folder", classes, splits, flip_safe=flip_safe)


def _split_line(line: str) -> tuple[str, str]:
    """``(path, label)`` of a list line: TAB-separated, else ``<path> <int>``, else ``<path> <class name>``."""
    if "\t" in line:
        path, _, label = line.partition("\t")
    else:
        parts = line.rsplit(None, 1)
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            path, label = parts
        else:
            path, _, label = line.partition(" ")
    return path.strip(), label.strip()


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


def _list_files(root: Path, lists: dict, name: str, discover: bool) -> dict:
    """The list file of each split: as given, else (with `discover`) its standard name in the root. Raises
    DatasetLayoutError without a train list."""
    if discover:
        for split in SPLITS:
            found = next((root / n.format(split) for n in LIST_NAMES if (root / n.format(split)).is_file()), None)
            if split not in lists and found is not None:
                lists[split] = found
                logger.info("%s: %s split from %s", name, split, found)
    if "train" not in lists:
        tried = ", ".join(n.format("train") for n in LIST_NAMES)
        raise layout_error(name, root, f"no train list given (--train-list) and none of {tried} in {root}", LIST_LAYOUT)
    return lists


def _read_lists(root: Path, lists: dict, name: str) -> dict[str, list[tuple[Path, int, str, str]]]:
    """split -> (list file, line number, video path as listed, label as listed) of each line. Raises ValueError
    for an unknown split, DatasetLayoutError for a list file not found (as given, then under the root)."""
    parsed = {}
    for split, list_path in lists.items():
        if split not in SPLITS:
            raise DatasetError(f"{name}: unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        path = Path(os.path.expanduser(os.fspath(list_path)))
        if not path.is_file() and not path.is_absolute():
            path = root / path
        if not path.is_file():
            raise layout_error(name, root, f"{split} list {list_path} not found", LIST_LAYOUT)
        parsed[split] = [(path, lineno, *_split_line(line)) for lineno, line in read_lines(path)]
    return parsed


def _infer_classes(labels: list[str], name: str) -> list[str]:
    """Classes from the list labels alone: integer labels give class_<i>, names are sorted. Warns of classes with a
    single clip (typos?). Raises ValueError for indices and names mixed."""
    if all(_is_int(lab) for lab in labels):
        classes = [f"class_{i}" for i in range(max((int(lab) for lab in labels), default=-1) + 1)]
    elif not any(_is_int(lab) for lab in labels):
        classes = sorted(set(labels))
    else:
        raise DatasetError(f"{name}: list labels mix indices and names; pass classes=")
    counts = Counter(labels)
    rare = [f"{c!r} ({counts[c]} clip)" for c in classes if counts[c] == 1 and not _is_int(c)]
    logger.info(
        "%s: %d classes from the list labels (give --classes FILE to check them): %s",
        name,
        len(classes),
        short_list(classes, 10),
    )
    if rare:
        logger.warning("%s: classes with a single clip, typos? %s", name, short_list(rare, 10))
    return classes


def index_list(
    root: Path,
    lists: Mapping[str, str | Path] | None = None,
    classes: Sequence[str] | str | Path | None = None,
    flip_safe: bool = True,
    name: str = "list",
    video_dirs: Mapping[str, Sequence[Path]] | None = None,
    group: Callable[[Path], str] | None = None,
    discover: bool = True,
) -> DatasetIndex:
    """Index ``<path> <label>`` list files, one per split (keys 'train', 'val', 'test').

    Paths are relative to ``root`` (absolute paths are kept); relative list-file paths are
    tried as given, then under ``root``; a split missing from ``lists`` is read from its standard name in
    ``root`` (``LIST_NAMES``) when ``discover`` (train is required). A video path is looked up under ``root``, then under each of ``video_dirs[split]``
    (mmaction2-style lists name clips relative to the split's video folder). A label is a class index or
    a class name; ``group(path)`` gives the hold-out group (default: the path as listed, without extension).
    ``classes`` is a list, a label-file path or a label-set name (``load_labels``); when
    omitted it is inferred: integer labels give ``class_<i>`` names, names are sorted.
    """
    root = abs_root(root)
    if not root.is_dir():
        raise layout_error(name, root, "root folder not found", LIST_LAYOUT)
    parsed = _read_lists(root, _list_files(root, dict(lists or {}), name, discover), name)
    rows = [row for split_rows in parsed.values() for row in split_rows]
    if classes is None:
        classes = _infer_classes([row[3] for row in rows], name)
    elif isinstance(classes, (str, Path)):
        under_root = root / classes
        classes = load_labels(classes if Path(classes).is_file() or not under_root.is_file() else under_root)
    classes = list(classes)
    class_id = {c: i for i, c in enumerate(classes)}
    video_dirs = video_dirs or {}
    cache = DirCache()
    splits: dict[str, list[VideoItem]] = {}
    missing: list[tuple[str, str]] = []
    for split, split_rows in parsed.items():
        items = splits[split] = []
        for path, lineno, rel, label_text in split_rows:
            if not rel or not label_text:
                raise DatasetError(f"{path}:{lineno}: expected '<path> <label>'")
            label = int(label_text) if _is_int(label_text) else class_id.get(label_text, -1)
            if not 0 <= label < len(classes):
                raise DatasetError(
                    f"{path}:{lineno}: label {label_text!r} is not a class index (0..{len(classes) - 1}) or class name"
                )
            places = [Path(os.path.normpath(base / rel)) for base in (root, *video_dirs.get(split, ()))]
            video = next((v for v in places if cache.exists(v)), None)
            if video is not None:
                items.append(VideoItem(video, label, group(video) if group else str(Path(rel).with_suffix(""))))
            else:
                missing.append((rel, split))
    return DatasetIndex(name, classes, splits, flip_safe=flip_safe, missing=missing)
