"""Video files as ffmpeg shows them (torch-free, PyAV): frames by index (clips) and frames in order (players).

Frame *i* of a file is the *i*-th frame of ``ffmpeg -i FILE -fps_mode passthrough -f rawvideo -pix_fmt rgb24 -``
(the numbering `index.probe` builds), with square pixels (the sample aspect ratio applied by libavfilter's
``scale``, `libav.square_size`) and turned to display orientation (`orientation.py`), as uint8 RGB. Its time
is the index's time for it.

`read_frames` (clips) and `frames_starting_at` (players) seek to the key frame before a wanted frame (or the
one before that, where MPEG-TS lands late, or the key frame decodes damaged) and identify every decoded
frame by its timestamp; where a seek lands wrong, yields nothing or the index does not know frames by their
timestamps, they decode from the start and count. A frame is never substituted: an index that does not
decode raises. Where a file indexed from its packets turns out not to decode as they said, `read_frames`
indexes it by decoding and reads again.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

from .index import DEFAULT_FPS, PROBE_VERSION, VideoInfo, index_by_decoding, probe, probe_exact
from .libav import (
    RGBConverter,
    VideoReadError,
    check_file,
    decoded,
    open_video,
    orientation_of,
    run_after_seek,
    sample_aspect_ratio,
)
from .orientation import Orientation

log = logging.getLogger(__name__)


def read_frames(path: str | os.PathLike, indices: Sequence[int], info: VideoInfo | None = None) -> np.ndarray:
    """Frames `indices` (any order, repeats allowed) as uint8 RGB (len(indices), H, W, 3), display orientation.

    `info` defaults to `probe_exact(path)`. Raises ValueError for indices outside [0, info.frames) and
    VideoReadError when a frame does not decode.
    """
    path = check_file(path)
    wanted = np.asarray(indices, dtype=np.int64)
    info = info or probe_exact(path)
    if wanted.size == 0 or wanted.min() < 0 or wanted.max() >= info.frames:
        raise ValueError(f"frame indices must lie in [0, {info.frames}) and be non-empty, got {list(indices)}")
    need = sorted(set(wanted.tolist()))
    got = _read(path, need, info)
    missing = [i for i in need if i not in got]
    if missing and info.method == "packets":
        redone = index_by_decoding(path, f"frame {missing[0]} did not decode where its packets said")
        if redone.frames != info.frames or not np.allclose(redone.times(), info.times(), atol=1e-3):
            raise VideoReadError(
                f"the file decodes to {redone.frames} frames, not the {info.frames} its packets "
                "promise (the decoder rejects some): index it by decoding (stop-train --probe "
                "exact, the default; or the file changed since it was probed)"
            )
        got.update(_read(path, missing, redone))
        missing = [i for i in need if i not in got]
    if missing:
        raise VideoReadError(f"frames {missing[:5]} of {info.frames} do not decode (truncated or corrupt file)")
    return np.stack([got[i] for i in wanted.tolist()])


def frames_starting_at(path: str | os.PathLike, info: VideoInfo, start: int = 0) -> Iterator[tuple[int, np.ndarray]]:
    """(index, RGB uint8 frame, square pixels, display orientation) for frames `start`, `start` + 1, ... to the end.

    From frame 0 the file is decoded in order and frames are counted (the definition of frame *i*), or, for an
    index built from the packets, known by their timestamps (a packet the decoder rejects leaves its index out,
    and every other frame keeps its time: what the live reader needs). From a later frame it seeks to the key frame before it (or the one before that, where a seek lands late, as in
    MPEG-TS) and checks every frame's timestamp; where that fails, or the index does not know frames by their
    timestamps, it decodes from the start and counts. Used by players (`source.FileSource.seek`).
    """
    orient, rgb = None, RGBConverter(Fraction(*info.sar))
    for index, frame in _frames_from(Path(path), info, start):
        orient = orient or orientation_of(frame)
        yield index, orient.apply(rgb(frame))


def iter_frames(container, stream) -> Iterator[tuple[int | None, np.ndarray]]:
    """(pts, RGB uint8 frame, square pixels, display orientation) for every frame the decoder outputs, in order.

    Packets the decoder rejects are skipped (logged), as ffmpeg does; the decoder is flushed at the end.
    """
    orient, rgb = None, None
    for frame in decoded(container, stream):
        orient = orient or orientation_of(frame)
        rgb = rgb or RGBConverter(sample_aspect_ratio(stream))
        yield frame.pts, orient.apply(rgb(frame))


# ----------------------------------------------------------------------------------------------- internals
def _frames_from(path: Path, info: VideoInfo, start: int):
    """(index, decoded frame) for frames `start` ... end; see `frames_starting_at`."""
    keys, ticks = info.key_indices(), info.frame_pts()
    while 0 < start < info.frames and info.seekable:
        k = int(np.searchsorted(keys, start, side="right")) - 1
        reached = None
        for key in keys[max(k - 1, 0) : k + 1][::-1]:
            if key == 0:
                break  # the first key frame: decoding from the start is the definition
            container, stream = open_video(path)
            with container:
                run = run_after_seek(container, stream, int(round(ticks[key])), info.index_of)
                first = next(run, None)
                if first is None or first[0] > start:
                    continue  # landed after the wanted frame, or on a damaged key frame: try the one before
                for index, frame in itertools.chain([first], run):
                    if index >= start:
                        reached = index
                        yield index, frame
            break
        if reached is None:
            log.debug("%s: no seek reached frame %d; decoding from the start", path, start)
            break
        if reached + 1 >= info.frames:
            return
        start = reached + 1  # the run stopped at a frame it could not place: seek on from there
    by_pts = info.method == "packets"  # a packets index numbers the frames it promises, whether or not they decode
    container, stream = open_video(path)
    with container:
        for count, frame in enumerate(decoded(container, stream)):
            index = info.index_of(frame.pts) if by_pts else count
            if index is None:
                log.debug("%s: a frame at pts %s is not in the index; left out", path, frame.pts)
            elif index >= start:
                yield index, frame


def _read(path: Path, need: list[int], info: VideoInfo) -> dict[int, np.ndarray]:
    """Frames `need` (sorted): for each run of them, from the key frame before its first (`_frames_from`),
    decoding on while no key frame lies between one wanted frame and the next; only wanted frames are
    converted to RGB. Frames the file does not yield are left out."""
    keys = info.key_indices()
    out: dict[int, np.ndarray] = {}
    orient: Orientation | None = None
    rgb, todo = RGBConverter(Fraction(*info.sar)), list(need)
    while todo:
        run = _frames_from(path, info, todo[0])
        for index, frame in run:
            if index < todo[0]:
                continue
            while todo and todo[0] < index:  # skipped by the decoder: left out, reported by the caller
                todo.pop(0)
            if not todo:
                break
            if index < todo[0]:
                continue
            orient = orient or orientation_of(frame)
            out[index] = orient.apply(rgb(frame))
            todo.pop(0)
            if not todo or keys[np.searchsorted(keys, todo[0], side="right") - 1] > index:
                break  # a key frame lies between here and the next wanted frame: seek to it
        else:
            break  # the file ended
        run.close()
    return out


__all__ = [
    "DEFAULT_FPS",
    "Orientation",
    "PROBE_VERSION",
    "RGBConverter",
    "VideoInfo",
    "VideoReadError",
    "check_file",
    "frames_starting_at",
    "iter_frames",
    "open_video",
    "orientation_of",
    "probe",
    "probe_exact",
    "read_frames",
]
