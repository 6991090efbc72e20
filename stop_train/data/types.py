"""Types shared by the dataset indexers, plus small helpers for reading split files.

An indexer turns an on-disk dataset into a :class:`DatasetIndex`: which video files,
which class index, which split. Nothing here decodes video.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import StopError

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm", ".mov")
RETRIEVAL_DATASETS = ("msrvtt", "captions", "synthetic-captions")  # the caption datasets (data.captions)


def parse_extensions(text: str) -> tuple[str, ...]:
    """`--extensions` text -> suffixes: comma-separated, any case, the dot optional ('avi,.MP4' -> ('.avi', '.mp4'))."""
    return tuple(e if e.startswith(".") else "." + e for e in text.lower().split(",") if e)


@dataclass(frozen=True)
class VideoItem:
    """One video: absolute path, class index and leakage group for grouped hold-outs."""

    path: Path
    label: int
    group: str


@dataclass
class DatasetIndex:
    """The indexed dataset: class keys in index order and the videos of each split.

    ``splits`` holds any of ``'train'``, ``'val'``, ``'test'``; an absent key means the
    split is not available. ``missing`` lists ``(name as in the split file, split)``
    for listed videos that were not found on disk (they are not in ``splits``).
    ``val_holdout`` says whether 'val' was held out of 'train' by ``open_dataset``.
    """

    name: str
    classes: list[str]
    splits: dict[str, list[VideoItem]]
    flip_safe: bool
    missing: list[tuple[str, str]] = field(default_factory=list)
    val_holdout: bool = False  # 'val' was held out of 'train' (it picks checkpoints; it is no test)

    def counts(self) -> dict[str, int]:
        """Number of videos per split."""
        return {split: len(items) for split, items in self.splits.items()}


class DatasetError(StopError, ValueError):
    """A dataset that cannot be indexed as given: a list or caption file with a bad line, unknown classes, splits
    that overlap."""


class DatasetLayoutError(DatasetError):
    """The dataset root does not have the expected layout; the message draws that layout."""


def layout_error(dataset: str, root: Path, problem: str, layout: str) -> DatasetLayoutError:
    """Build a :class:`DatasetLayoutError` whose message says what was not found and draws ``layout``."""
    return DatasetLayoutError(f"{dataset}: {problem}\nroot given: {root}\nexpected layout:\n{layout.rstrip()}")


def abs_root(root: str | os.PathLike[str]) -> Path:
    """``root`` made absolute and normalised, without resolving symlinks."""
    return Path(os.path.abspath(os.path.expanduser(os.fspath(root))))


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line number, stripped line)`` for non-blank lines; CRLF/LF and odd bytes are safe.

    Undecodable bytes are kept with ``surrogateescape`` so the names still match the
    file names that ``os.listdir`` returns on POSIX.
    """
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        text = fh.read()
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line:
            yield lineno, line


def short_list(names: Iterable[str], limit: int = 10) -> str:
    """Comma-separated names, cut after ``limit`` with a count of the rest."""
    names = list(names)
    head = ", ".join(names[:limit])
    return head if len(names) <= limit else f"{head}, ... ({len(names) - limit} more)"


class DirCache:
    """Answers "does this file exist?" with one directory listing per folder.

    Listing a folder once is much cheaper than one ``stat`` per video on network file
    systems with hundreds of thousands of clips.
    """

    def __init__(self) -> None:
        self._names: dict[Path, frozenset[str]] = {}

    def names(self, folder: Path) -> frozenset[str]:
        """Entry names of ``folder`` (empty when it does not exist)."""
        names = self._names.get(folder)
        if names is None:
            try:
                names = frozenset(os.listdir(folder))
            except OSError:
                names = frozenset()
            self._names[folder] = names
        return names

    def exists(self, path: Path) -> bool:
        """Whether ``path`` is an entry of its parent folder."""
        return path.name in self.names(path.parent)


def check_options(name: str, indexer, options: dict) -> None:
    """Raise ValueError naming the options ``indexer`` (a dataset indexer function) does not accept."""
    import inspect

    accepted = inspect.signature(indexer).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"{name}: unknown option(s) {', '.join(unknown)}; accepted: "
            f"{', '.join(p for p in accepted if p not in ('root', 'name')) or 'none'}"
        )
