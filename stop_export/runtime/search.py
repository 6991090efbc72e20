"""Text-to-video search on the edge (torch-free): embed videos in windows, keep the embeddings in an index
file, rank windows against a text with the exported text encoder.

An index is two files: `INDEX.json` (format version, the model's fingerprint, the window settings, one entry
per video with its size and modification time) and `INDEX.npz` (window embeddings (W, E) float32, their
video (W,), start and end times (W,) in seconds, and the document of INDEX.json: one rename writes an index,
`files`). No pickle. An index built with one model is refused by
another (the fingerprint covers the config and every weight; an ONNX file and its engines share it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from stop_train.errors import StopError
from stop_train.schema import Metadata

from .buffer import ClipBuffer
from .files import paired_paths, read_pair, write_pair

INDEX_VERSION = 1


class SearchIndexError(StopError, ValueError):
    """An index that cannot be read, or that belongs to another model."""


@dataclass
class IndexedVideo:
    path: str  # absolute
    size: int  # bytes, with mtime_ns: a changed file is embedded again
    mtime_ns: int
    duration_s: float
    windows: int


@dataclass
class WindowCfg:
    """How videos are cut: the model's T frames `frame_interval_s` apart, a window every `stride_s`."""

    frames: int
    frame_interval_s: float
    stride_s: float

    @property
    def span_s(self) -> float:
        return (self.frames - 1) * self.frame_interval_s


