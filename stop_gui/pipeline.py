"""The app's pipeline, without widgets: a capture worker and an inference worker, each in its own thread,
meeting in a `FrameHub`. The hub holds the newest frame for display (older ones are dropped, never queued)
and, in order, the clips due for a prediction and the places where playback ends or jumps.

Clips are cut exactly where `stop-recognize` cuts them (at the push that makes one due, from the same
`ClipBuffer`), and the inference worker feeds the runtime's `EventDetector` in the same order, so a file
gives the app the events `stop-recognize` reports. For a file every window is kept: when the model is slower
than `predict_every_s`, playback waits for it. For a camera or stream a clip not yet taken is replaced by
the newer one (a busy model skips windows instead of falling behind).

The workers run on Python threads (daemon), not QThreads: FFmpeg's open and read of a stream that does not
answer cannot be interrupted from another thread (only by their 5 s timeout), and a window that closes must
not wait for that, nor abort on a QThread destroyed while running. `Pipeline.stop` ends both within its
deadline in every other case; a thread still inside FFmpeg is disconnected and ends at its timeout.
`benchmarks/app_latency.py` drives the same objects headless.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QObject, Signal

from stop_export.runtime.buffer import ClipBuffer
from stop_export.runtime.errors import RecognizeError
from stop_export.runtime.events import Event, EventCfg, EventDetector
from stop_export.runtime.recognizer import Recognizer
from stop_train.video.decode import VideoReadError
from stop_train.video.source import (
    Frame,
    ReconnectPolicy,
    SourceError,
    SourceLost,
    SourceSpec,
    live_frames,
    open_source,
)


@dataclass
class Window:
    """One prediction: scores, the graph's other outputs, timing, and the events it closed or keeps open."""

    scores: np.ndarray  # (K,)
    outputs: dict[str, np.ndarray]
    stream_t: float  # stream time of the clip's newest frame
    captured_at: float  # time.monotonic() when that frame was captured
    inference_s: float
    labels: list[str] = field(default_factory=list)
    closed: list[Event] = field(default_factory=list)  # events this window ended
    ongoing: list[Event] = field(default_factory=list)  # events still open after it


@dataclass(frozen=True)
class Clip:
    frames: np.ndarray  # (T, S, S, 3) uint8
    end: float  # stream time of its newest frame
    captured_at: float


@dataclass(frozen=True)
class Boundary:
    """Playback ended or jumped ('end', 'loop', 'seek'): open events close at `t`, the last frame's stream time
    before it (None: no frame since the previous boundary), and the detector starts afresh."""

    reason: str
    t: float | None


