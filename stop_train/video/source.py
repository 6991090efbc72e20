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
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import numpy as np

from ..errors import StopError
from .decode import VideoReadError, check_file, frames_starting_at, iter_frames, open_video, probe

log = logging.getLogger(__name__)

STREAM_TIMEOUT_S = 5.0  # a stream that does not answer within this is lost (open and each read)
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt", "rtp", "file")


class SourceError(StopError, RuntimeError):
    """A source that cannot be opened, with the reason."""


class SourceLost(StopError, RuntimeError):
    """A camera or stream stopped delivering frames (`at_s`: the time of its last frame)."""

    def __init__(self, message: str, at_s: float = 0.0):
        super().__init__(message)
        self.at_s = at_s


@dataclass(frozen=True)
class Frame:
    t: float  # seconds after the source's first frame
    image: np.ndarray  # (H, W, 3) uint8 RGB, display orientation


class FrameClock:
    """Seconds since the first frame from presentation timestamps, kept increasing as ffmpeg's CLI keeps them:
    where timestamps go back (joined MPEG-TS recordings), or in formats that allow discontinuities jump ahead
    by more than 10 s (ffmpeg's `-dts_delta_threshold`), time goes on one frame duration after the last.
    Frames without timestamps take index / rate."""

    DISCONT_FLAG = 0x200  # AVFMT_TS_DISCONT
    JUMP_S = 10.0

    def __init__(self, container, stream):
        tb = stream.time_base
        self.tb = float(tb) if tb else None
        rate = stream.average_rate or stream.guessed_rate
        self.step = 1.0 / float(rate) if rate else 1.0 / 25.0
        self.jumps = bool(container.format.flags & self.DISCONT_FLAG)
        self.first_pts: int | None = None
        self.offset = 0.0  # seconds added after discontinuities
        self.last: float | None = None
        self.index = 0

    def __call__(self, pts: int | None) -> float:
        if pts is None or self.tb is None:
            t = self.index * self.step
        else:
            self.first_pts = pts if self.first_pts is None else self.first_pts
            t = (pts - self.first_pts) * self.tb + self.offset
            if self.last is not None and (t <= self.last or (self.jumps and t - self.last > self.JUMP_S)):
                self.offset += self.last + self.step - t
                t = self.last + self.step
        self.index += 1
        self.last = t
        return t


@dataclass(frozen=True)
class SourceSpec:
    """What `--source` names: a file path, a camera (index or device path) or a stream URL."""

    kind: str  # 'file', 'camera' or 'stream'
    target: str | int

    @classmethod
    def parse(cls, text: str) -> SourceSpec:
        """'0' -> camera 0; '/dev/video0' -> camera device; 'rtsp://...' -> stream; anything else a file.
        Raises SourceError for a file that does not exist."""
        text = str(text).strip()
        if text.isdigit():
            return cls("camera", int(text))
        if text.startswith("/dev/video"):
            return cls("camera", text)
        scheme, _, rest = text.partition("://") if "://" in text else ("", "", text)
        scheme = scheme.lower()
        if scheme == "file":
            text = unquote(rest)
        elif scheme:
            if scheme not in STREAM_SCHEMES:
                raise SourceError(f"unsupported stream scheme {scheme}:// (use one of {', '.join(STREAM_SCHEMES)})")
            return cls("stream", f"{scheme}://{rest}")  # FFmpeg's protocol names are lower case
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
    """A video file, frame by frame as ffmpeg decodes it, each frame at its `probe` time; `seek` for players.
    Raises VideoReadError (from `probe`) for a file that cannot be used.

    The fast `probe` (packets only) suffices here, unlike for the clip readers (`probe_exact`): frames come in
    decoding order, each timed by its own timestamp, so a packet the decoder rejects only leaves its time out,
    as it does in ffmpeg's output; opening a long file does not wait for a decoding pass."""

    live = False

    def __init__(self, path: str | Path):
        self.path = check_file(path)
        self.info = probe(self.path)
        self._times = self.info.times()
        self._seek_to: float | None = None

    @property
    def duration_s(self) -> float:
        """Length in seconds, from the frames' timestamps (headers may have none, as browser recordings)."""
        return self.info.duration_s

    def seek(self, seconds: float) -> None:
        """The next frame of `frames()` is the first shown at or after `seconds` (takes effect at the next frame)."""
        self._seek_to = max(0.0, float(seconds))

    def frames(self) -> Iterator[Frame]:
        start = 0
        while True:
            frames = frames_starting_at(self.path, self.info, start)
            for index, image in frames:
                if self._seek_to is not None:
                    break
                yield Frame(self._time(index), image)
            else:
                return
            frames.close()
            start, self._seek_to = self.info.index_at(self._seek_to), None

    def _time(self, index: int) -> float:
        if index < len(self._times):
            return float(self._times[index])
        return float(self._times[-1]) + (index - len(self._times) + 1) / self.info.fps  # past the probed frames

    def close(self) -> None:
        pass  # frames() holds the file open only while it is iterated


