"""Probed videos kept between runs (torch-free): `VideoInfo`, or the reason a video is unusable, per file.

One JSON file keyed by path, size and mtime. Entries written by another probe version (`PROBE_VERSION`) are
probed again. Saving merges with what another process saved meanwhile (two trainings sharing a cache keep
both's entries) and replaces the file in one rename (`stop_train.atomic`): a crash leaves the previous cache.
A cache that cannot be read is ignored (it is only a cache) and rewritten at the next save.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Sequence

from ..atomic import atomic_write_json, exclusive
from .index import PROBE_VERSION, VideoInfo, probe, verify_by_decoding
from .libav import VideoReadError

log = logging.getLogger(__name__)


class ProbeCache:
    """`probe` with its results kept in `path` (None: in memory only)."""

    def __init__(self, path: Path | None):
        self.path = path
        self.entries: dict[str, dict] = self._read()
        self._new: dict[str, dict] = {}

    def probe(self, video: Path, verify: bool = False) -> VideoInfo:
        """VideoInfo of `video`; raises VideoReadError (the reason is cached too). `verify`: an index built from
        the packets is checked by decoding the file once (`index.verify_by_decoding`), and kept as verified."""
        try:
            st = os.stat(video)
        except OSError:
            raise VideoReadError("file not found") from None
        key, stamp = os.fspath(video), [st.st_size, st.st_mtime_ns]
        entry = self.entries.get(key)
        fresh = entry is not None and entry.get("stamp") == stamp and entry.get("version") == PROBE_VERSION
        if fresh and verify and "info" in entry and not entry.get("verified"):
            fresh = False  # indexed from its packets only: decode it once now
        if fresh:
            if "error" in entry:
                raise VideoReadError(entry["error"])
            try:
                return VideoInfo.from_dict(entry["info"])
            except (KeyError, TypeError, ValueError):
                pass  # malformed: probe again
        entry = {"stamp": stamp, "version": PROBE_VERSION}
        try:
            info = probe(video)
            if verify:
                info = verify_by_decoding(video, info)
                entry["verified"] = True
            entry["info"] = info.to_dict()
        except VideoReadError as err:
            entry["error"] = str(err)
        self.entries[key] = self._new[key] = entry
        if "error" in entry:
            raise VideoReadError(entry["error"])
        return VideoInfo.from_dict(entry["info"])

    def save(self) -> None:
        """Merge this process's new entries into the file (under its lock) and replace it in one rename.
        Raises OSError naming the file (ENOSPC: the disk is full)."""
        if self.path is None or not self._new:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self.path.with_name(f".{self.path.name}.lock")
        with exclusive(lock, busy="", wait=f"waiting for another process saving {self.path}"):
            merged = {**self._read(), **self._new}
            atomic_write_json(self.path, merged, indent=None)
        self.entries.update(merged)
        self._new.clear()

    def _read(self) -> dict[str, dict]:
        if self.path is None or not self.path.is_file():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8", errors="surrogateescape"))
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            log.warning("ignoring an unreadable probe cache %s", self.path)
            return {}


def probe_items(items: Sequence, cache: ProbeCache, progress=None):
    """`items` (anything with a `.path`) -> (usable items, their VideoInfo, skipped [(path, reason)])."""
    usable, infos, skipped = [], [], []
    for item in progress(items) if progress else items:  # I/O: one probe per video, cached
        try:
            infos.append(cache.probe(item.path))
            usable.append(item)
        except VideoReadError as err:
            skipped.append((os.fspath(item.path), str(err)))
    return usable, infos, skipped
