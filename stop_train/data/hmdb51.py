"""HMDB51 indexer: ``<class>/*.avi`` plus ``testTrainMulti_7030_splits/<class>_test_split{N}.txt``.

Split lines are ``<name>.avi <tag> `` (trailing space): tag 1 = train, 2 = test,
0 = unused (skipped). Classes are ``load_labels('hmdb51')`` (sorted folder names); every
class needs its folder and its split file.

Leakage group (source video): file names end in
``_<body>_<camera>_np<N>_<view>_<quality>_<clip index>`` (e.g. ``_u_nm_np1_ba_goo_0``).
The clip index counts clips of one source video across tag combinations (indices such
as ``_26`` occur, and clips of one source differ in body/camera/view tags), so the group
is the name with that whole tag block removed, e.g. ``April_09_brush_hair``. Names that
do not carry the tag block lose only a trailing ``_<digits>``; otherwise the stem is used.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from ..labels import load_labels
from .types import DatasetError, DatasetIndex, DirCache, VideoItem, abs_root, layout_error, read_lines, short_list

logger = logging.getLogger(__name__)

SPLIT_DIR = "testTrainMulti_7030_splits"
TAGS = {"1": "train", "2": "test"}

LAYOUT = f"""\
<root>/
├── brush_hair/
│   ├── April_09_brush_hair_u_nm_np1_ba_goo_0.avi
│   └── ...
├── ... (51 class folders)
└── {SPLIT_DIR}/          (or beside the root)
    ├── brush_hair_test_split1.txt    (lines '<name>.avi <0|1|2>')
    └── ... (<class>_test_split{{1,2,3}}.txt)"""

_TAG_BLOCK = re.compile(r"_[a-z]_[a-z]{2}_np\d+_[a-z]{2}_[a-z]{3}_\d+$", re.IGNORECASE)
_CLIP_INDEX = re.compile(r"_\d+$")


def hmdb_group(filename: str) -> str:
    """Source-video group of an HMDB51 clip file name (see the module docstring)."""
    stem = Path(filename).stem
    for pattern in (_TAG_BLOCK, _CLIP_INDEX):
        group = pattern.sub("", stem)
        if group and group != stem:
            return group
    return stem


def index_hmdb51(root: Path, fold: int = 1, split_dir: Path | None = None) -> DatasetIndex:
    """Index HMDB51 split ``fold`` (1, 2 or 3) into 'train' and 'test' (no 'val')."""
    if fold not in (1, 2, 3):
        raise DatasetError(f"hmdb51: fold must be 1, 2 or 3, got {fold!r}")
    root = abs_root(root)
    if not root.is_dir():
        raise layout_error("hmdb51", root, "root folder not found", LAYOUT)
    candidates = [abs_root(split_dir)] if split_dir is not None else [root / SPLIT_DIR, root.parent / SPLIT_DIR]
    lists = next((c for c in candidates if c.is_dir()), None)
    if lists is None:
        raise layout_error(
            "hmdb51", root, f"split folder not found (looked for {short_list(map(str, candidates))})", LAYOUT
        )

    classes = load_labels("hmdb51")
    suffix = f"_test_split{fold}.txt"
    no_folder = [c for c in classes if not (root / c).is_dir()]
    no_split = [c + suffix for c in classes if not (lists / (c + suffix)).is_file()]
    if no_folder or no_split:
        problems = []
        if no_folder:
            problems.append(f"{len(no_folder)} class folder(s) missing: {short_list(no_folder)}")
        if no_split:
            problems.append(f"{len(no_split)} split file(s) missing in {lists}: {short_list(no_split)}")
        raise layout_error("hmdb51", root, "; ".join(problems), LAYOUT)
    known = set(classes)
    unknown = sorted(p.name for p in lists.glob(f"*{suffix}") if p.name[: -len(suffix)] not in known)
    if unknown:
        raise DatasetError(f"hmdb51: split files for classes not in models/labels/hmdb51.txt: {short_list(unknown)}")

    cache = DirCache()
    splits: dict[str, list[VideoItem]] = {"train": [], "test": []}
    missing: list[tuple[str, str]] = []
    for label, cls in enumerate(classes):
        path = lists / (cls + suffix)
        for lineno, line in read_lines(path):
            parts = line.rsplit(None, 1)
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise DatasetError(f"{path}:{lineno}: expected '<name>.avi <0|1|2>', got {line!r}")
            split = TAGS.get(parts[1])
            if split is None:
                continue
            video = root / cls / parts[0]
            if cache.exists(video):
                splits[split].append(VideoItem(video, label, hmdb_group(parts[0])))
            else:
                missing.append((f"{cls}/{parts[0]}", split))
    logger.debug("hmdb51 fold %d: %s", fold, {k: len(v) for k, v in splits.items()})
    return DatasetIndex("hmdb51", classes, splits, flip_safe=True, missing=missing)
