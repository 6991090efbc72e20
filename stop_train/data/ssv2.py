"""Something-Something V2 indexer: the 20BN JSON annotations and ``<id>.webm`` videos.

Annotations (``something-something-v2-{labels,train,validation}.json``) are read from the
``annotations`` option, else the first of ``root``, ``root/labels``, ``root/annotations``
holding the labels file. Class id = ``labels[template without brackets]``; the labels
file must give every template the index it has in ``load_labels('ssv2')``. Videos are
``<videos>/<id><ext>`` (default ``root/20bn-something-something-v2/<id>.webm``); when ``ext`` is
None it is found on disk (``.webm`` as released, ``.mp4`` in re-encoded copies).
Horizontal flips are not label-safe here ("left to right" vs "right to left").
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..labels import load_labels
from .types import DatasetError, DatasetIndex, DirCache, VideoItem, abs_root, layout_error, short_list

logger = logging.getLogger(__name__)

PREFIX = "something-something-v2-"
SPLIT_FILES = {"train": PREFIX + "train.json", "val": PREFIX + "validation.json"}
VIDEOS = "20bn-something-something-v2"

LAYOUT = f"""\
<root>/
├── {PREFIX}labels.json        (also in <root>/labels/ or <root>/annotations/)
├── {PREFIX}train.json
├── {PREFIX}validation.json
└── {VIDEOS}/                   (or --video-dir)
    ├── 1.webm                 (or 1.mp4 in re-encoded copies; --video-ext)
    └── ..."""
EXTENSIONS = (".webm", ".mp4")


def _template_key(template: str) -> str:
    return template.replace("[", "").replace("]", "")


def read_ssv2_labels(path: Path) -> list[str]:
    """Templates of the labels JSON in id order, checked against ``load_labels('ssv2')``."""
    with open(path, encoding="utf-8-sig") as fh:
        mapping = json.load(fh)
    by_id = sorted((int(i), t) for t, i in mapping.items())
    if [i for i, _ in by_id] != list(range(len(by_id))):
        raise DatasetError(f"{path}: class ids must run 0..{len(by_id) - 1}")
    classes = [t for _, t in by_id]
    expected = load_labels("ssv2")
    if classes != expected:
        wrong = [f"{t!r}={mapping.get(t)}" for i, t in enumerate(expected) if mapping.get(t) != str(i)]
        raise DatasetError(
            f"{path}: does not match models/labels/ssv2.txt "
            f"({len(classes)} vs {len(expected)} classes; differing: {short_list(wrong, 5)})"
        )
    return classes


def index_ssv2(
    root: Path,
    videos: str | Path = VIDEOS,
    annotations: Path | None = None,
    ext: str | None = None,
) -> DatasetIndex:
    """Index SSv2 'train' and 'validation' (as 'val'); groups are the video ids."""
    root = abs_root(root)
    if not root.is_dir():
        raise layout_error("ssv2", root, "root folder not found", LAYOUT)
    folders = [abs_root(annotations)] if annotations is not None else [root, root / "labels", root / "annotations"]
    folder = next((f for f in folders if (f / (PREFIX + "labels.json")).is_file()), None)
    if folder is None:
        raise layout_error("ssv2", root, f"{PREFIX}labels.json not found in {short_list(map(str, folders))}", LAYOUT)
    video_dir = abs_root(root / videos)
    if not video_dir.is_dir():
        raise layout_error("ssv2", root, f"video folder {video_dir} not found", LAYOUT)
    cache = DirCache()
    if ext:
        ext = ext if ext.startswith(".") else "." + ext
    else:  # the extension most of the folder's videos have
        names = cache.names(video_dir)
        ext = max(EXTENSIONS, key=lambda e: sum(n.endswith(e) for n in names))

    classes = read_ssv2_labels(folder / (PREFIX + "labels.json"))
    class_id = {t: i for i, t in enumerate(classes)}
    splits: dict[str, list[VideoItem]] = {}
    missing: list[tuple[str, str]] = []
    for split, filename in SPLIT_FILES.items():
        path = folder / filename
        if not path.is_file():
            raise layout_error("ssv2", root, f"{filename} not found in {folder}", LAYOUT)
        with open(path, encoding="utf-8-sig") as fh:
            records = json.load(fh)
        items = splits[split] = []
        for record in records:
            key = _template_key(record["template"])
            if key not in class_id:
                raise DatasetError(f"{path}: video {record['id']}: template {record['template']!r} is not a class")
            name = f"{record['id']}{ext}"
            video = video_dir / name
            if cache.exists(video):
                items.append(VideoItem(video, class_id[key], str(record["id"])))
            else:
                missing.append((name, split))
    return DatasetIndex("ssv2", classes, splits, flip_safe=False, missing=missing)
