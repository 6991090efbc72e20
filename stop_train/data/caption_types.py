"""What caption datasets index to (no decoding): the videos of a split with their captions, and the helpers
every caption format's indexer shares."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from .types import VIDEO_EXTENSIONS, DatasetError, DirCache, VideoItem

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


def build_split(pairs: list[tuple[str, str]], locate, split: str, missing: list) -> CaptionSplit:
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


def locator(folders: list[Path], ext: str = ""):
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


def read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file with a header, keys and values stripped (a BOM is ignored)."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in rows]


def need_columns(path: Path, rows: list[dict[str, str]], columns: tuple[str, ...]) -> None:
    """Raises ValueError naming the columns `rows` (read from `path`) lack, or an empty file."""
    have = set(rows[0]) if rows else set()
    lacking = [c for c in columns if c not in have]
    if not rows or lacking:
        raise DatasetError(
            f"{path}: expected a header with column(s) {', '.join(columns)}"
            + (f"; found {', '.join(sorted(have)) or 'none'}" if rows else "; the file is empty")
        )