class FrameHub:
    """Thread-safe meeting point: the capture side pushes frames and boundaries, the display takes the newest
    frame, the inference side takes clips and boundaries in order. Nothing here grows with time: at most one
    clip waits (`lossless`: the pusher waits for it to be taken; else it is replaced)."""

    def __init__(self, buffer: ClipBuffer, lossless: bool = False):
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._buffer = buffer
        self.lossless = lossless
        self._items: deque[Clip | Boundary] = deque()
        self._latest: tuple[np.ndarray, float, float] | None = None
        self._closed = False
        self.last_t: float | None = None  # stream time of the newest frame pushed
        self.span = buffer.span  # seconds of video one clip covers
        self.frames_in = 0
        self.clips = 0  # clips cut
        self.skipped = 0  # clips replaced before inference took them (live sources)
        self.waited_s = 0.0  # time pushes waited for the model (files)

    def push(self, frame: np.ndarray, stream_t: float, captured_at: float) -> float:
        """Add a frame; cut a clip when one is due. Returns the seconds it waited for the model (lossless)."""
        with self._lock:
            self._buffer.push(frame, stream_t)
            self._latest = (frame, stream_t, captured_at)
            self.last_t = stream_t
            self.frames_in += 1
            if not self._buffer.due():
                return 0.0
            frames, end = self._buffer.clip()
            self.clips += 1
            start = time.monotonic()
            if self.lossless:
                while not self._closed and any(isinstance(item, Clip) for item in self._items):
                    self._changed.wait()
            else:
                kept = [item for item in self._items if not isinstance(item, Clip)]
                self.skipped += len(self._items) - len(kept)
                self._items = deque(kept)
            self._items.append(Clip(frames, end, captured_at))
            self._changed.notify_all()
            waited = time.monotonic() - start
            self.waited_s += waited
            return waited

    def boundary(self, reason: str) -> None:
        """Playback ends or jumps: queue a Boundary at the newest frame's time and forget the history."""
        with self._lock:
            self._items.append(Boundary(reason, self._buffer.latest))
            self._forget()
            self._changed.notify_all()

    def restart(self) -> None:
        """Forget the history without a boundary (a reopened camera or stream, as `stop-recognize` does)."""
        with self._lock:
            self._forget()

    def _forget(self) -> None:
        b = self._buffer
        self._buffer = ClipBuffer(b.frames, b.interval, b.every, b.pre)

    def take_latest(self) -> tuple[np.ndarray, float, float] | None:
        with self._lock:
            latest, self._latest = self._latest, None
            return latest

    def next_item(self) -> Clip | Boundary | None:
        """The next clip or boundary, sleeping until there is one; None once `close` was called. Nothing
        polls: the waiting thread uses no CPU between clips."""
        with self._changed:
            while not self._closed and not self._items:
                self._changed.wait()
            if self._closed:
                return None
            item = self._items.popleft()
            self._changed.notify_all()  # a lossless push may be waiting for this
            return item

    def close(self) -> None:
        """Wake every waiting thread; pushes stop waiting and `next_item` returns None from now on."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()


class CaptureWorker(QObject):
    """Reads a file, camera or stream through the frame source at its own rate (files paced by their frames'
    times when `realtime`); a lost camera or stream is reported and reopened under `policy`.

    A file plays like in a player: pause, seek (also while paused: the frame at the new place is shown),
    loop, and at its end it waits; a seek (Space replays from 0) plays it again."""

    frameReady = Signal()  # a new newest frame is in the hub (coalesced: one pending at most)
    status = Signal(str, bool)  # message, is it a problem
    failed = Signal(str)  # the source cannot be used (a file that does not open, a stream given up)
    opened = Signal(float)  # length in seconds (0 = live or unknown)
    ended = Signal()  # a file reached its end (and does not loop)
    finished = Signal()

    def __init__(
        self,
        hub: FrameHub,
        source: str,
        loop: bool = False,
        realtime: bool = True,
        policy: ReconnectPolicy | None = None,
    ):
        super().__init__()
        self.hub, self.source, self.loop, self.realtime = hub, source, loop, realtime
        self.policy = policy or ReconnectPolicy()
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._seek: float | None = None
        self._pending = threading.Event()  # the GUI has not taken the last frame yet
        self._wake = threading.Event()  # set by resume, seek and stop: ends a pause or the wait at the end

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def set_paused(self, paused: bool) -> None:
        (self._paused.set if paused else self._paused.clear)()
        self._wake.set()

    def seek(self, seconds: float) -> None:
        self._seek = seconds
        self._wake.set()

    def frame_taken(self) -> None:
        self._pending.clear()

    def run(self) -> None:
        try:
            spec = SourceSpec.parse(self.source)
            if spec.live:
                self._run_live(spec)
            else:
                self._run_file(spec)
        except (SourceError, VideoReadError) as err:
            self._emit(self.failed, str(err))
        except SourceLost as err:
            self._emit(self.failed, str(err))
        finally:
            self._emit(self.finished)

    def _emit(self, signal, *args) -> None:
        if not self._stop.is_set():  # after stop() the window no longer listens
            signal.emit(*args)

    def _run_live(self, spec: SourceSpec) -> None:
        def opened(_source) -> None:
            self.hub.restart()
            self._emit(self.opened, 0.0)

        def notify(message: str) -> None:  # losses and retries are problems; "receiving again" is not
            self._emit(self.status, message, "receiving again" not in message)

        self._emit(self.status, f"connecting to {spec}…", False)
        for frame in live_frames(spec, self.policy, notify, self._stop, opened):
            if not self._paused.is_set():
                self._push(frame)

    def _run_file(self, spec: SourceSpec) -> None:
        source = open_source(spec)  # probed once; each pass plays it from the start (or the seek) again
        try:
            self._emit(self.opened, source.duration_s)
            while not self._stop.is_set():
                if not self._play(source):
                    return
                if self.loop:
                    self.hub.boundary("loop")
                    continue
                self.hub.boundary("end")
                self._emit(self.ended)
                while self._seek is None and not self._stop.is_set():  # a player waits at the end
                    self._wake.wait()
                    self._wake.clear()
        finally:
            source.close()

    def _play(self, source) -> bool:
        """Push the file's frames (from a pending seek, else the start) until its end (True) or a stop."""
        start = None  # monotonic time of stream time 0, for pacing
        show_one = False  # after a seek while paused: show the frame at the new place, then wait
        if self._seek is not None:
            source.seek(self._seek)
            self._seek = None
            show_one = self._paused.is_set()
        for frame in source.frames():
            while self._paused.is_set() and not show_one and self._seek is None and not self._stop.is_set():
                self._wake.wait()  # asleep until resume, seek or stop
                self._wake.clear()
                start = None
            if self._stop.is_set():
                return False
            if self._seek is not None:
                source.seek(self._seek)
                self._seek = None
                self.hub.boundary("seek")
                show_one, start = self._paused.is_set(), None
                continue  # the generator goes on from the new place
            show_one = False
            if self.realtime:
                start = time.monotonic() - frame.t if start is None else start
                delay = start + frame.t - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
            waited = self._push(frame)
            if start is not None:
                start += waited  # playback waited for the model: go on from here, not catch up
        return not self._stop.is_set()

    def _push(self, frame: Frame) -> float:
        waited = self.hub.push(frame.image, frame.t, time.monotonic())
        if not self._pending.is_set():
            self._pending.set()
            self._emit(self.frameReady)
        return waited