@dataclass
class SearchIndex:
    """Window embeddings of a set of videos, for one model; the windows are stored grouped by video, in the order
    of `videos`."""

    fingerprint: str
    model: str  # the model file it was built with (absolute path), for queries that name none
    windows: WindowCfg
    videos: list[IndexedVideo] = field(default_factory=list)
    embedding: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))  # (W, E), unit rows
    video: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # (W,) position in `videos`
    start: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (W,) seconds
    end: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (W,) seconds

    # ------------------------------------------------------------------------------------------- files
    @staticmethod
    def paths(path: str | Path) -> tuple[Path, Path]:
        """(INDEX.json, INDEX.npz) for `path` given with or without the .json suffix."""
        return paired_paths(path)

    def save(self, path: str | Path) -> Path:
        """Write INDEX.npz and INDEX.json (`files.write_pair`: a crash leaves the previous index). Raises OSError."""
        doc = {
            "format": "stop-search-index",
            "version": INDEX_VERSION,
            "fingerprint": self.fingerprint,
            "model": self.model,
            "windows": asdict(self.windows),
            "videos": [asdict(v) for v in self.videos],
        }
        return write_pair(
            path,
            doc,
            {
                "embedding": self.embedding.astype(np.float32),
                "video": self.video.astype(np.int32),
                "start": self.start.astype(np.float64),
                "end": self.end.astype(np.float64),
            },
        )

    @classmethod
    def load(cls, path: str | Path) -> SearchIndex:
        """Read an index. Raises SearchIndexError naming the problem (missing, not an index, newer format)."""
        meta_path = cls.paths(path)[0]
        doc, arrays = read_pair(
            path,
            "stop-search-index",
            "stop-search index",
            INDEX_VERSION,
            SearchIndexError,
            "build one with stop-search index",
        )
        try:
            index = cls(
                doc["fingerprint"],
                doc["model"],
                WindowCfg(**doc["windows"]),
                [IndexedVideo(**v) for v in doc["videos"]],
                arrays["embedding"],
                arrays["video"],
                arrays["start"],
                arrays["end"],
            )
        except (KeyError, TypeError, ValueError) as err:
            raise SearchIndexError(f"{meta_path}: unreadable index ({err})") from None
        if not (len(index.embedding) == len(index.video) == len(index.start) == len(index.end)):
            raise SearchIndexError(f"{meta_path}: its arrays disagree in length")
        if len(index.video) and (np.any(np.diff(index.video) < 0) or index.video.max() >= len(index.videos)):
            raise SearchIndexError(f"{meta_path}: its windows are not grouped by video")
        return index

    # --------------------------------------------------------------------------------------- building
    def check_model(self, meta: Metadata, where: str, use: str = "query with that model, or build a new index") -> None:
        """Raise SearchIndexError when `meta` (a model's metadata) is not the model this index was built with."""
        if not meta.fingerprint:
            raise SearchIndexError(f"{where} was exported before models carried a fingerprint: re-export it")
        if meta.fingerprint != self.fingerprint:
            raise SearchIndexError(
                f"this index was built with another model (fingerprint {self.fingerprint}, "
                f"{self.model or 'path not recorded'}); {where} has {meta.fingerprint}: {use}"
            )

    def prune(self) -> list[str]:
        """Drop the videos whose file is gone; returns their paths."""
        gone = [v.path for v in self.videos if not Path(v.path).is_file()]
        for path in gone:
            self.remove(path)
        return gone

    def up_to_date(self, path: Path) -> bool:
        """Whether `path` is indexed and unchanged since."""
        st = path.stat()
        return any(v.path == str(path) and v.size == st.st_size and v.mtime_ns == st.st_mtime_ns for v in self.videos)

    def replace(self, path: Path, duration_s: float, embedding: np.ndarray, start: np.ndarray, end: np.ndarray) -> None:
        """Add (or replace) the windows of one video."""
        self.remove(str(path))
        st = path.stat()
        if self.embedding.size == 0:
            self.embedding = np.zeros((0, embedding.shape[1]), np.float32)
        self.videos.append(IndexedVideo(str(path), st.st_size, st.st_mtime_ns, float(duration_s), len(embedding)))
        self.embedding = np.concatenate([self.embedding, embedding.astype(np.float32)])
        self.video = np.concatenate([self.video, np.full(len(embedding), len(self.videos) - 1, np.int32)])
        self.start = np.concatenate([self.start, start])
        self.end = np.concatenate([self.end, end])

    def remove(self, path: str) -> None:
        """Drop a video and its windows (no-op when absent)."""
        gone = [i for i, v in enumerate(self.videos) if v.path == path]
        if not gone:
            return
        keep = self.video != gone[0]
        self.embedding, self.start, self.end = self.embedding[keep], self.start[keep], self.end[keep]
        self.video = self.video[keep] - (self.video[keep] > gone[0])
        del self.videos[gone[0]]

    # ---------------------------------------------------------------------------------------- search
    def search(
        self, query: np.ndarray, top: int = 10, moments: int = 3, scores: np.ndarray | None = None
    ) -> list[dict]:
        """Rank videos for one unit query embedding (E,): a video scores by its best window. Returns up to
        `top` dicts {video, score, moments: [{start, end, score}, ...]} with at most `moments` non-overlapping
        windows per video, best first. `scores` (W,) replaces the exact window scores (e.g. from an ANN
        search, -inf for windows it did not return)."""
        if len(self.embedding) == 0:
            return []
        sim = self.embedding @ query.astype(np.float32) if scores is None else scores
        starts = np.flatnonzero(np.r_[True, self.video[1:] != self.video[:-1]])  # windows are grouped by video
        ends = np.r_[starts[1:], len(self.video)]
        best = np.maximum.reduceat(sim, starts)
        order = np.argsort(-best, kind="stable")
        out = []
        for k in order[:top]:
            if not np.isfinite(best[k]):
                break
            rows = starts[k] + np.argsort(-sim[starts[k] : ends[k]], kind="stable")
            chosen: list[int] = []
            for r in rows:  # greedy: the best windows that do not overlap a chosen one
                if not np.isfinite(sim[r]) or len(chosen) == moments:
                    break
                if all(self.end[r] <= self.start[c] or self.start[r] >= self.end[c] for c in chosen):
                    chosen.append(int(r))
            out.append(
                {
                    "video": self.videos[self.video[starts[k]]].path,
                    "score": round(float(best[k]), 4),
                    "moments": [
                        {
                            "start": round(float(self.start[r]), 3),
                            "end": round(float(self.end[r]), 3),
                            "score": round(float(sim[r]), 4),
                        }
                        for r in chosen
                    ],
                }
            )
        return out


def default_stride(span_s: float) -> float:
    """Seconds between window starts when none is given: 1 s, or half a window for windows shorter than 2 s
    (so consecutive windows overlap and no moment falls between two), at least 0.1 s."""
    return max(0.1, min(1.0, span_s / 2))


