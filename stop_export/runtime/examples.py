"""Example clips for label banks (torch-free): what a bank keeps of one clip of a file's time range, or of frames
recorded from a camera, under the metadata's eval sampling."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .bank_head import unit
from .errors import BankError


class ClipEmbedding(NamedTuple):
    """What a bank keeps of one example clip."""

    embedding: np.ndarray  # (E,) unit video embedding
    frames: np.ndarray | None  # (T, E) frame embeddings; None from a model exported without that output


def embed_views(run: Callable[[np.ndarray], dict[str, np.ndarray]], views: np.ndarray) -> ClipEmbedding:
    """One example from its views (V, T, S, S, 3) through the graph `run`: the unit mean of the views' unit video
    embeddings, and the mean of their frame embeddings."""
    out = run(np.ascontiguousarray(views))
    frames = out.get("frame_embedding")
    return ClipEmbedding(
        unit(unit(out["video_embedding"]).mean(axis=0)),
        None if frames is None else np.asarray(frames, np.float32).mean(axis=0),
    )


def min_example_s(sampling) -> float:
    """Seconds an example must last to fill one clip: (T - 1) x frame interval with the interval sampler, else 0
    (the segments sampler spreads T frames over any range that holds them)."""
    return (sampling.frames - 1) * sampling.frame_interval_s if sampling.sampler == "interval" else 0.0


def check_clip_length(times: np.ndarray, sampling, what: str) -> None:
    """Raises BankError when frames at `times` (seconds, increasing) cannot fill one clip of the model, as live
    recognition needs one: fewer than T distinct frames, or, with the interval sampler, shorter than the clip's span
    (T - 1) x frame interval. A still image or a clip of a few frames would teach a class with repeated frames."""
    t = sampling.frames
    if len(times) < t:
        raise BankError(
            f"{what} holds {len(times)} frame{'' if len(times) == 1 else 's'}; one example needs at least "
            f"{t} (the model's clip length): give a longer clip or range"
        )
    span = min_example_s(sampling)
    if times[-1] - times[0] < span - 1e-6:
        raise BankError(
            f"{what} lasts {times[-1] - times[0]:.2f} s; one example needs at least {span:.2f} s (the "
            f"model's clip: {t} frames {sampling.frame_interval_s:g} s apart): give a longer clip or range"
        )


def embed_example(
    backend, path: str | Path, start_s: float | None = None, end_s: float | None = None, info=None
) -> ClipEmbedding:
    """The example (`ClipEmbedding`) of a file, or of its frames in [`start_s`, `end_s`] seconds: the metadata's eval
    views (`eval_views`), through the model. Raises BankError for a range without enough frames for one clip
    (`check_clip_length`), RecognizeError for an unreadable file. `info`: its `probe_exact` index, where known."""
    from stop_train.video.decode import VideoReadError, probe_exact
    from stop_train.video.views import eval_views, frames_in_range

    from .errors import RecognizeError

    meta = backend.metadata
    try:
        info = info or probe_exact(path)
        times = info.times()
        what = (
            f"{path}"
            if start_s is None and end_s is None
            else f"{path}@{start_s or 0:g}-{'' if end_s is None else f'{end_s:g}'}"
        )
        check_clip_length(times[frames_in_range(times, start_s, end_s)], meta.sampling, what)
        views = eval_views(path, info, meta.sampling, meta.preprocess, start_s, end_s)
    except (VideoReadError, OSError) as err:
        raise RecognizeError(f"cannot read {path}: {err}") from None
    except BankError:
        raise
    except ValueError as err:
        raise BankError(f"{path}: {err}") from None
    return embed_views(backend.run, views)


def embed_recording(backend, times: np.ndarray, frames: list[np.ndarray]) -> ClipEmbedding:
    """The example (`ClipEmbedding`) of frames recorded from a camera (RGB uint8 (H, W, 3) at `times` seconds).
    Raises BankError when they cannot fill one clip (`check_clip_length`)."""
    from stop_train.video.views import sampled_views

    if not frames:
        raise BankError("nothing was recorded")
    meta = backend.metadata
    check_clip_length(np.asarray(times), meta.sampling, "the recording")
    views = sampled_views(
        np.asarray(times), lambda idx: np.stack([frames[i] for i in idx]), meta.sampling, meta.preprocess
    )
    return embed_views(backend.run, views)


def now() -> str:
    """Local time, ISO 8601 (when an example was added)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S")
