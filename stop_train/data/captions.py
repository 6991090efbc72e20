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
from dataclasses import dataclass, field
from pathlib import Path

from .types import (
    RETRIEVAL_DATASETS,
    VIDEO_EXTENSIONS,
    DatasetLayoutError,
    DirCache,
    VideoItem,
    abs_root,
    check_options,
    layout_error,
    short_list,
)

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


@dataclass
class CaptionSplit:
    """The videos of one split and their captions.

    ``videos[i].label`` is ``i`` (its position) and ``videos[i].group`` its id; ``video_of_caption[j]`` is the
    position of the video caption ``j`` describes. Every video has at least one caption.
    """

    videos: list[VideoItem]
    captions: list[str]
    video_of_caption: list[int]

    def subset(self, keep: list[int]) -> CaptionSplit:
        """The videos at positions ``keep`` (in that order) with their captions, re-numbered."""
        new = {old: i for i, old in enumerate(keep)}
        videos = [VideoItem(self.videos[old].path, i, self.videos[old].group) for i, old in enumerate(keep)]
        pairs = [(c, new[v]) for c, v in zip(self.captions, self.video_of_caption) if v in new]
        return CaptionSplit(videos, [c for c, _ in pairs], [v for _, v in pairs])


@dataclass
class CaptionIndex:
    """The indexed caption dataset. ``missing`` lists ``(video id, split)`` of videos not found on disk
    (dropped with their captions); ``val_holdout``: 'val' was held out of 'train' by ``open_caption_dataset``."""

    name: str
    splits: dict[str, CaptionSplit]
    missing: list[tuple[str, str]] = field(default_factory=list)
    val_holdout: bool = False

    def counts(self) -> dict[str, tuple[int, int]]:
        """(videos, captions) per split."""
        return {s: (len(v.videos), len(v.captions)) for s, v in self.splits.items()}


def _build_split(pairs: list[tuple[str, str]], locate, split: str, missing: list) -> CaptionSplit:
    """(video id, caption) pairs -> a CaptionSplit; ``locate(id)`` gives the file or None (then missing)."""
    videos: list[VideoItem] = []
    position: dict[str, int] = {}
    captions, video_of_caption = [], []
    absent: set[str] = set()
    for vid, caption in pairs:
        if vid in absent:
            continue
        if vid not in position:
            path = locate(vid)
            if path is None:
                absent.add(vid)
                missing.append((vid, split))
                continue
            position[vid] = len(videos)
            videos.append(VideoItem(path, len(videos), vid))
        captions.append(caption)
        video_of_caption.append(position[vid])
    return CaptionSplit(videos, captions, video_of_caption)


def _locator(folders: list[Path], ext: str = ""):
    """id -> the first ``<folder>/<id><ext>`` that exists (any video extension when ``ext`` is '')."""
    cache = DirCache()
    exts = (ext,) if ext else (".mp4", *[e for e in VIDEO_EXTENSIONS if e != ".mp4"])

    def locate(vid: str) -> Path | None:
        for folder in folders:
            names = cache.names(folder)
            for e in exts:
                if vid + e in names:
                    return folder / (vid + e)
        return None

    return locate


# ------------------------------------------------------------------------------------------------- MSR-VTT
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


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in rows]


