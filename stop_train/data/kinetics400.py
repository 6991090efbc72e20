"""Kinetics-400 indexer: official CSV annotations, or ``<path> <label>`` lists.

(a) CSV: ``train.csv`` and ``validate.csv``/``val.csv`` (header
``label,youtube_id,time_start,time_end,split[,is_cc]``, labels may be quoted) in the
``annotations`` folder (default ``root/annotations`` if it has them, else ``root``).
Clip ``<youtube_id>_<start:06d>_<end:06d><ext>`` is looked up in
``<split dir>/<label>/``, ``<split dir>/<label with underscores>/`` and ``<split dir>/``
(flat), where the split dir is the first existing of ``<videos>/train``, ``train_256`` or
``videos_train`` (val: ``val``, ``validate``, ``val_256``, ``videos_val``) and ``<videos>`` is the
``videos`` option (default ``root``). A clip's extension is ``ext``, or when it is None the first of
``.mp4 .mkv .webm .avi`` found (downloads mix them). The group is the YouTube id.
(b) lists: ``lists={'train': path, 'val': path}``, see :func:`stop_train.data.folder.index_list`
(paths relative to ``root`` or to the split's video folder, as mmaction2 writes them);
without lists or CSVs, mmaction2's ``kinetics400_{train,val}_list_videos.txt`` in the annotation
folder are used. Label text must be a key of ``load_labels('kinetics400')`` exactly (list labels may
be class indices). test.csv is not read (K400 reports on val).
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Mapping
from pathlib import Path

from ..labels import load_labels
from .folder import index_list
from .types import DatasetError, DatasetIndex, DirCache, VideoItem, abs_root, layout_error, short_list

logger = logging.getLogger(__name__)

CSV_NAMES = {"train": ("train.csv",), "val": ("validate.csv", "val.csv")}
VIDEO_DIRS = {"train": ("train", "train_256", "videos_train"), "val": ("val", "validate", "val_256", "videos_val")}
EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi")
MMACTION_LISTS = {"train": "kinetics400_train_list_videos.txt", "val": "kinetics400_val_list_videos.txt"}
COLUMNS = ("label", "youtube_id", "time_start", "time_end")

LAYOUT = """\
<root>/
├── annotations/            (or the CSVs directly in <root>)
│   ├── train.csv           label,youtube_id,time_start,time_end,split[,is_cc]
│   └── validate.csv        (or val.csv)
├── train/                  (or train_256/, videos_train/; under --video-dir if given)
│   ├── <youtube_id>_<start:06d>_<end:06d>.mp4          (flat; or .mkv, .webm)
│   └── abseiling/<clip>.mp4 or air_drumming/<clip>.mp4 (per class)
└── val/                    (or validate/, val_256/, videos_val/)
or lists: --train-list FILE --val-list FILE (default: kinetics400_{train,val}_list_videos.txt)
          lines '<path relative to root> <label index or name>'"""


def _read_csv(path: Path, class_id: Mapping[str, int]) -> list[tuple[str, int, str]]:
    """``(clip stem, label, youtube id)`` rows of one annotation CSV."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in reader.fieldnames or []]
        if not set(COLUMNS) <= set(header):
            raise DatasetError(f"{path}: header must contain {','.join(COLUMNS)}; got {','.join(header)}")
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
        raise DatasetError(f"{path}: labels not in models/labels/kinetics400.txt: {named}")
    return rows


def _youtube_id(video: Path) -> str:
    """The hold-out group of a clip: its YouTube id (the name without `_<start>_<end>`)."""
    match = re.match(r"(.+)_\d{6}_\d{6}$", video.stem)
    return match.group(1) if match else video.stem


def index_kinetics400(
    root: Path,
    annotations: Path | None = None,
    lists: Mapping[str, str | Path] | None = None,
    videos: str | Path | None = None,
    ext: str | None = None,
) -> DatasetIndex:
    """Index Kinetics-400 'train' and 'val' from the official CSVs, or from ``lists``."""
    classes = load_labels("kinetics400")
    root = abs_root(root)
    if not root.is_dir():
        raise layout_error("kinetics400", root, "root folder not found", LAYOUT)
    folders = [abs_root(annotations)] if annotations is not None else [root / "annotations", root]
    folder = next((f for f in folders if (f / "train.csv").is_file()), None)
    if not lists and folder is None:
        found = next((f for f in folders if (f / MMACTION_LISTS["train"]).is_file()), None)
        if found is not None:
            lists = {s: found / n for s, n in MMACTION_LISTS.items() if (found / n).is_file()}
            logger.info("kinetics400: reading the lists %s", ", ".join(str(p) for p in lists.values()))
    base = abs_root(root / videos) if videos is not None else root
    if lists:
        dirs = {split: [base / d for d in names] for split, names in VIDEO_DIRS.items()}
        index = index_list(
            root, lists, classes=classes, name="kinetics400", video_dirs=dirs, group=_youtube_id, discover=False
        )
        return DatasetIndex("kinetics400", classes, index.splits, flip_safe=True, missing=index.missing)
    if folder is None:
        raise layout_error(
            "kinetics400",
            root,
            f"train.csv (or {MMACTION_LISTS['train']}) not found in {short_list(map(str, folders))}",
            LAYOUT,
        )

    splits, missing = _index_csvs(root, folder, base, classes, ext)
    return DatasetIndex("kinetics400", classes, splits, flip_safe=True, missing=missing)


def _index_csvs(
    root: Path, folder: Path, base: Path, classes: list[str], ext: str | None
) -> tuple[dict[str, list[VideoItem]], list[tuple[str, str]]]:
    """(split -> videos, missing (file, split)) from the official CSVs in `folder`; videos under `base`'s split
    folders, in a folder per class or flat. Raises DatasetLayoutError for a split without its video folder."""
    class_id = {c: i for i, c in enumerate(classes)}
    extensions = (ext if ext.startswith(".") else "." + ext,) if ext else EXTENSIONS
    cache = DirCache()
    splits: dict[str, list[VideoItem]] = {}
    missing: list[tuple[str, str]] = []
    for split, names in CSV_NAMES.items():
        csv_path = next((folder / n for n in names if (folder / n).is_file()), None)
        if csv_path is None:
            logger.info("kinetics400: no %s in %s; no %s split", " or ".join(names), folder, split)
            continue
        dirs = [base / d for d in VIDEO_DIRS[split]]
        video_dir = next((d for d in dirs if d.is_dir()), None)
        if video_dir is None:
            raise layout_error(
                "kinetics400", root, f"{split} video folder not found ({short_list(map(str, dirs))})", LAYOUT
            )
        items = splits[split] = []
        for stem, label, yid in _read_csv(csv_path, class_id):
            cls = classes[label]
            places = [
                d / (stem + e)
                for e in extensions
                for d in (video_dir / cls, video_dir / cls.replace(" ", "_"), video_dir)
            ]
            video = next((p for p in places if cache.exists(p)), None)
            if video is None:
                missing.append((stem + extensions[0], split))
            else:
                items.append(VideoItem(video, label, yid))
    return splits, missing
