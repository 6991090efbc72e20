"""The one frame source for live use (torch-free): video files and stream URLs through PyAV/FFmpeg, camera
devices through OpenCV, each frame with its own time; lost cameras and streams reopened under one policy.

`stop-recognize` and the app read through here; training and `--protocol eval` read the same files through
`decode.read_frames`, which returns the same pictures (`decode` defines frame *i*). Times:
- files: the frame's presentation timestamp minus the first frame's (variable frame rate kept);
- streams: the same where the stream carries timestamps, else the arrival time since the first frame;
- cameras: the arrival time since the first frame.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .decode import VideoReadError, check_file, iter_frames, open_video

log = logging.getLogger(__name__)

STREAM_TIMEOUT_S = 5.0  # a stream that does not answer within this is lost (open and each read)
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt", "rtp", "file")


class SourceError(RuntimeError):
    """A source that cannot be opened, with the reason."""


class SourceLost(RuntimeError):
    """A camera or stream stopped delivering frames (`at_s`: the time of its last frame)."""

    def __init__(self, message: str, at_s: float = 0.0):
        super().__init__(message)
        self.at_s = at_s


@dataclass(frozen=True)
class Frame:
    t: float  # seconds after the source's first frame
    image: np.ndarray  # (H, W, 3) uint8 RGB, display orientation


@dataclass(frozen=True)
class SourceSpec:
    """What `--source` names: a file path, a camera (index or device path) or a stream URL."""

    kind: str  # 'file', 'camera' or 'stream'
    target: str | int

    @classmethod
    def parse(cls, text: str) -> "SourceSpec":
        """'0' -> camera 0; '/dev/video0' -> camera device; 'rtsp://...' -> stream; anything else a file.
        Raises SourceError for a file that does not exist."""
        text = str(text).strip()
        if text.isdigit():
            return cls("camera", int(text))
        if text.startswith("/dev/video"):
            return cls("camera", text)
        scheme = text.split("://", 1)[0].lower() if "://" in text else ""
        if scheme == "file":
            text = text[len("file://"):]
        elif scheme:
            if scheme not in STREAM_SCHEMES:
                raise SourceError(f"unsupported stream scheme {scheme}:// (use one of {', '.join(STREAM_SCHEMES)})")
            return cls("stream", text)
        if not Path(text).is_file():
            raise SourceError(f"no video file at {text}")
        return cls("file", text)

    @property
    def live(self) -> bool:
        return self.kind != "file"

    def __str__(self) -> str:
        return f"camera {self.target}" if self.kind == "camera" else str(self.target)


@dataclass(frozen=True)
class ReconnectPolicy:
    """When to reopen a lost camera or stream: after 1, 2, 4 ... seconds up to `max_delay_s`, at most
    `attempts` times in a row (None: forever; 0: give up at once). A frame received resets the count."""

    attempts: int | None = None
    first_delay_s: float = 1.0
    max_delay_s: float = 16.0

    def delay(self, attempt: int) -> float | None:
        """Seconds to wait before reconnect `attempt` (1-based), or None to give up."""
        if self.attempts is not None and attempt > self.attempts:
            return None
        return min(self.max_delay_s, self.first_delay_s * 2.0 ** (attempt - 1))


# ------------------------------------------------------------------------------------------------- sources
class FileSource:
    """A video file, frame by frame as ffmpeg decodes it; `seek` for players."""

    live = False

    def __init__(self, path: str | Path):
        self.path = check_file(path)
        self._container, self._stream = open_video(self.path)
        tb = self._stream.time_base
        self._tb = float(tb) if tb else None
        rate = self._stream.average_rate or self._stream.guessed_rate
        self._fps = float(rate) if rate else 25.0
        self._first_pts: int | None = None
        self._seek_to: float | None = None

    @property
    def duration_s(self) -> float:
        """Length from the header (for seek bars; 0 when unknown)."""
        if self._stream.duration and self._tb:
            return float(self._stream.duration * self._tb)
        return float(self._container.duration or 0) / 1e6

    def seek(self, seconds: float) -> None:
        """The next frame of `frames()` is the first at or after `seconds` (takes effect at the next frame)."""
        self._seek_to = max(0.0, float(seconds))

    def frames(self) -> Iterator[Frame]:
        index = 0
        while True:
            restart = False
            for pts, image in iter_frames(self._container, self._stream):
                t = self._time(pts, index)
                index += 1
                if self._seek_to is not None:
                    restart = True
                    break
                yield Frame(t, image)
            if not restart:
                return
            target, self._seek_to = self._seek_to, None
            yield from self._after_seek(target)
            index = 0
            return

    def _after_seek(self, target: float) -> Iterator[Frame]:
        # seek to the key frame before `target`, then decode forward and drop what lies before it
        first = self._first_pts or 0
        ticks = int(first + target / self._tb) if self._tb else 0
        self._container.seek(ticks, stream=self._stream, backward=True, any_frame=False)
        self._stream.codec_context.flush_buffers()
        for index, (pts, image) in enumerate(iter_frames(self._container, self._stream)):
            t = self._time(pts, index)
            if t < target - 1e-6:
                continue
            if self._seek_to is not None:
                target, self._seek_to = self._seek_to, None
                yield from self._after_seek(target)
                return
            yield Frame(t, image)

    def _time(self, pts: int | None, index: int) -> float:
        if pts is None or self._tb is None:
            return index / self._fps
        if self._first_pts is None:
            self._first_pts = pts
        return (pts - self._first_pts) * self._tb

    def close(self) -> None:
        self._container.close()


class StreamSource:
    """A stream URL (RTSP, HTTP, ...) through PyAV. The end of a stream is a loss, not a normal end."""

    live = True
    duration_s = 0.0

    def __init__(self, url: str, timeout_s: float = STREAM_TIMEOUT_S):
        self.url = url
        try:
            self._container, self._stream = open_video(url, timeout=(timeout_s, timeout_s))
        except VideoReadError as err:
            raise SourceError(f"cannot open {url}: {str(err).removeprefix('cannot open: ')}") from None
        tb = self._stream.time_base
        self._tb = float(tb) if tb else None

    def frames(self) -> Iterator[Frame]:
        first_pts, start, last = None, None, -1.0
        for pts, image in iter_frames(self._container, self._stream):
            now = time.monotonic()
            start = now if start is None else start
            if pts is not None and self._tb:
                first_pts = pts if first_pts is None else first_pts
                t = (pts - first_pts) * self._tb
                if t <= last:  # a timestamp discontinuity: continue from arrival time
                    first_pts, t = None, max(last + 1e-3, now - start)
            else:
                t = now - start
            last = t
            yield Frame(t, image)
        raise SourceLost(f"lost {self.url} at {max(last, 0.0):.2f} s (the stream ended)", max(last, 0.0))

    def close(self) -> None:
        self._container.close()


class CameraSource:
    """A camera (index or device path) through OpenCV; times are arrival times."""

    live = True
    duration_s = 0.0

    def __init__(self, target: int | str):
        import cv2

        self.target = target
        self._cap = cv2.VideoCapture(target, cv2.CAP_V4L2) if isinstance(target, str) else cv2.VideoCapture(target)
        if not self._cap.isOpened():
            self._cap.release()
            raise SourceError(f"cannot open camera {target}")

    def frames(self) -> Iterator[Frame]:
        import cv2

        start, t = None, 0.0
        while True:
            ok, bgr = self._cap.read()
            if not ok:
                raise SourceLost(f"lost camera {self.target} at {t:.2f} s", t)
            now = time.monotonic()
            start = now if start is None else start
            t = now - start
            yield Frame(t, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))

    def close(self) -> None:
        self._cap.release()


def open_source(spec: SourceSpec | str):
    """FileSource, StreamSource or CameraSource; raises SourceError with the reason."""
    spec = spec if isinstance(spec, SourceSpec) else SourceSpec.parse(spec)
    if spec.kind == "camera":
        return CameraSource(spec.target)
    if spec.kind == "stream":
        return StreamSource(str(spec.target))
    try:
        return FileSource(spec.target)
    except VideoReadError as err:
        raise SourceError(f"cannot read {spec.target}: {err}") from None


def live_frames(spec: SourceSpec, policy: ReconnectPolicy, notify: Callable[[str], None] = log.warning,
                stop: threading.Event | None = None, opened: Callable[[object], None] | None = None) -> Iterator[Frame]:
    """Frames of a camera or stream, reopened under `policy` whenever it is lost or cannot be opened.

    Times continue across reconnects (the wall-clock gap is added), so they keep increasing. `notify` gets a
    line for every loss and retry; `opened` each new source object. Raises SourceLost when the policy gives up.
    Ends quietly when `stop` is set.
    """
    stop = stop or threading.Event()
    attempt, offset, last_t, lost_at = 0, 0.0, None, None
    while not stop.is_set():
        try:
            source = open_source(spec)
        except SourceError as err:
            problem: Exception = err
        else:
            if opened is not None:
                opened(source)
            try:
                if lost_at is not None and last_t is not None:
                    offset = last_t + (time.monotonic() - lost_at)
                for frame in source.frames():
                    if stop.is_set():
                        return
                    attempt = 0
                    last_t = offset + frame.t
                    yield Frame(last_t, frame.image)
                problem = SourceLost(f"lost {spec} at {last_t or 0.0:.2f} s", last_t or 0.0)
            except SourceLost as err:
                problem = err if last_t is None else SourceLost(f"lost {spec} at {last_t:.2f} s", last_t)
            finally:
                source.close()
        lost_at = time.monotonic()
        attempt += 1
        delay = policy.delay(attempt)
        if delay is None:
            raise SourceLost(f"{problem}; gave up after {attempt - 1} reconnect attempt(s)",
                             getattr(problem, "at_s", 0.0))
        notify(f"{problem}: retrying in {delay:g} s")
        stop.wait(delay)