class InferenceWorker(QObject):
    """Runs the model on each clip from the hub and feeds the runtime's EventDetector with the result, and
    with each boundary, in order. Labels changed while running (re-embedding) start a new detector."""

    result = Signal(object)  # Window
    boundary = Signal(object, list)  # Boundary, the events it closed
    error = Signal(str)
    finished = Signal()

    def __init__(self, hub: FrameHub, recognizer: Recognizer, events: EventCfg = EventCfg()):
        super().__init__()
        self.hub, self.recognizer, self.event_cfg = hub, recognizer, events
        self.detector = EventDetector(recognizer.labels, events)
        self.last_t: float | None = None  # stream time of the newest clip seen
        self._stop = threading.Event()
        self.windows = 0

    def stop(self) -> None:
        self._stop.set()
        self.hub.close()

    def run(self) -> None:
        try:
            while not self._stop.is_set():
                item = self.hub.next_item()
                if item is None or self._stop.is_set():
                    return
                if isinstance(item, Boundary):
                    closed = self.detector.finish(item.t)
                    self._emit(self.boundary, item, closed)
                    continue
                if not self.recognizer.labels:  # a retrieval model before labels are typed: play, score nothing
                    continue
                start = time.perf_counter()
                try:
                    pred = self.recognizer.predict(item.frames)
                except (RecognizeError, RuntimeError, ValueError) as err:
                    self._emit(self.error, f"inference failed: {err}")
                    return
                inference_s = time.perf_counter() - start
                closed = []
                if pred.labels != self.detector.labels:  # re-embedded: the old labels' events end here
                    closed = self.detector.finish(self.last_t)
                    self.detector = EventDetector(pred.labels, self.event_cfg)
                closed += self.detector.update(item.end, pred.scores[0])
                self.last_t = item.end
                self.windows += 1
                outputs = {k: v[0] for k, v in pred.outputs.items()}
                self._emit(
                    self.result,
                    Window(
                        pred.scores[0],
                        outputs,
                        item.end,
                        item.captured_at,
                        inference_s,
                        pred.labels,
                        closed,
                        self.detector.active(),
                    ),
                )
        finally:
            self._emit(self.finished)

    def _emit(self, signal, *args) -> None:
        if not self._stop.is_set():
            signal.emit(*args)


WORKER_PREFIX = "stop-gui-"  # the workers' thread names


def live_workers() -> list[str]:
    """The names of the app's worker threads still running, in any pipeline (one stopped while inside FFmpeg
    ends at its timeout)."""
    return [t.name for t in threading.enumerate() if t.name.startswith(WORKER_PREFIX) and t.is_alive()]


class Pipeline:
    """The two workers on their threads; `stop` ends them within `deadline_s`."""

    def __init__(self, hub: FrameHub, capture: CaptureWorker, inference: InferenceWorker):
        self.hub, self.capture, self.inference = hub, capture, inference
        self.threads = [
            threading.Thread(target=w.run, name=f"{WORKER_PREFIX}{n}", daemon=True)
            for n, w in (("capture", capture), ("inference", inference))
        ]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def running(self) -> list[threading.Thread]:
        return [t for t in self.threads if t.is_alive()]

    def stop(self, deadline_s: float = 1.0) -> list[str]:
        """Stop both workers and wait for them (at most `deadline_s` in all). Returns the names of threads
        still running (one blocked inside FFmpeg's open or read of a silent stream): they no longer emit
        anything and end at FFmpeg's timeout."""
        self.capture.stop()
        self.inference.stop()
        end = time.monotonic() + deadline_s
        for t in self.threads:
            t.join(max(0.0, end - time.monotonic()))
        return [t.name for t in self.running()]
