"""Kinetics-400 indexer: official CSV annotations, or ``<path> <label>`` lists.

(a) CSV: ``train.csv`` and ``validate.csv``/``val.csv`` (header
``label,youtube_id,time_start,time_end,split[,is_cc]``, labels may be quoted) in the
``annotations`` folder (default ``root/annotations`` if it has them, else ``root``).
Clip ``<youtube_id>_<start:06d>_<end:06d><ext>`` is looked up in
``<split dir>/<label>/``, ``<split dir>/<label with underscores>/`` and ``<split dir>/``
(flat), where the split dir is the ``videos`` option entry or the first existing of
``root/train`` or ``root/videos_train`` (val: ``val``, ``validate``, ``videos_val``).
The group is the YouTube id. (b) lists: ``lists={'train': path, 'val': path}``, see
:func:`stop_train.data.folder.index_list`. Label text must be a key of
``load_labels('kinetics400')`` exactly. test.csv is not read (K400 reports on val).
"""
from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Mapping, Optional, Union

from ..labels import load_labels
from .folder import index_list
from .types import DatasetIndex, DirCache, VideoItem, abs_root, layout_error, short_list

logger = logging.getLogger(__name__)

CSV_NAMES = {"train": ("train.csv",), "val": ("validate.csv", "val.csv")}
VIDEO_DIRS = {"train": ("train", "videos_train"), "val": ("val", "validate", "videos_val")}
COLUMNS = ("label", "youtube_id", "time_start", "time_end")

LAYOUT = """\
<root>/
├── annotations/            (or the CSVs directly in <root>)
│   ├── train.csv           label,youtube_id,time_start,time_end,split[,is_cc]
│   └── validate.csv        (or val.csv)
├── train/                  (or videos_train/)
│   ├── <youtube_id>_<start:06d>_<end:06d>.mp4          (flat)
│   └── abseiling/<clip>.mp4 or air_drumming/<clip>.mp4 (per class)
└── val/                    (or validate/, videos_val/)
or lists: index_kinetics400(root, lists={'train': 'train_list.txt', 'val': 'val_list.txt'})
          lines '<path relative to root> <label index or name>'"""


def _read_csv(path: Path, class_id: Mapping[str, int]) -> list[tuple[str, int, str]]:
    """``(clip stem, label, youtube id)`` rows of one annotation CSV."""
    with open(path, "r", encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in reader.fieldnames or []]
        if not set(COLUMNS) <= set(header):
            raise ValueError(f"{path}: header must contain {','.join(COLUMNS)}; got {','.join(header)}")
        reader.fieldnames = header
        rows = []
        unknown: dict[str, int] = {}
        for row in reader:
            label = row["label"].strip()
            if label not in class_id:
                unknown.setdefault(label, reader.line_num)
                continue
            yid = row["youtube_id"].strip()
            start, end = (int(float(row[k])) for k in ("time_start", "time_end"))
            rows.append((f"{yid}_{start:06d}_{end:06d}", class_id[label], yid))
    if unknown:
        named = short_list(f"{lab!r} (line {n})" for lab, n in unknown.items())
        raise ValueError(f"{path}: labels not in models/labels/kinetics400.txt: {named}")
    return rows


def index_kinetics400(
    root: Path,
    annotations: Optional[Path] = None,
    lists: Optional[Mapping[str, Union[str, Path]]] = None,
    videos: Optional[Mapping[str, Union[str, Path]]] = None,
    ext: str = ".mp4",
) -> DatasetIndex:
    """Index Kinetics-400 'train' and 'val' from the official CSVs, or from ``lists``."""
    classes = load_labels("kinetics400")
    root = abs_root(root)
    if not root.is_dir():
        raise layout_error("kinetics400", root, "root folder not found", LAYOUT)
    if lists:
        index = index_list(root, lists, classes=classes, name="kinetics400")
        return DatasetIndex("kinetics400", classes, index.splits, flip_safe=True, missing=index.missing)

    folders = [abs_root(annotations)] if annotations is not None else [root / "annotations", root]
    folder = next((f for f in folders if (f / "train.csv").is_file()), None)
    if folder is None:
        raise layout_error("kinetics400", root, f"train.csv not found in {short_list(map(str, folders))}", LAYOUT)

    class_id = {c: i for i, c in enumerate(classes)}
    cache = DirCache()
    splits: dict[str, list[VideoItem]] = {}
    missing: list[tuple[str, str]] = []
    for split, names in CSV_NAMES.items():
        csv_path = next((folder / n for n in names if (folder / n).is_file()), None)
        if csv_path is None:
            logger.info("kinetics400: no %s in %s; no %s split", " or ".join(names), folder, split)
            continue
        dirs = [abs_root(root / videos[split])] if videos and split in videos else [root / d for d in VIDEO_DIRS[split]]
        video_dir = next((d for d in dirs if d.is_dir()), None)
        if video_dir is None:
            raise layout_error("kinetics400", root, f"{split} video folder not found ({short_list(map(str, dirs))})", LAYOUT)
        items = splits[split] = []
        for stem, label, yid in _read_csv(csv_path, class_id):
            name = stem + ext
            cls = classes[label]
            places = (video_dir / cls / name, video_dir / cls.replace(" ", "_") / name, video_dir / name)
            video = next((p for p in places if cache.exists(p)), None)
            if video is None:
                missing.append((name, split))
            else:
                items.append(VideoItem(video, label, yid))
    return DatasetIndex("kinetics400", classes, splits, flip_safe=True, missing=missing)