def _need_columns(path: Path, rows: list[dict[str, str]], columns: tuple[str, ...]) -> None:
    have = set(rows[0]) if rows else set()
    lacking = [c for c in columns if c not in have]
    if not rows or lacking:
        raise ValueError(
            f"{path}: expected a header with column(s) {', '.join(columns)}"
            + (f"; found {', '.join(sorted(have)) or 'none'}" if rows else "; the file is empty")
        )


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
        raise ValueError(
            f"{name}: lists for train and test only (a validation hold-out comes from train), "
            f"got {', '.join(sorted(unknown))}"
        )

    def need(filename: str, what: str) -> Path:
        given = Path(os.path.expanduser(filename))
        found = given if given.is_absolute() and given.is_file() else _find_file(filename, folders)
        if found is None:
            raise layout_error(
                name, root, f"{what} {filename} not found in {', '.join(map(str, folders))}", MSRVTT_LAYOUT
            )
        return found

    data_path = need("MSRVTT_data.json", "caption file")
    train_path = need(str(lists.get("train", "MSRVTT_train.9k.csv")), "train list")
    test_path = need(str(lists.get("test", "MSRVTT_JSFUSION_test.csv")), "test list")
    if videos:  # relative to the root (as kinetics400 and ssv2 take it), else as given
        video_dir = root / videos if (root / videos).is_dir() else abs_root(videos)
        if not video_dir.is_dir():
            raise layout_error(name, root, f"video folder {video_dir} not found (--video-dir)", MSRVTT_LAYOUT)
    else:
        video_dir = next(
            (
                root / d
                for d in MSRVTT_VIDEO_DIRS
                if (root / d).is_dir() and any(n.startswith("video") for n in os.listdir(root / d))
            ),
            None,
        )
        if video_dir is None:
            raise layout_error(
                name,
                root,
                "no folder of video<N>.mp4 files found (tried "
                + ", ".join(d or "." for d in MSRVTT_VIDEO_DIRS)
                + "); give --video-dir",
                MSRVTT_LAYOUT,
            )
    try:
        data = json.loads(data_path.read_text(encoding="utf-8-sig"))
        sentences = [(str(s["video_id"]), str(s["caption"]).strip()) for s in data["sentences"]]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(
            f"{data_path}: not MSR-VTT's caption file (expected {{'sentences': [{{'video_id', 'caption'}}]}}): {err}"
        ) from None
    train_rows = _read_csv(train_path)
    _need_columns(train_path, train_rows, ("video_id",))
    train_ids = {r["video_id"] for r in train_rows}
    test_rows = _read_csv(test_path)
    _need_columns(test_path, test_rows, ("video_id", "sentence"))
    test_ids = {r["video_id"] for r in test_rows}
    overlap = train_ids & test_ids
    if overlap:
        raise ValueError(
            f"{name}: {len(overlap)} video{'s are' if len(overlap) > 1 else ' is'} in both "
            f"{train_path.name} and {test_path.name}: "
            f"{short_list(sorted(overlap), 5)}"
        )
    described = {vid for vid, _ in sentences}
    bare = sorted(train_ids - described)
    if bare:
        logger.warning(
            "%s: %d training videos have no caption in %s (skipped): %s",
            name,
            len(bare),
            data_path.name,
            short_list(bare, 5),
        )
    locate = _locator([video_dir], ext)
    missing: list[tuple[str, str]] = []
    train = _build_split([(v, c) for v, c in sentences if v in train_ids], locate, "train", missing)
    test = _build_split([(r["video_id"], r["sentence"]) for r in test_rows], locate, "test", missing)
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
    raise ValueError(f"{where}: no {what} field (expected one of {', '.join(keys)}); found {', '.join(map(str, row))}")


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
                raise ValueError(f"{where}: not a JSON object ({err})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{where}: expected a JSON object with video and caption")
            video = _pick(VIDEO_KEYS, row, where, "video")
            captions = _pick(CAPTION_KEYS, row, where, "caption")
            captions = captions if isinstance(captions, list) else [captions]
            if not isinstance(video, str) or not captions or not all(isinstance(c, str) for c in captions):
                raise ValueError(
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
            raise ValueError(
                f"{path}:{rows[0][0]}: the header {','.join(rows[0][1])!r} names no "
                f"{'video' if vcol is None else 'caption'} column; accepted: "
                f"{' / '.join(VIDEO_KEYS)} and {' / '.join(CAPTION_KEYS)} (or no header: video,caption)"
            )
        for lineno, row in rows:
            if len(row) <= max(vcol, ccol):
                raise ValueError(f"{path}:{lineno}: expected video,caption; got {','.join(row)!r}")
            pairs.append((lineno, row[vcol].strip(), row[ccol].strip()))
    for lineno, video, caption in pairs:
        if not video or not caption:
            raise ValueError(f"{path}:{lineno}: empty {'video' if not video else 'caption'} ({video!r}, {caption!r})")
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

        splits[split] = _build_split(pairs, locate, split, missing)
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
                raise ValueError(
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
        raise ValueError(f"hold-out fraction must be in [0, 1), got {fraction}")
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
        raise ValueError(f"unknown caption dataset {name!r}; valid names: {', '.join(CAPTION_DATASETS)}") from None
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
