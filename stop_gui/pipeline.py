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
from stop_export.runtime.recognize import RecognizeError
from stop_export.runtime.recognizer import Recognizer

RETRY_S = 2.0  # wait before reopening a lost camera or stream


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

    def restart(self) -> None:
        """Forget the history (a seek, or a file starting over: stream time goes back)."""
        with self._lock:
            b = self._buffer
            self._buffer = ClipBuffer(b.frames, b.interval, b.every, b.pre)
            self._latest, self._captured = None, {}


class CaptureWorker(QObject):
    """Reads a file, camera or stream with OpenCV at its own rate; reports loss and retries."""

    frameReady = Signal()  # a new newest frame is in the hub (coalesced: one pending at most)
    status = Signal(str)
    finished = Signal()
    opened = Signal(float, int)  # fps (0 = unknown), frame count (0 = live)

    def __init__(self, hub: FrameHub, source: str, loop: bool = False, realtime: bool = True):
        super().__init__()
        self.hub, self.source, self.loop, self.realtime = hub, source, loop, realtime
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._seek: float | None = None
        self._pending = threading.Event()  # the GUI has not taken the last frame yet
        self.is_file = not source.isdigit() and "://" not in source

    def stop(self) -> None:
        self._stop.set()

    def set_paused(self, paused: bool) -> None:
        (self._paused.set if paused else self._paused.clear)()

    def seek(self, seconds: float) -> None:
        self._seek = seconds

    def frame_taken(self) -> None:
        self._pending.clear()

    @Slot()
    def run(self) -> None:
        import cv2

        try:
            while not self._stop.is_set():
                cap = cv2.VideoCapture(int(self.source) if self.source.isdigit() else self.source)
                if not cap.isOpened():
                    if self.is_file:
                        self.status.emit(f"cannot open {self.source}")
                        return
                    self.status.emit(f"cannot open {self.source}: retrying in {RETRY_S:.0f} s")
                    self._stop.wait(RETRY_S)
                    continue
                fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
                count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if self.is_file else 0
                self.opened.emit(float(fps), count)
                ended = self._read(cap, fps if fps > 0 else 25.0)
                cap.release()
                if self._stop.is_set() or (ended and self.is_file and not self.loop):
                    if ended:
                        self.status.emit("end of video")
                    return
                if not self.is_file:
                    self.status.emit(f"lost {self.source}: retrying in {RETRY_S:.0f} s")
                    self._stop.wait(RETRY_S)
        finally:
            self.finished.emit()

    def _read(self, cap, fps: float) -> bool:
        """Read until the end (True) or a stop; files are paced at their frame rate when `realtime`."""
        import cv2

        self.hub.restart()
        index, start = 0, time.monotonic()
        offset = 0.0
        while not self._stop.is_set():
            if self._paused.is_set():
                self._stop.wait(0.02)
                start = time.monotonic() - index / fps + offset
                continue
            if self._seek is not None and self.is_file:
                cap.set(cv2.CAP_PROP_POS_MSEC, self._seek * 1000.0)
                self.hub.restart()
                index, offset, self._seek = int(self._seek * fps), 0.0, None
                start = time.monotonic() - index / fps
            ok, bgr = cap.read()
            if not ok:
                return True
            now = time.monotonic()
            stream_t = index / fps if self.is_file else now - start
            if self.is_file and self.realtime:
                delay = start + stream_t - now
                if delay > 0:
                    self._stop.wait(delay)
            captured = time.monotonic()
            self.hub.push(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), stream_t, captured)
            if not self._pending.is_set():
                self._pending.set()
                self.frameReady.emit()
            index += 1
        return False


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

    @Slot()
    def run(self) -> None:
        try:
            while not self._stop.is_set():
                item = self.hub.take_clip()
                if item is None:
                    self._stop.wait(0.003)
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
