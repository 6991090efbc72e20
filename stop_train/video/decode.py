"""Video files as ffmpeg shows them (torch-free, PyAV): probing, frames by index, frames in order.

Frame *i* of a file is the *i*-th frame of ``ffmpeg -i FILE -fps_mode passthrough -f rawvideo -pix_fmt rgb24 -``:
every frame the decoder outputs, in presentation order (edit lists and discarded packets applied by libav, as
in ffmpeg), turned to display orientation (`orientation.py`), as uint8 RGB. Its time is its presentation
timestamp relative to the first frame.

`probe` demuxes the packets once (no full decode) and keeps what maps an index to a real frame: the sorted
presentation timestamps (stored per frame only where the rate is not constant) and the key frames.
`read_frames` (clips) and `frames_starting_at` (players) seek to the key frame before a wanted frame (or the
one before that, where MPEG-TS lands late) and identify every decoded frame by its timestamp; where a seek
lands wrong, yields nothing or the file has no usable timestamps, they decode from the start and count. A
frame is never substituted: an index that does not decode raises. RGB comes from libavfilter (`RGBConverter`).
"""
from __future__ import annotations

import itertools
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from .orientation import Orientation, OrientationError, orientation_of as _orientation_of

log = logging.getLogger(__name__)

PROBE_VERSION = 2  # bump when VideoInfo changes meaning: cached probes of older versions are redone
DEFAULT_FPS = 25.0  # only for files whose frames carry no timestamps at all
_DEFAULT, _ATTACHED_PIC = 0x1, 0x400  # AV_DISPOSITION_* flags
_JITTER = 0.02  # a rate is constant when every timestamp lies within 2 % of a frame (or 1 tick) of a line


class VideoReadError(RuntimeError):
    """A video that cannot be used; the message is the reason (for the skipped-videos list)."""


