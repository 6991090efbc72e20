"""Video decoding (torch-free): PyAV first, OpenCV as fallback.

Container metadata is not trusted: `probe` counts the video packets (PyAV) or grabs every frame
(OpenCV) once, and `read_frames` seeks to the frames a sampler asked for instead of decoding the
whole file. Frames come back as uint8 RGB (N, H, W, 3).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

log = logging.getLogger(__name__)

DEFAULT_FPS = 25.0  # used only when a container states no usable rate


class VideoReadError(RuntimeError):
    """A video that cannot be used; the message is the reason (for the skipped-videos list)."""


@dataclass(frozen=True)
class VideoInfo:
    frames: int  # frames actually present (counted, not read from the header)
    fps: float  # average frame rate
    width: int
    height: int


def probe(path: str | os.PathLike) -> VideoInfo:
    """Count the frames of a video and read its rate and size. Raises VideoReadError with the reason."""
    path = Path(path)
    _check_file(path)
    try:
        return _probe_av(path)
    except VideoReadError:
        raise
    except Exception as err:  # noqa: BLE001 - any PyAV failure: try OpenCV before giving up
        log.debug("PyAV could not probe %s (%s); trying OpenCV", path, err)
        return _probe_cv2(path, first_error=err)


def read_frames(path: str | os.PathLike, indices: Sequence[int], info: VideoInfo | None = None) -> np.ndarray:
    """Frames `indices` (any order, repeats allowed) as uint8 RGB (len(indices), H, W, 3).

    Indices past the last decodable frame repeat the last frame decoded (headers can over-count).
    """
    path = Path(path)
    _check_file(path)
    wanted = np.asarray(indices, dtype=np.int64)
    if wanted.size == 0 or wanted.min() < 0:
        raise ValueError(f"frame indices must be non-negative and non-empty, got {list(indices)}")
    if info is not None:
        wanted = np.minimum(wanted, info.frames - 1)
    try:
        frames = _read_av(path, sorted(set(wanted.tolist())), info)
    except VideoReadError:
        raise
    except Exception as err:  # noqa: BLE001
        log.debug("PyAV could not read %s (%s); trying OpenCV", path, err)
        frames = _read_cv2(path, sorted(set(wanted.tolist())))
    return np.stack([frames[i] for i in _fill_missing(frames, wanted)])


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise VideoReadError("file not found")
    if path.stat().st_size == 0:
        raise VideoReadError("zero-byte file")


def _fill_missing(frames: dict[int, np.ndarray], wanted: np.ndarray) -> list[int]:
    if not frames:
        raise VideoReadError("no decodable frames")
    have = sorted(frames)
    # a missing index takes the last decoded frame before it (or the first one)
    pos = np.searchsorted(have, wanted, side="right") - 1
    return [have[max(p, 0)] for p in pos]


# --------------------------------------------------------------------------------------------- PyAV
def _rate(stream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate is not None and float(rate) > 0:
            return float(rate)
    return DEFAULT_FPS


def _probe_av(path: Path) -> VideoInfo:
    import av

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise VideoReadError("no video stream")
        stream = container.streams.video[0]
        count = sum(1 for packet in container.demux(stream) if packet.size > 0)
        if count == 0:
            raise VideoReadError("no frames")
        return VideoInfo(count, _rate(stream), stream.codec_context.width, stream.codec_context.height)


def _read_av(path: Path, wanted: list[int], info: VideoInfo | None) -> dict[int, np.ndarray]:
    import av

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise VideoReadError("no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = info.fps if info else _rate(stream)
        tb = float(stream.time_base) if stream.time_base else None
        frames = _decode_from(container, stream, wanted, fps, tb, stream.start_time or 0)
    if frames is None:  # timestamps unusable or the seek overshot: decode from the start, counting
        with av.open(str(path)) as container:
            frames = _decode_counting(container, container.streams.video[0], wanted)
    return frames


def _decode_from(container, stream, wanted, fps, tb, start) -> dict[int, np.ndarray] | None:
    """Seek to the keyframe before the first wanted frame and decode up to the last; None if unusable."""
    if tb is None:
        return None
    if wanted[0] > 0:
        container.seek(int(start + wanted[0] / fps / tb), stream=stream, backward=True, any_frame=False)
    needed, last = set(wanted), wanted[-1]
    out: dict[int, np.ndarray] = {}
    first_seen, frame, index = None, None, -1
    for frame in container.decode(stream):
        if frame.pts is None:
            return None
        index = int(round((frame.pts - start) * tb * fps))
        if first_seen is None:
            first_seen = index
            if index > wanted[0]:
                return None  # landed after the first wanted frame
        if index in needed:
            out[index] = frame.to_ndarray(format="rgb24")
        if index >= last:
            break
    if frame is not None and index not in out:  # the file ended early: keep its last frame for repetition
        out[index] = frame.to_ndarray(format="rgb24")
    return out


def _decode_counting(container, stream, wanted) -> dict[int, np.ndarray]:
    needed, last = set(wanted), wanted[-1]
    out: dict[int, np.ndarray] = {}
    index, frame = -1, None
    for index, frame in enumerate(container.decode(stream)):
        if index in needed:
            out[index] = frame.to_ndarray(format="rgb24")
        if index >= last:
            break
    if frame is not None and index not in out:
        out[index] = frame.to_ndarray(format="rgb24")
    return out


# ------------------------------------------------------------------------------------------- OpenCV
def _probe_cv2(path: Path, first_error: Exception) -> VideoInfo:
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise VideoReadError(f"cannot open ({first_error})")
        count = 0
        while cap.grab():
            count += 1
        if count == 0:
            raise VideoReadError(f"no frames ({first_error})")
        fps = cap.get(cv2.CAP_PROP_FPS) or DEFAULT_FPS
        return VideoInfo(count, float(fps), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    finally:
        cap.release()


def _read_cv2(path: Path, wanted: list[int]) -> dict[int, np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise VideoReadError("cannot open")
        if wanted[0] > 0:
            cap.set(cv2.CAP_PROP_POS_FRAMES, wanted[0])
        index = int(cap.get(cv2.CAP_PROP_POS_FRAMES))
        needed, out = set(wanted), {}
        while index <= wanted[-1] and cap.grab():
            if index in needed or index == wanted[-1]:
                ok, bgr = cap.retrieve()
                if ok:
                    out[index] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            index += 1
        if not out and index > 0:  # ended before the first wanted frame: take the last one
            cap.set(cv2.CAP_PROP_POS_FRAMES, index - 1)
            ok, bgr = cap.read()
            if ok:
                out[index - 1] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        return out
    finally:
        cap.release()
