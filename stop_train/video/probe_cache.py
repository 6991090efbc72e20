"""Probed videos kept between runs (torch-free): `VideoInfo`, or the reason a video is unusable, per file.

One JSON file keyed by path, size and mtime. Entries written by another probe version (`PROBE_VERSION`) are
probed again. Saving merges with what another process saved meanwhile (two trainings sharing a cache keep
both's entries) and replaces the file in one rename (`stop_train.atomic`): a crash leaves the previous cache.
A cache that cannot be read is ignored (it is only a cache) and rewritten at the next save.

Exact probes (the default) are verified by decoding each file once (`index.probe_exact`); a cached fast probe
(`exact=False`, packets only) is verified when an exact one is asked for. `probe_items` probes a dataset on
threads (FFmpeg decodes without the GIL) and saves what it has every minute, so an interrupted probe of a large
dataset keeps its work.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

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

    def probe(self, video: Path, exact: bool = True) -> VideoInfo:
        """VideoInfo of `video`; raises VideoReadError (the reason is cached too). `exact`: an index built from the
        packets is verified by decoding the file once (`index.verify_by_decoding`), and cached as verified."""
        key, entry = self.lookup(video, exact)
        if entry is None:
            entry = probe_entry(video, exact)
            self.store(key, entry)
        return _result(entry)

    def lookup(self, video: Path, exact: bool = True) -> tuple[str, dict | None]:
        """(cache key: the absolute path, so that `stop-train check ds` and training on /data/ds share entries;
        the cached entry where it is still good for `video`, else None)."""
        key = os.path.abspath(os.fspath(video))
        entry = self.entries.get(key)
        try:
            st = os.stat(video)
        except OSError:
            return key, {"error": "file not found"}
        if entry is None or entry.get("stamp") != [st.st_size, st.st_mtime_ns] or entry.get("version") != PROBE_VERSION:
            return key, None
        if exact and "info" in entry and not entry.get("verified"):
            return key, None  # indexed from its packets only: decode it once now
        if "error" not in entry:
            try:
                VideoInfo.from_dict(entry["info"])
            except (KeyError, TypeError, ValueError):
                return key, None  # malformed: probe again
        return key, entry

    def store(self, key: str, entry: dict) -> None:
        self.entries[key] = self._new[key] = entry

    def save(self) -> None:
        """Merge this process's new entries into the file (under its lock) and replace it in one rename.
        Raises OSError naming the file (ENOSPC: the disk is full)."""
        if self.path is None or not self._new:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self.path.with_name(f".{self.path.name.lstrip('.')}.lock")
        with exclusive(lock, busy="", wait=f"waiting for another process saving {self.path}"):
            merged = {**self._read(), **self._new}
            atomic_write_json(self.path, merged, indent=None)
        self.entries.update(merged)
        self._new.clear()

    def refresh(self) -> None:
        """Take in what other processes saved since (this process's unsaved entries win)."""
        self.entries = {**self.entries, **self._read(), **self._new}

    def _read(self) -> dict[str, dict]:
        if self.path is None or not self.path.is_file():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8", errors="surrogateescape"))
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            log.warning("ignoring an unreadable probe cache %s", self.path)
            return {}


def probe_entry(video: Path, exact: bool = True) -> dict:
    """A cache entry for `video`, probed now: {'stamp', 'version', and 'info' (+ 'verified') or 'error'}."""
    try:
        st = os.stat(video)
    except OSError:
        return {"error": "file not found"}
    entry: dict = {"stamp": [st.st_size, st.st_mtime_ns], "version": PROBE_VERSION}
    try:
        info = probe(video)
        if exact:
            info = verify_by_decoding(video, info)
            entry["verified"] = True
        entry["info"] = info.to_dict()
    except VideoReadError as err:
        entry["error"] = str(err)
    return entry


def _result(entry: dict) -> VideoInfo:
    if "error" in entry:
        raise VideoReadError(entry["error"])
    return VideoInfo.from_dict(entry["info"])


SAVE_EVERY_S = 60.0


def probe_items(
    items: Sequence, cache: ProbeCache, progress: Callable | None = None, exact: bool = True, jobs: int | None = None
):
    """`items` (anything with a `.path`) -> (usable items, their VideoInfo, skipped [(path, reason)]).

    Videos not in `cache` are probed on `jobs` threads (default: one per CPU core, at most 8); the cache is
    saved every `SAVE_EVERY_S` and when interrupted. `progress(iterable, total=n)` wraps the probes (tqdm)."""
    found: dict[str, dict | None] = {}
    keys = []
    for item in items:
        key, entry = cache.lookup(item.path, exact)
        found[key] = entry
        keys.append(key)
    todo = {key: Path(key) for key, entry in found.items() if entry is None}
    if todo:
        _probe_all(todo, cache, progress, exact, jobs or min(os.cpu_count() or 1, 8))
    usable, infos, skipped = [], [], []
    for item, key in zip(items, keys):
        try:
            infos.append(_result(found[key] or cache.entries[key]))
            usable.append(item)
        except VideoReadError as err:
            skipped.append((os.fspath(item.path), str(err)))
    return usable, infos, skipped


def _probe_all(todo: dict[str, Path], cache: ProbeCache, progress, exact: bool, jobs: int) -> None:
    last_save = time.monotonic()
    pool = ThreadPoolExecutor(max(1, min(jobs, len(todo))), thread_name_prefix="probe")
    try:
        futures = {pool.submit(probe_entry, path, exact): key for key, path in todo.items()}
        done = as_completed(futures)
        for future in progress(done, total=len(futures)) if progress else done:
            cache.store(futures[future], future.result())
            if time.monotonic() - last_save > SAVE_EVERY_S:
                _save_quietly(cache)
                last_save = time.monotonic()
    except BaseException:  # Ctrl-C, or a failure: keep what was probed
        pool.shutdown(wait=False, cancel_futures=True)
        _save_quietly(cache)
        raise
    pool.shutdown()


def _save_quietly(cache: ProbeCache) -> None:
    try:
        cache.save()
    except OSError as err:
        log.warning("could not save the probe cache (%s); probing goes on", err)