def video_windows(
    run: Callable[[np.ndarray], np.ndarray],
    frames: Iterable[tuple[float, np.ndarray]],
    buffer: ClipBuffer,
    batch: int = 8,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(t, RGB frame) -> batches of (embeddings (b, E), window end times (b,)): a window every
    `buffer.every` seconds, and a last one ending at the last frame so the end of the video is covered,
    embedded `batch` at a time by `run` (uint8 clips (b, T, S, S, 3) -> (b, E))."""
    clips, ends = [], []
    last_end = None
    for t, frame in frames:
        buffer.push(frame, t)
        if buffer.due():
            clip, last_end = buffer.clip()
            clips.append(clip)
            ends.append(last_end)
            if len(clips) == batch:
                yield run(np.stack(clips)), np.asarray(ends)
                clips, ends = [], []
    if buffer.ready and last_end is not None and buffer.latest - last_end > 1e-6:
        clip, end = buffer.clip()
        clips.append(clip)
        ends.append(end)
    if clips:
        yield run(np.stack(clips)), np.asarray(ends)


def embed_video(
    backend, path: Path, windows: WindowCfg, batch: int = 8, stop=None, progress: Callable[[float], None] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Window embeddings of one video file through the frame source -> (embeddings (W, E), start (W,), end (W,),
    duration in seconds). A video shorter than one window gives one clip over its whole length (the test
    view of the metadata's sampling). `progress(t)` gets the time reached; `stop` (a threading.Event) ends early
    with what was embedded. Raises RecognizeError for an unreadable file."""
    from .errors import RecognizeError
    from .frames import frames_from

    meta = backend.metadata
    buffer = ClipBuffer(meta.frames, windows.frame_interval_s, windows.stride_s, meta.preprocess)

    def run(clips: np.ndarray) -> np.ndarray:
        return backend.run(clips)["video_embedding"]

    def frames():
        for t, frame in frames_from(str(path)):
            if stop is not None and stop.is_set():
                return
            if progress is not None:
                progress(t)
            yield t, frame

    parts, ends = [], []
    for emb, end in video_windows(run, frames(), buffer, batch):
        parts.append(emb)
        ends.append(end)
    duration = float(buffer.latest or 0.0)
    if parts:
        emb, end = np.concatenate(parts), np.concatenate(ends)
        return _unit(emb), np.maximum(end - windows.span_s, 0.0), end, duration
    if stop is not None and stop.is_set():
        return np.zeros((0, 0), np.float32), np.zeros(0), np.zeros(0), duration
    from dataclasses import replace

    from stop_train.video.decode import VideoReadError, probe_exact
    from stop_train.video.views import eval_views

    try:
        info = probe_exact(path)
        clip = eval_views(
            path, info, replace(meta.sampling, sampler="segments", test_clips=1, test_crops=1), meta.preprocess
        )
    except (VideoReadError, OSError) as err:
        raise RecognizeError(f"cannot read {path}: {err}") from None
    return _unit(run(np.ascontiguousarray(clip[:1]))), np.zeros(1), np.array([info.duration_s]), info.duration_s


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def fmt_time(t: float) -> str:
    """Seconds -> m:ss.s"""
    return f"{int(t // 60)}:{t % 60:04.1f}"


# ------------------------------------------------------------------------------------- approximate search
def ann_path(path: str | Path) -> Path:
    """INDEX.faiss beside INDEX.json."""
    return SearchIndex.paths(path)[0].with_suffix(".faiss")


def _faiss():
    try:
        import faiss
    except ImportError:
        raise SearchIndexError(
            "approximate search needs FAISS: pip install 'stop-toolkit[search]' (faiss-cpu), or use exact search"
        ) from None
    return faiss


def build_ann(index: SearchIndex, path: str | Path, neighbours: int = 32) -> Path:
    """Write an HNSW graph (FAISS `IndexHNSWFlat`, inner product) of the index's windows beside it."""
    faiss = _faiss()
    graph = faiss.IndexHNSWFlat(index.embedding.shape[1], neighbours, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = 80
    graph.add(np.ascontiguousarray(index.embedding, dtype=np.float32))
    out = ann_path(path)
    faiss.write_index(graph, str(out))
    return out


def load_ann(path: str | Path, index: SearchIndex):
    """The HNSW graph beside the index. Raises SearchIndexError when it is missing or out of date."""
    faiss = _faiss()
    graph = faiss.read_index(str(ann_path(path)))
    if graph.ntotal != len(index.embedding):
        raise SearchIndexError(
            f"{ann_path(path)} is out of date ({graph.ntotal} windows, the index {len(index.embedding)}): "
            "rebuild it with stop-search index --ann"
        )
    return graph


def ann_scores(graph, index: SearchIndex, query: np.ndarray, windows: int) -> np.ndarray:
    """(W,) window scores from the HNSW graph (`load_ann`): the `windows` nearest windows (efSearch = windows) get
    their inner product, the rest -inf (for `SearchIndex.search(scores=...)`)."""
    graph.hnsw.efSearch = max(16, windows)
    sims, rows = graph.search(query.astype(np.float32)[None], min(windows, graph.ntotal))
    scores = np.full(len(index.embedding), -np.inf)
    found = rows[0] >= 0
    scores[rows[0][found]] = sims[0][found]
    return scores
