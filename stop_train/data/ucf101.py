"""UCF101 indexer: ``UCF-101/<Class>/v_*.avi`` plus the official ``ucfTrainTestlist`` files.

Root resolution (first match wins):

* videos: ``root/UCF-101`` if it is a folder, else ``root`` itself (you passed the
  ``UCF-101`` folder);
* split files: the ``split_dir`` option, else the first of ``root/ucfTrainTestlist``,
  ``<videos>/ucfTrainTestlist`` (inside) and ``<root>/../ucfTrainTestlist`` (beside)
  that holds ``classInd.txt``.

The class of a clip is the first path component of its split line (the folder), never
the file name: files of ``HandstandPushups`` are named ``v_HandStandPushups_*``.
Labels are ``classInd id - 1``; classInd must list the classes in the order of
``load_labels('ucf101')`` and every trainlist label must agree with it.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from ..labels import load_labels
from .types import DatasetError, DatasetIndex, DirCache, VideoItem, abs_root, layout_error, read_lines

logger = logging.getLogger(__name__)

LAYOUT = """\
<root>/
├── UCF-101/
│   ├── ApplyEyeMakeup/
│   │   ├── v_ApplyEyeMakeup_g01_c01.avi
│   │   └── ...
│   └── ... (101 class folders)
└── ucfTrainTestlist/      (or inside / beside the UCF-101 folder)
    ├── classInd.txt
    ├── trainlist01.txt    (02, 03)
    └── testlist01.txt     (02, 03)"""

_GROUP = re.compile(r"_g(\d+)_c\d+$", re.IGNORECASE)


def _find_split_dir(root: Path, videos: Path, split_dir: Path | None) -> Path | None:
    if split_dir is not None:
        candidates = [abs_root(split_dir)]
    else:
        candidates = [root / "ucfTrainTestlist", videos / "ucfTrainTestlist", root.parent / "ucfTrainTestlist"]
    return next((c for c in candidates if (c / "classInd.txt").is_file()), None)


def read_class_ind(path: Path) -> list[str]:
    """Class names of ``classInd.txt`` in id order; ids must run 1..N."""
    names: list[str] = []
    for lineno, line in read_lines(path):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit() or int(parts[0]) != len(names) + 1:
            raise DatasetError(f"{path}:{lineno}: expected '<{len(names) + 1}> <ClassName>', got {line!r}")
        names.append(parts[1])
    return names


def ucf_group(cls: str, filename: str) -> str:
    """Leakage group ``<Class>_gXX`` from the ``_gXX_cYY`` part of the file name (else the stem)."""
    stem = Path(filename).stem
    match = _GROUP.search(stem)
    return f"{cls}_g{int(match.group(1)):02d}" if match else stem


def index_ucf101(root: Path, fold: int = 1, split_dir: Path | None = None) -> DatasetIndex:
    """Index UCF101 split ``fold`` (1, 2 or 3) into 'train' and 'test' (no 'val')."""
    return index_ucf_layout(root, fold, split_dir, name="ucf101", expected=load_labels("ucf101"), flip_safe=True)


def index_ucf_layout(
    root: Path, fold: int, split_dir: Path | None, name: str, expected: list[str], flip_safe: bool
) -> DatasetIndex:
    """Index any data set in the UCF101 layout whose classInd.txt must list `expected`."""
    if fold not in (1, 2, 3):
        raise DatasetError(f"{name}: fold must be 1, 2 or 3, got {fold!r}")
    root = abs_root(root)
    if not root.is_dir():
        raise layout_error(name, root, "root folder not found", LAYOUT)
    videos = root / "UCF-101" if (root / "UCF-101").is_dir() else root
    lists = _find_split_dir(root, videos, split_dir)
    if lists is None:
        where = split_dir or "ucfTrainTestlist/ in, inside or beside the root"
        raise layout_error(name, root, f"classInd.txt not found ({where})", LAYOUT)

    classes = read_class_ind(lists / "classInd.txt")
    if classes != expected:
        diff = next((i for i, (a, b) in enumerate(zip(classes, expected)) if a != b), min(len(classes), len(expected)))
        raise DatasetError(
            f"{name}: {lists / 'classInd.txt'} does not match the {name} class list "
            f"({len(classes)} vs {len(expected)} classes; first difference at index {diff})"
        )
    if not any((videos / c).is_dir() for c in classes):
        raise layout_error(name, root, f"no class folder (e.g. {classes[0]}/) in {videos}", LAYOUT)

    class_id = {name: i for i, name in enumerate(classes)}
    cache = DirCache()
    splits: dict[str, list[VideoItem]] = {}
    missing: list[tuple[str, str]] = []
    for split, filename in (("train", f"trainlist{fold:02d}.txt"), ("test", f"testlist{fold:02d}.txt")):
        path = lists / filename
        if not path.is_file():
            raise layout_error(name, root, f"split file {path} not found", LAYOUT)
        items: list[VideoItem] = []
        for lineno, line in read_lines(path):
            parts = line.replace("\\", "/").split()
            rel = parts[0]
            cls = rel.split("/", 1)[0]
            if cls not in class_id or "/" not in rel:
                raise DatasetError(f"{path}:{lineno}: {rel!r} is not '<Class>/<file>' with a class of classInd.txt")
            label = class_id[cls]
            if len(parts) > 1 and parts[1] != str(label + 1):
                raise DatasetError(
                    f"{path}:{lineno}: label {parts[1]} disagrees with classInd.txt ({cls} = {label + 1})"
                )
            video = videos / rel
            if cache.exists(video):
                items.append(VideoItem(video, label, ucf_group(cls, rel.rsplit("/", 1)[1])))
            else:
                missing.append((rel, split))
        splits[split] = items
    logger.debug("ucf101 fold %d: %s", fold, {k: len(v) for k, v in splits.items()})
    return DatasetIndex(name, classes, splits, flip_safe=flip_safe, missing=missing)
