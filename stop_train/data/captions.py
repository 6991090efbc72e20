"""Caption datasets for text-video retrieval: which videos, which captions of each, which split.

``open_caption_dataset(name, root)`` is the entry point; ``CAPTION_DATASETS`` maps names to indexers:

- ``msrvtt``: MSR-VTT as the published code (CLIP4Clip's loaders) reads it: the captions of
  ``MSRVTT_data.json``, the training videos of ``MSRVTT_train.9k.csv`` (or ``.7k``; ``--train-list``), the
  1k-A test pairs of ``MSRVTT_JSFUSION_test.csv`` (``--test-list``), one ``<video_id>.mp4`` per video;
- ``captions``: users' own data, CSV or JSON-lines files of (video path, caption), one file per split;
- ``synthetic-captions``: the generated set (`synthetic_captions.write_synthetic_captions`, MSR-VTT layout).

Nothing here decodes video. A video appears once per split; its captions point at it by position.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import random
from collections.abc import Mapping
from pathlib import Path

from .caption_types import SPLITS, CaptionIndex, CaptionSplit, build_split
from .msrvtt import index_msrvtt
from .types import (
    RETRIEVAL_DATASETS,
    VIDEO_EXTENSIONS,
    DatasetError,
    DatasetLayoutError,
    DirCache,
    abs_root,
    check_options,
    layout_error,
    short_list,
)

logger = logging.getLogger(__name__)

# ------------------------------------------------------------------------------------------ generic captions
CAPTIONS_LAYOUT = """\
<root>/
├── <any>/<clip>.mp4
├── train.csv   (or train.jsonl)   one row per caption; a video may have several rows
├── val.csv     (optional: else a hold-out of train videos)
└── test.csv    (optional)
CSV: header with columns video,caption (also path / text / sentence); else the first two columns
JSON lines: {"video": "<path>", "caption": "<text>"}  ("caption" may be a list of captions)
paths relative to <root> (or absolute); --train-list/--val-list/--test-list name other files"""
VIDEO_KEYS = ("video", "video_path", "path", "file", "video_id")
CAPTION_KEYS = ("caption", "text", "sentence", "captions", "description")


def _pick(keys, row: Mapping, where: str, what: str):
    for key in keys:
        if key in row:
            return row[key]
    raise DatasetError(
        f"{where}: no {what} field (expected one of {', '.join(keys)}); found {', '.join(map(str, row))}"
    )


def read_caption_file(path: Path) -> list[tuple[str, str]]:
    """(video path as written, caption) pairs of a CSV or JSON-lines caption file.

    CSV: a header naming a video column (VIDEO_KEYS) and a caption column (CAPTION_KEYS), or no header when
    the first cell is a video file name. JSON lines: an object per line; its caption a string or a list of
    strings. Raises ValueError naming the line for anything else (an unknown header, an empty caption, ...).
    """
    text = path.read_text(encoding="utf-8-sig", errors="surrogateescape")
    pairs: list[tuple[int, str, str]] = []  # (line, video, caption)
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
            except ValueError as err:
                raise DatasetError(f"{where}: not a JSON object ({err})") from None
            if not isinstance(row, dict):
                raise DatasetError(f"{where}: expected a JSON object with video and caption")
            video = _pick(VIDEO_KEYS, row, where, "video")
            captions = _pick(CAPTION_KEYS, row, where, "caption")
            captions = captions if isinstance(captions, list) else [captions]
            if not isinstance(video, str) or not captions or not all(isinstance(c, str) for c in captions):
                raise DatasetError(
                    f"{where}: the video must be a string and the caption a string or a non-empty list of strings"
                )
            pairs += [(lineno, video.strip(), c.strip()) for c in captions]
    else:
        reader = csv.reader(io.StringIO(text))
        rows = [(reader.line_num, r) for r in reader if any(cell.strip() for cell in r)]
        if not rows:
            return []
        header = [c.strip().lower() for c in rows[0][1]]
        vcol = next((header.index(k) for k in VIDEO_KEYS if k in header), None)
        ccol = next((header.index(k) for k in CAPTION_KEYS if k in header), None)
        if vcol is not None and ccol is not None:
            rows = rows[1:]
        elif header[0].endswith(VIDEO_EXTENSIONS) and len(header) >= 2:  # no header: video, caption
            vcol, ccol = 0, 1
        else:
            raise DatasetError(
                f"{path}:{rows[0][0]}: the header {','.join(rows[0][1])!r} names no "
                f"{'video' if vcol is None else 'caption'} column; accepted: "
                f"{' / '.join(VIDEO_KEYS)} and {' / '.join(CAPTION_KEYS)} (or no header: video,caption)"
            )
        for lineno, row in rows:
            if len(row) <= max(vcol, ccol):
                raise DatasetError(f"{path}:{lineno}: expected video,caption; got {','.join(row)!r}")
            pairs.append((lineno, row[vcol].strip(), row[ccol].strip()))
    for lineno, video, caption in pairs:
        if not video or not caption:
            raise DatasetError(f"{path}:{lineno}: empty {'video' if not video else 'caption'} ({video!r}, {caption!r})")
    return [(video, caption) for _, video, caption in pairs]


def index_captions(root: Path, lists: Mapping[str, str | Path] | None = None) -> CaptionIndex:
    """Index caption files (CSV or JSON lines), one per split; a split not given is read from
    ``<root>/<split>.csv`` or ``.jsonl`` when present (train is required). Video paths are relative to
    ``root`` unless absolute; a video is identified by its resolved path, so its rows are grouped."""
    root = abs_root(root)
    if not root.is_dir():
        raise layout_error("captions", root, "root folder not found", CAPTIONS_LAYOUT)
    lists = dict(lists or {})
    for split in SPLITS:
        if split not in lists:
            found = next((root / f"{split}{e}" for e in (".csv", ".jsonl") if (root / f"{split}{e}").is_file()), None)
            if found is not None:
                lists[split] = found
    if "train" not in lists and "test" not in lists:
        raise layout_error(
            "captions",
            root,
            f"no train or test caption file given (--train-list) and no train.csv / train.jsonl in {root}",
            CAPTIONS_LAYOUT,
        )
    cache = DirCache()
    missing: list[tuple[str, str]] = []
    splits: dict[str, CaptionSplit] = {}
    for split, list_path in lists.items():
        path = Path(os.path.expanduser(os.fspath(list_path)))
        if not path.is_file() and not path.is_absolute():
            path = root / path
        if not path.is_file():
            raise layout_error("captions", root, f"{split} caption file {list_path} not found", CAPTIONS_LAYOUT)
        pairs = [(os.path.normpath(root / v), c) for v, c in read_caption_file(path)]

        def locate(vid: str) -> Path | None:
            return Path(vid) if cache.exists(Path(vid)) else None

        splits[split] = build_split(pairs, locate, split, missing)
    _refuse_overlap("captions", splits)
    return CaptionIndex("captions", splits, missing)


def _refuse_overlap(name: str, splits: dict[str, CaptionSplit]) -> None:
    """A video in two splits leaks: ValueError naming them."""
    seen: dict[str, str] = {}
    for split, part in splits.items():
        for video in part.videos:
            other = seen.setdefault(str(video.path), split)
            if other != split:
                both = sorted({str(v.path) for v in part.videos} & {str(v.path) for v in splits[other].videos})
                raise DatasetError(
                    f"{name}: {len(both)} video{'s are' if len(both) > 1 else ' is'} in both the {other} "
                    f"and the {split} split: "
                    f"{short_list(both, 5)}"
                )


def index_synthetic_captions(root: Path) -> CaptionIndex:
    """The generated synthetic-captions set (MSR-VTT layout)."""
    return index_msrvtt(root, name="synthetic-captions")


CAPTION_DATASETS = {"msrvtt": index_msrvtt, "captions": index_captions, "synthetic-captions": index_synthetic_captions}
# TrainConfig (torch-free config) names them too, to tell the task from the dataset
assert tuple(CAPTION_DATASETS) == RETRIEVAL_DATASETS


def video_holdout(split: CaptionSplit, fraction: float, seed: int = 0) -> tuple[CaptionSplit, CaptionSplit]:
    """(train, val): about ``fraction`` of the videos, drawn by seed and id (independent of order), with all
    their captions, held out; at least one video stays in train."""
    if not 0.0 <= fraction < 1.0:
        raise DatasetError(f"hold-out fraction must be in [0, 1), got {fraction}")
    ids = sorted(range(len(split.videos)), key=lambda i: split.videos[i].group)
    random.Random(f"{seed}/captions").shuffle(ids)
    n_val = min(len(ids) - 1, round(fraction * len(ids))) if ids else 0
    held = set(ids[:n_val])
    return (
        split.subset([i for i in range(len(split.videos)) if i not in held]),
        split.subset([i for i in range(len(split.videos)) if i in held]),
    )


def open_caption_dataset(
    name: str, root: str | os.PathLike[str], val_fraction: float = 0.1, seed: int = 0, **options
) -> CaptionIndex:
    """Index caption dataset ``name`` under ``root``; without a 'val' split, 'val' is a hold-out of
    ``val_fraction`` of the training videos (it picks the checkpoint; the test split never does).

    Raises ValueError for an unknown name or option, DatasetLayoutError for a root without the layout.
    """
    try:
        indexer = CAPTION_DATASETS[name]
    except KeyError:
        raise DatasetError(f"unknown caption dataset {name!r}; valid names: {', '.join(CAPTION_DATASETS)}") from None
    check_options(name, indexer, options)
    index = indexer(Path(root), **options)
    if index.missing:
        logger.warning(
            "%s: %d listed videos are missing on disk and were skipped with their captions; e.g. %s",
            index.name,
            len(index.missing),
            short_list([v for v, _ in index.missing], 3),
        )
    if "val" not in index.splits and "train" in index.splits and val_fraction > 0:
        index.splits["train"], index.splits["val"] = video_holdout(index.splits["train"], val_fraction, seed)
        index.val_holdout = True
    logger.info(
        "%s: %s", index.name, ", ".join(f"{s} {v} videos / {c} captions" for s, (v, c) in index.counts().items())
    )
    return index


__all__ = [
    "CAPTION_DATASETS",
    "CaptionIndex",
    "CaptionSplit",
    "DatasetLayoutError",
    "index_captions",
    "index_msrvtt",
    "open_caption_dataset",
    "read_caption_file",
    "video_holdout",
]
