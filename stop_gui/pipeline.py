"""The app's pipeline, without widgets: a capture worker and an inference worker, each in its own QThread,
meeting in a `FrameHub` that holds only the newest frame and the clip buffer (stale frames are dropped,
never queued). `benchmarks/app_latency.py` drives the same objects headless."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from stop_export.runtime.buffer import ClipBuffer
from stop_train.video.decode import VideoReadError
from stop_train.video.source import (Frame, ReconnectPolicy, SourceError, SourceLost, SourceSpec, live_frames,
                                     open_source)
from stop_export.runtime.recognize import RecognizeError
from stop_export.runtime.recognizer import Recognizer

@dataclass
class Window:
    """One prediction: scores, the graph's other outputs, and timing."""

    scores: np.ndarray  # (K,)
    outputs: dict[str, np.ndarray]
    stream_t: float  # stream time of the clip's newest frame
    captured_at: float  # time.monotonic() when that frame was captured
    inference_s: float
    labels: list[str] = field(default_factory=list)


class FrameHub:
    """Thread-safe meeting point: the capture side pushes, the display takes the newest frame, the inference
    side takes a clip when one is due. Nothing here grows with time."""

    def __init__(self, buffer: ClipBuffer):
        self._lock = threading.Lock()
        self._clip_due = threading.Condition(self._lock)  # notified when a push makes a clip due, and on wake()
        self._buffer = buffer
        self._latest: tuple[np.ndarray, float, float] | None = None
        self._captured: dict[float, float] = {}  # stream time -> capture time, for the buffered frames
        self.frames_in = 0

    def push(self, frame: np.ndarray, stream_t: float, captured_at: float) -> None:
        with self._lock:
            self._buffer.push(frame, stream_t)
            self._latest = (frame, stream_t, captured_at)
            self._captured[stream_t] = captured_at
            horizon = stream_t - self._buffer.span - 2 * self._buffer.interval
            while self._captured and next(iter(self._captured)) < horizon:  # as short as the buffer
                del self._captured[next(iter(self._captured))]
            self.frames_in += 1
            if self._buffer.due():
                self._clip_due.notify_all()

    def take_latest(self) -> tuple[np.ndarray, float, float] | None:
        with self._lock:
            latest, self._latest = self._latest, None
            return latest

    def take_clip(self) -> tuple[np.ndarray, float, float] | None:
        """(clip, stream time of its newest frame, capture time of that frame) when a prediction is due."""
        with self._lock:
            if not self._buffer.due():
                return None
            clip, end = self._buffer.clip()
            return clip, end, self._captured.get(end, time.monotonic())

    def wait_clip(self, stop: threading.Event) -> tuple[np.ndarray, float, float] | None:
        """Sleep until a clip is due (as `take_clip`) or `stop` is set and `wake()` called (None).
        Nothing polls: the waiting thread uses no CPU between clips."""
        with self._clip_due:
            while not stop.is_set():
                if self._buffer.due():
                    clip, end = self._buffer.clip()
                    return clip, end, self._captured.get(end, time.monotonic())
                self._clip_due.wait()
            return None

    def wake(self) -> None:
        """Wake `wait_clip` callers (after setting their stop event)."""
        with self._clip_due:
            self._clip_due.notify_all()

    def restart(self) -> None:
        """Forget the history (a seek, or a file starting over: stream time goes back)."""
        with self._lock:
            b = self._buffer
            self._buffer = ClipBuffer(b.frames, b.interval, b.every, b.pre)
            self._latest, self._captured = None, {}


class CaptureWorker(QObject):
    """Reads a file, camera or stream through the frame source at its own rate (files paced by their frames'
    times when `realtime`); a lost camera or stream is reported and reopened under `policy`."""

    frameReady = Signal()  # a new newest frame is in the hub (coalesced: one pending at most)
    status = Signal(str)
    finished = Signal()
    opened = Signal(float)  # length in seconds (0 = live or unknown)

    def __init__(self, hub: FrameHub, source: str, loop: bool = False, realtime: bool = True,
                 policy: ReconnectPolicy | None = None):
        super().__init__()
        self.hub, self.source, self.loop, self.realtime = hub, source, loop, realtime
        self.policy = policy or ReconnectPolicy()
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._seek: float | None = None
        self._pending = threading.Event()  # the GUI has not taken the last frame yet
        self._wake = threading.Event()  # set by resume, seek and stop: ends a pause

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

    @Slot()
    def run(self) -> None:
        try:
            spec = SourceSpec.parse(self.source)
            if spec.live:
                self._run_live(spec)
            else:
                self._run_file(spec)
        except (SourceError, SourceLost, VideoReadError) as err:
            self.status.emit(str(err))
        finally:
            self.finished.emit()

    def _run_live(self, spec: SourceSpec) -> None:
        def opened(_source) -> None:
            self.hub.restart()
            self.opened.emit(0.0)

        for frame in live_frames(spec, self.policy, self.status.emit, self._stop, opened):
            if not self._paused.is_set():
                self._push(frame)

    def _run_file(self, spec: SourceSpec) -> None:
        source = open_source(spec)  # probed once; each loop plays it from the start again
        try:
            self.opened.emit(source.duration_s)
            while not self._stop.is_set():
                ended = self._play(source)
                if self._stop.is_set() or not (ended and self.loop):
                    if ended:
                        self.status.emit("end of video")
                    return
        finally:
            source.close()

    def _play(self, source) -> bool:
        """Push the file's frames until its end (True) or a stop (False)."""
        self.hub.restart()
        start = None  # monotonic time of stream time 0, for pacing
        for frame in source.frames():
            while self._paused.is_set() and self._seek is None and not self._stop.is_set():
                self._wake.wait()  # asleep until resume, seek or stop
                self._wake.clear()
                start = None
            if self._stop.is_set():
                return False
            if self._seek is not None:
                source.seek(self._seek)
                self._seek = None
                self.hub.restart()
                start = None
                continue
            if self.realtime:
                start = time.monotonic() - frame.t if start is None else start
                delay = start + frame.t - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
            self._push(frame)
        return True

    def _push(self, frame: Frame) -> None:
        self.hub.push(frame.image, frame.t, time.monotonic())
        if not self._pending.is_set():
            self._pending.set()
            self.frameReady.emit()


class InferenceWorker(QObject):
    """Runs the model whenever the hub has a due clip; a busy model skips windows instead of queueing them."""

    result = Signal(object)  # Window
    error = Signal(str)
    finished = Signal()

    def __init__(self, hub: FrameHub, recognizer: Recognizer):
        super().__init__()
        self.hub, self.recognizer = hub, recognizer
        self._stop = threading.Event()
        self.windows = 0

    def stop(self) -> None:
        self._stop.set()
        self.hub.wake()

    @Slot()
    def run(self) -> None:
        try:
            while not self._stop.is_set():
                item = self.hub.wait_clip(self._stop)
                if item is None:
                    continue
                clip, stream_t, captured = item
                start = time.perf_counter()
                try:
                    pred = self.recognizer.predict(clip)
                except (RecognizeError, RuntimeError, ValueError) as err:
                    self.error.emit(f"inference failed: {err}")
                    return
                self.windows += 1
                outputs = {k: v[0] for k, v in pred.outputs.items()}
                self.result.emit(Window(pred.scores[0], outputs, stream_t, captured, time.perf_counter() - start,
                                        list(self.recognizer.labels)))
        finally:
            self.finished.emit()
