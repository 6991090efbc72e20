"""PyAV/FFmpeg plumbing shared by the index (`index.py`) and the readers (`decode.py`), torch-free: opening a
file or URL on the stream ffmpeg's CLI picks, decoding as ffmpeg does (rejected packets skipped, decoder
flushed), and turning decoded frames into what ffmpeg's CLI shows (`RGBConverter`).
"""

from __future__ import annotations

import logging
import os
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import StopError
from .orientation import Orientation, OrientationError
from .orientation import orientation_of as _orientation_of

log = logging.getLogger(__name__)

_DEFAULT, _ATTACHED_PIC = 0x1, 0x400  # AV_DISPOSITION_* flags


class VideoReadError(StopError, RuntimeError):
    """A video that cannot be used; the message is the reason (for the skipped-videos list)."""


def check_file(path: str | os.PathLike) -> Path:
    """`path` as a Path; raises VideoReadError for a missing or empty file."""
    path = Path(path)
    if not path.is_file():
        raise VideoReadError("not a regular file (a folder, pipe or device)" if path.exists() else "file not found")
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
        container = av.open(os.fspath(path), timeout=timeout_s) if timeout_s else av.open(os.fspath(path))
    except av.ExitError:  # FFmpeg's interrupt callback: our timeout, or a signal it swallowed
        if timeout_s and time.monotonic() - start >= timeout_s - 0.05:
            raise VideoReadError(f"cannot open: no answer within {timeout_s:g} s") from None
        raise KeyboardInterrupt from None
    except (av.FFmpegError, OSError, ValueError) as err:
        if timeout_s and time.monotonic() - start >= timeout_s - 0.05:  # RTSP reports the interrupt as bad data
            raise VideoReadError(f"cannot open: no answer within {timeout_s:g} s") from None
        raise VideoReadError(f"cannot open: {reason(err)}") from None
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


def sample_aspect_ratio(stream) -> Fraction:
    """The shape of one stored pixel (width / height) as ffmpeg guesses it (`av_guess_sample_aspect_ratio`):
    the container's where it gives one, else the bitstream's (known after the first decoded frame), else 1."""
    for value in (stream.sample_aspect_ratio, stream.codec_context.sample_aspect_ratio):
        if value is not None and value > 0:
            return Fraction(value)
    return Fraction(1)


def square_size(width: int, height: int, sar: Fraction) -> tuple[int, int]:
    """(width, height) of a stored picture shown with square pixels: the side the pixel shape stretches grows
    (a DVD's 720x480 at 32:27 shows as 853x480; 1:2 pixels double the height), the other is kept."""
    if sar > 1:
        return max(1, round(width * sar)), height
    if sar < 1:
        return width, max(1, round(height / sar))
    return width, height


def decoded(container, stream):
    """Decoded frames of `stream` from the container's current position; skips rejected packets."""
    import av

    try:
        for packet in container.demux(stream):
            try:
                yield from stream.decode(packet)
            except av.InvalidDataError as err:
                log.info("%s: skipping a packet the decoder rejects (%s)", container.name, reason(err))
    except av.FFmpegError as err:  # demuxing failed (truncated file): flush what is decoded
        log.info("demuxing stopped early (%s)", reason(err))
    try:
        yield from stream.decode(None)
    except av.FFmpegError:
        pass


def orientation_of(frame) -> Orientation:
    """The display Orientation of a decoded frame; raises VideoReadError for angles ffmpeg would rotate freely."""
    try:
        return _orientation_of(frame)
    except OrientationError as err:
        raise VideoReadError(str(err)) from None


class RGBConverter:
    """Decoded frames -> uint8 RGB (H, W, 3) with square pixels, stored orientation: libavfilter's ``scale=W:H``
    (`square_size`, only for non-square pixels) then ``format=rgb24``, as ffmpeg's CLI runs them. PyAV's own
    `reformat` differs from it on 10-bit input by up to ~120 levels; this is bit-equal to ffmpeg on every
    pixel format tested. The graph is rebuilt when the frames' format, size or colour properties change.

    `sar`: the stream's sample aspect ratio (`sample_aspect_ratio`); 1 keeps the stored size.
    """

    def __init__(self, sar: Fraction = Fraction(1)):
        self.sar = Fraction(sar)
        self._key = None
        self._graph = None

    def __call__(self, frame) -> np.ndarray:
        key = (frame.format.name, frame.width, frame.height, int(frame.colorspace), int(frame.color_range))
        if key != self._key:
            self._graph, self._key = _rgb_graph(frame, square_size(frame.width, frame.height, self.sar)), key
        self._graph.push(frame)
        return self._graph.pull().to_ndarray()


def _rgb_graph(frame, size: tuple[int, int]):
    import av

    graph = av.filter.Graph()
    args = {
        "video_size": f"{frame.width}x{frame.height}",
        "pix_fmt": str(frame.format.name),
        "time_base": str(frame.time_base or "1/1000"),
        "pixel_aspect": "1/1",
    }
    colour = {"colorspace": str(int(frame.colorspace)), "range": str(int(frame.color_range))}
    try:
        source = graph.add("buffer", **args, **colour)
    except (av.FFmpegError, ValueError):  # an FFmpeg whose buffer source has no colour options
        graph = av.filter.Graph()
        source = graph.add("buffer", **args)
    chain = [source]
    if size != (frame.width, frame.height):
        chain.append(graph.add("scale", f"{size[0]}:{size[1]}"))
    chain += [graph.add("format", "rgb24"), graph.add("buffersink")]
    for a, b in zip(chain, chain[1:]):
        a.link_to(b)
    graph.configure()
    return graph


def run_after_seek(container, stream, target_pts: int, index_of):
    """(index, decoded frame) of the frames that decode exactly as from the start after seeking to
    `target_pts`: from the first key frame reached onward, minus the pictures shown before it (open GOPs).
    Ends at the first frame `index_of(pts)` cannot place, and at once when the key frame it starts from
    decodes damaged (concealed from other pictures than when decoding from the start)."""
    import av

    try:
        container.seek(target_pts, stream=stream, backward=True, any_frame=False)
    except av.FFmpegError as err:
        log.debug("seek failed (%s)", reason(err))
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
                if frame.pts == key_pts and frame.is_corrupt:
                    return
                index = index_of(frame.pts)
                if index is None:
                    return
                yield index, frame
    except av.FFmpegError as err:
        log.debug("decoding after a seek failed (%s)", reason(err))


def reason(err: Exception) -> str:
    return getattr(err, "strerror", None) or str(err)