@dataclass(frozen=True)
class VideoInfo:
    """What `probe` learns about a video file.

    Timestamps are in units of `time_base` seconds. A constant-rate file stores only `start_pts` and
    `step` (frame *i* at ``start_pts + i * step``); a variable-rate one stores every frame's `pts`.
    `step == 0` and no `pts`: the file has no usable timestamps and is read by counting from the start.
    """

    frames: int  # frames the file holds (counted from its packets, not read from the header)
    fps: float  # frames per second: 1 / median frame duration
    width: int  # display orientation
    height: int
    time_base: tuple[int, int] = (1, 1)  # (num, den) of the stream's time base
    start_pts: int = 0  # timestamp of frame 0
    step: float = 0.0  # constant-rate frame duration in time_base units (0: see pts)
    pts: tuple[int, ...] | None = None  # every frame's timestamp, sorted, for variable-rate files
    keyframes: tuple[int, ...] | None = (0,)  # frame indices of the key frames (None: every frame, all-intra)

    @property
    def timed(self) -> bool:
        return self.step > 0 or self.pts is not None

    def frame_pts(self) -> np.ndarray:
        """(frames,) float64 timestamps in time_base units."""
        if self.pts is not None:
            return np.asarray(self.pts, dtype=np.float64)
        step = self.step if self.step > 0 else self.time_base[1] / self.time_base[0] / self.fps
        return self.start_pts + step * np.arange(self.frames, dtype=np.float64)

    def times(self) -> np.ndarray:
        """(frames,) seconds of each frame after frame 0."""
        ticks = self.frame_pts()
        return (ticks - ticks[0]) * self.time_base[0] / self.time_base[1]

    @property
    def duration_s(self) -> float:
        """Time from the first frame to the end of the last (one median frame duration after its start)."""
        return float(self.times()[-1]) + 1.0 / self.fps

    def index_of(self, pts: int | None) -> int | None:
        """The index of the frame with timestamp `pts`, or None when no frame has it."""
        if pts is None or not self.timed:
            return None
        if self.pts is None:
            i = round((pts - self.start_pts) / self.step)
            ok = 0 <= i < self.frames and abs(pts - self.start_pts - i * self.step) <= max(1.0, _JITTER * self.step)
            return i if ok else None
        i = int(np.searchsorted(self.pts, pts))
        return i if i < self.frames and self.pts[i] == pts else None

    def index_at(self, seconds: float) -> int:
        """The first frame shown at or after `seconds` (the last frame for times past the end)."""
        return int(min(np.searchsorted(self.times(), seconds - 1e-6, side="left"), self.frames - 1))

    def key_indices(self) -> np.ndarray:
        """Indices of the key frames (the seek targets), sorted."""
        return np.arange(self.frames) if self.keyframes is None else np.asarray(self.keyframes, dtype=np.int64)

    def to_dict(self) -> dict:
        return {"version": PROBE_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "VideoInfo":
        """Raises ValueError for a dict written by another probe version."""
        if d.get("version") != PROBE_VERSION:
            raise ValueError(f"probe version {d.get('version')} is not {PROBE_VERSION}")
        fields = {k: v for k, v in d.items() if k != "version"}
        for key in ("time_base", "pts", "keyframes"):
            if fields.get(key) is not None:
                fields[key] = tuple(fields[key])
        return cls(**fields)


def check_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise VideoReadError("file not found")
    if path.stat().st_size == 0:
        raise VideoReadError("zero-byte file")
    return path


def open_video(path: str | os.PathLike, timeout_s: float | None = None):
    """(container, video stream) of a file or URL: the stream ffmpeg's CLI would pick (`best_video_stream`).

    `timeout_s` bounds opening and each read (streams). Raises VideoReadError with the reason, and
    KeyboardInterrupt when Ctrl-C arrives while FFmpeg waits.
    """
    import av

    start = time.monotonic()
    try:
        container = av.open(str(path), timeout=timeout_s) if timeout_s else av.open(str(path))
    except av.ExitError:  # FFmpeg's interrupt callback: our timeout, or a signal it swallowed
        if timeout_s and time.monotonic() - start >= timeout_s - 0.05:
            raise VideoReadError(f"cannot open: no answer within {timeout_s:g} s") from None
        raise KeyboardInterrupt from None
    except (av.FFmpegError, OSError, ValueError) as err:
        if timeout_s and time.monotonic() - start >= timeout_s - 0.05:  # RTSP reports the interrupt as bad data
            raise VideoReadError(f"cannot open: no answer within {timeout_s:g} s") from None
        raise VideoReadError(f"cannot open: {_reason(err)}") from None
    stream = best_video_stream(container)
    if stream is None:
        container.close()
        raise VideoReadError("no video stream")
    stream.thread_type = "AUTO"
    return container, stream


def best_video_stream(container):
    """The video stream ffmpeg's CLI maps by default (fftools `map_auto_video`): the largest picture, a
    stream flagged default counted 5,000,000 pixels larger, attached pictures (cover art) last; the first
    stream wins ties. None when there is no video stream."""
    best, best_score = None, -1
    for stream in container.streams.video:
        flags = int(getattr(stream.disposition, "value", stream.disposition))  # an IntFlag, or av<15 enum
        score = stream.codec_context.width * stream.codec_context.height + 5_000_000 * bool(flags & _DEFAULT)
        if flags & _ATTACHED_PIC:
            score = 1
        if score > best_score:
            best, best_score = stream, score
    return best


def probe(path: str | os.PathLike) -> VideoInfo:
    """Count the frames of a video file and map each index to its timestamp, by demuxing its packets once
    and decoding only its first frame (for the display size). Raises VideoReadError with the reason."""
    path = check_file(path)
    container, stream = open_video(path)
    with container:
        first = _first_frame(container, stream)
    container, stream = open_video(path)
    with container:
        pts, keys, untimed, last_dts, discontinuous = [], [], 0, None, False
        try:
            for packet in container.demux(stream):
                if packet.size == 0 or packet.is_discard:
                    continue
                if packet.dts is not None:  # decoding time going back: a timestamp discontinuity (joined TS)
                    discontinuous |= last_dts is not None and packet.dts < last_dts
                    last_dts = packet.dts
                if packet.pts is None:
                    untimed += 1
                else:
                    pts.append(packet.pts)
                    if packet.is_keyframe:
                        keys.append(packet.pts)
        except Exception as err:  # noqa: BLE001 - a truncated file: keep what was demuxed, as ffmpeg does
            log.info("%s: demuxing stopped early (%s)", path, _reason(err))
        count = len(pts) + untimed
        if count == 0:
            raise VideoReadError("no frames")
        tb = stream.time_base
        time_base = (tb.numerator, tb.denominator) if tb else (1, 1)
        header_fps = _rate(stream)
    orient = orientation_of(first)
    height, width = orient.display_shape(first.height, first.width)
    usable = untimed == 0 and not discontinuous  # else: read by counting, times from the rate
    return _timing(count, pts if usable else [], keys, time_base, width, height, header_fps)


def read_frames(path: str | os.PathLike, indices: Sequence[int], info: VideoInfo | None = None) -> np.ndarray:
    """Frames `indices` (any order, repeats allowed) as uint8 RGB (len(indices), H, W, 3), display orientation.

    Raises ValueError for indices outside [0, info.frames) and VideoReadError when a frame does not decode.
    """
    path = check_file(path)
    wanted = np.asarray(indices, dtype=np.int64)
    info = info or probe(path)
    if wanted.size == 0 or wanted.min() < 0 or wanted.max() >= info.frames:
        raise ValueError(f"frame indices must lie in [0, {info.frames}) and be non-empty, got {list(indices)}")
    need = sorted(set(wanted.tolist()))
    got = _read_seeking(path, need, info) if info.timed else _read_counting(path, need)
    missing = [i for i in need if i not in got]
    if missing:
        raise VideoReadError(f"frames {missing[:5]} of {info.frames} do not decode (truncated or corrupt file)")
    return np.stack([got[i] for i in wanted.tolist()])


def frames_starting_at(path: str | os.PathLike, info: VideoInfo, start: int = 0) -> Iterator[tuple[int, np.ndarray]]:
    """(index, RGB uint8 frame in display orientation) for frames `start`, `start` + 1, ... to the end of the file.

    From frame 0 the file is decoded in order and frames are counted (the definition of frame *i*). From a
    later frame it seeks to the key frame before it (or the one before that, where a seek lands late, as in
    MPEG-TS) and checks every frame's timestamp; where that fails, or the file has no usable timestamps, it
    decodes from the start and counts. Used by players (`source.FileSource.seek`).
    """
    orient, rgb = None, RGBConverter()
    for index, frame in _frames_from(path, info, start):
        orient = orient or orientation_of(frame)
        yield index, orient.apply(rgb(frame))


def _frames_from(path: Path, info: VideoInfo, start: int):
    """(index, decoded frame) for frames `start` ... end; see `frames_starting_at`."""
    keys, ticks = info.key_indices(), info.frame_pts()
    while 0 < start < info.frames and info.timed:
        k = int(np.searchsorted(keys, start, side="right")) - 1
        reached = None
        for key in keys[max(k - 1, 0): k + 1][::-1]:
            container, stream = open_video(path)
            with container:
                run = _run_after_seek(container, stream, int(round(ticks[key])), info)
                first = next(run, None)
                if first is None or first[0] > start:
                    continue  # landed after the wanted frame: try the key frame before
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
    container, stream = open_video(path)
    with container:
        for index, frame in enumerate(_decoded(container, stream)):
            if index >= start:
                yield index, frame


def iter_frames(container, stream) -> Iterator[tuple[int | None, np.ndarray]]:
    """(pts, RGB uint8 frame in display orientation) for every frame the decoder outputs, in order.

    Packets the decoder rejects are skipped (logged), as ffmpeg does; the decoder is flushed at the end.
    """
    orient, rgb = None, RGBConverter()
    for frame in _decoded(container, stream):
        orient = orient or orientation_of(frame)
        yield frame.pts, orient.apply(rgb(frame))


def orientation_of(frame) -> Orientation:
    """The display Orientation of a decoded frame; raises VideoReadError for angles ffmpeg would rotate freely."""
    try:
        return _orientation_of(frame)
    except OrientationError as err:
        raise VideoReadError(str(err)) from None


class RGBConverter:
    """Decoded frames -> uint8 RGB (H, W, 3), stored orientation, converted by libavfilter as ffmpeg's CLI
    converts them (a `format=rgb24` filter graph: swscale with the filter graph's settings). PyAV's own
    `reformat` differs from it on 10-bit input by up to ~120 levels; this is bit-equal to ffmpeg on every
    pixel format tested. The graph is rebuilt when the frames' format, size or colour properties change."""

    def __init__(self):
        self._key = None
        self._graph = None

    def __call__(self, frame) -> np.ndarray:
        key = (frame.format.name, frame.width, frame.height, int(frame.colorspace), int(frame.color_range))
        if key != self._key:
            self._graph, self._key = _rgb_graph(frame), key
        self._graph.push(frame)
        return self._graph.pull().to_ndarray()


def _rgb_graph(frame):
    import av

    graph = av.filter.Graph()
    args = {"video_size": f"{frame.width}x{frame.height}", "pix_fmt": str(frame.format.name),
            "time_base": str(frame.time_base or "1/1000"), "pixel_aspect": "1/1"}
    colour = {"colorspace": str(int(frame.colorspace)), "range": str(int(frame.color_range))}
    try:
        source = graph.add("buffer", **args, **colour)
    except (av.FFmpegError, ValueError):  # an FFmpeg whose buffer source has no colour options
        graph = av.filter.Graph()
        source = graph.add("buffer", **args)
    convert, sink = graph.add("format", "rgb24"), graph.add("buffersink")
    source.link_to(convert)
    convert.link_to(sink)
    graph.configure()
    return graph


# ----------------------------------------------------------------------------------------------- internals
def _reason(err: Exception) -> str:
    return getattr(err, "strerror", None) or str(err)


def _rate(stream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate is not None and float(rate) > 0:
            return float(rate)
    return DEFAULT_FPS


def _first_frame(container, stream):
    for frame in _decoded(container, stream):
        return frame
    raise VideoReadError("no decodable frames")


def _timing(count, pts, keys, time_base, width, height, header_fps) -> VideoInfo:
    """VideoInfo from the packets' timestamps (empty `pts`: none usable)."""
    ticks = np.sort(np.asarray(pts, dtype=np.int64))
    if len(ticks) != count or len(np.unique(ticks)) != count:  # missing or repeated stamps: count instead
        return VideoInfo(count, header_fps, width, height, time_base)
    seconds = time_base[0] / time_base[1]
    keyframes = tuple(int(i) for i in np.searchsorted(ticks, sorted(set(keys)))) or (0,)
    if len(keyframes) == count:  # all-intra (MJPEG): no list
        keyframes = None
    if count == 1:
        return VideoInfo(1, header_fps, width, height, time_base, int(ticks[0]), 1.0 / header_fps / seconds,
                         None, keyframes)
    step = (ticks[-1] - ticks[0]) / (count - 1)
    line = ticks[0] + step * np.arange(count)
    if np.abs(ticks - line).max() <= max(1.0, _JITTER * step):
        fps = float(1.0 / (step * seconds))
        return VideoInfo(count, fps, width, height, time_base, int(ticks[0]), float(step), None, keyframes)
    fps = float(1.0 / (np.median(np.diff(ticks)) * seconds))  # variable rate: the typical frame duration
    return VideoInfo(count, fps, width, height, time_base, int(ticks[0]), 0.0, tuple(ticks.tolist()), keyframes)


def _decoded(container, stream):
    """Decoded frames of `stream` from the container's current position; skips rejected packets."""
    import av

    try:
        for packet in container.demux(stream):
            try:
                yield from stream.decode(packet)
            except av.InvalidDataError as err:
                log.info("skipping a packet the decoder rejects (%s)", _reason(err))
    except av.FFmpegError as err:  # demuxing failed (truncated file): flush what is decoded
        log.info("demuxing stopped early (%s)", _reason(err))
    try:
        yield from stream.decode(None)
    except av.FFmpegError:
        pass


def _read_counting(path: Path, need: list[int]) -> dict[int, np.ndarray]:
    """Decode from the start, counting frames: the definition of frame *i*."""
    out: dict[int, np.ndarray] = {}
    if not need:
        return out
    wanted, last = set(need), need[-1]
    container, stream = open_video(path)
    with container:
        orient, rgb = None, RGBConverter()
        for index, frame in enumerate(_decoded(container, stream)):
            orient = orient or orientation_of(frame)
            if index in wanted:
                out[index] = orient.apply(rgb(frame))
            if index >= last:
                break
    return out


def _read_seeking(path: Path, need: list[int], info: VideoInfo) -> dict[int, np.ndarray]:
    """Frames `need` (sorted): for each run of them, from the key frame before its first (`_frames_from`),
    decoding on while no key frame lies between one wanted frame and the next; only wanted frames are
    converted to RGB."""
    keys = info.key_indices()
    out: dict[int, np.ndarray] = {}
    orient, rgb, todo = None, RGBConverter(), list(need)
    while todo:
        run = _frames_from(path, info, todo[0])
        for index, frame in run:
            if index < todo[0]:
                continue
            if index > todo[0]:  # cannot happen: `_frames_from` yields every frame in order
                raise VideoReadError(f"frame {todo[0]} was skipped by the decoder")
            orient = orient or orientation_of(frame)
            out[index] = orient.apply(rgb(frame))
            todo.pop(0)
            if not todo or keys[np.searchsorted(keys, todo[0], side="right") - 1] > index:
                break  # a key frame lies between here and the next wanted frame: seek to it
        else:
            break  # the file ended
        run.close()
    return out


def _run_after_seek(container, stream, target_pts: int, info: VideoInfo):
    """(index, decoded frame) of the frames that decode exactly as from the start after seeking to
    `target_pts`: from the first key frame reached onward, minus the pictures shown before it (open GOPs).
    Ends at the first frame whose timestamp is not one of the file's."""
    import av

    try:
        container.seek(target_pts, stream=stream, backward=True, any_frame=False)
    except av.FFmpegError as err:
        log.debug("seek failed (%s)", _reason(err))
        return
    stream.codec_context.flush_buffers()
    key_pts = None

    def packets():
        nonlocal key_pts
        for packet in container.demux(stream):
            if key_pts is None:
                if packet.size == 0 or not packet.is_keyframe or packet.pts is None:
                    continue  # landed between key frames: wait for the next one
                key_pts = packet.pts
            yield packet

    try:
        for packet in packets():
            for frame in stream.decode(packet if packet.size else None):
                if frame.pts is not None and frame.pts < key_pts:
                    continue
                index = info.index_of(frame.pts)
                if index is None:
                    return
                yield index, frame
    except av.FFmpegError as err:
        log.debug("decoding after a seek failed (%s)", _reason(err))


__all__ = ["DEFAULT_FPS", "Orientation", "frames_starting_at", "PROBE_VERSION", "VideoInfo", "VideoReadError", "check_file", "iter_frames",
           "open_video", "orientation_of", "probe", "read_frames", "RGBConverter"]