class StreamSource:
    """A stream URL (RTSP, HTTP, ...) through PyAV. The end of a stream is a loss, not a normal end."""

    live = True
    duration_s = 0.0

    def __init__(self, url: str, timeout_s: float = STREAM_TIMEOUT_S):
        self.url = url
        try:
            self._container, self._stream = open_video(url, timeout_s=timeout_s)
        except VideoReadError as err:
            raise SourceError(f"cannot open {url}: {str(err).removeprefix('cannot open: ')}") from None
        self._clock = FrameClock(self._container, self._stream)

    def frames(self) -> Iterator[Frame]:
        start, t = None, 0.0
        for pts, image in iter_frames(self._container, self._stream):
            now = time.monotonic()
            start = now if start is None else start
            t = self._clock(pts) if pts is not None else now - start  # arrival time without timestamps
            yield Frame(t, image)
        raise SourceLost(f"lost {self.url} at {t:.2f} s (the stream ended)", t)

    def close(self) -> None:
        self._container.close()


class CameraSource:
    """A camera (index or device path) through OpenCV; times are arrival times."""

    live = True
    duration_s = 0.0

    def __init__(self, target: int | str):
        import cv2

        self.target = target
        device = Path(target if isinstance(target, str) else f"/dev/video{target}")
        if Path("/dev").is_dir() and sys.platform.startswith("linux") and not device.exists():
            raise SourceError(f"cannot open camera {target}: no such device {device}")
        cv2.utils.logging.setLogLevel(
            cv2.utils.logging.LOG_LEVEL_ERROR
        )  # OpenCV: its backend-probing warnings are noise here
        self._cap = cv2.VideoCapture(target, cv2.CAP_V4L2) if isinstance(target, str) else cv2.VideoCapture(target)
        if not self._cap.isOpened():
            self._cap.release()
            raise SourceError(f"cannot open camera {target} (busy, or not a capture device)")

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


def live_frames(
    spec: SourceSpec,
    policy: ReconnectPolicy,
    notify: Callable[[str], None] = log.warning,
    stop: threading.Event | None = None,
    opened: Callable[[object], None] | None = None,
) -> Iterator[Frame]:
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
                    if lost_at is not None and attempt:
                        notify(f"{spec}: receiving again at {offset + frame.t:.2f} s")
                    attempt = 0
                    last_t = offset + frame.t
                    yield Frame(last_t, frame.image)
                problem = SourceLost(f"lost {spec} at {last_t or 0.0:.2f} s", last_t or 0.0)
            except SourceLost as err:
                problem = err if last_t is None else SourceLost(f"lost {spec} at {last_t:.2f} s", last_t)
            finally:
                source.close()
        if stop.is_set():
            return
        lost_at = time.monotonic()
        attempt += 1
        delay = policy.delay(attempt)
        if delay is None:
            raise SourceLost(
                f"{problem}; gave up after {attempt - 1} reconnect attempt(s)", getattr(problem, "at_s", 0.0)
            )
        notify(f"{problem}: retrying in {delay:g} s")
        stop.wait(delay)
