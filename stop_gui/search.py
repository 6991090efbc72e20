"""Search inside the open video (or a `stop-search` index) by text: window embeddings computed on a thread
with progress, cached on disk per video and model, ranked with the model's text encoder."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

from stop_export.runtime.errors import BackendError, RecognizeError
from stop_export.runtime.search import SearchIndex, SearchIndexError, WindowCfg, default_stride, embed_video
from stop_export.runtime.text import TextEncoder


class VideoEmbedder(QObject):
    """Embeds one video file on a daemon thread: `progress(fraction)`, then `finished(SearchIndex)` or
    `failed(reason)`. `cancel()` stops it at the next frame (nothing is emitted after)."""

    progress = Signal(float)
    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, backend, path: Path, duration_s: float, cache: Path):
        super().__init__()
        self.backend, self.path, self.duration_s, self.cache = backend, path, duration_s, cache
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="stop-gui-search-embed", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def cancel(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        meta = self.backend.metadata
        interval = meta.sampling.frame_interval_s
        windows = WindowCfg(meta.frames, interval, default_stride((meta.frames - 1) * interval))  # as stop-search
        last = [-1.0]

        def progress(t: float) -> None:
            fraction = min(1.0, t / self.duration_s) if self.duration_s > 0 else 0.0
            if fraction - last[0] >= 0.01 and not self._stop.is_set():
                last[0] = fraction
                self.progress.emit(fraction)

        try:
            emb, start, end, duration = embed_video(
                self.backend, self.path, windows, stop=self._stop, progress=progress
            )
        except (RecognizeError, BackendError, RuntimeError, ValueError, OSError) as err:
            if not self._stop.is_set():
                self.failed.emit(f"cannot search {self.path.name}: {err}")
            return
        if self._stop.is_set():
            return
        index = SearchIndex(meta.fingerprint, "", windows)
        index.replace(self.path, duration, emb, start, end)
        try:
            index.save(self.cache)
        except OSError:
            pass  # a cache that cannot be written only costs the next search its speed
        self.finished.emit(index)


def cache_file(folder: Path, fingerprint: str, video: Path) -> Path:
    """Where the windows of `video` under the model `fingerprint` are cached (an index of one video)."""
    digest = hashlib.sha1(str(video).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return folder / f"{fingerprint}-{digest}"


def cached_index(folder: Path, fingerprint: str, video: Path) -> SearchIndex | None:
    """The cached windows of `video` for this model, when present and the file is unchanged."""
    path = cache_file(folder, fingerprint, video)
    try:
        index = SearchIndex.load(path)
    except SearchIndexError:
        return None
    if index.fingerprint != fingerprint or not index.up_to_date(video):
        return None
    return index


def find(index: SearchIndex, encoder: TextEncoder, text: str, top: int = 10, moments: int = 5) -> list[dict]:
    """`SearchIndex.search` for a text."""
    query: np.ndarray = encoder.encode([text])[0]
    return index.search(query, top=top, moments=moments)
