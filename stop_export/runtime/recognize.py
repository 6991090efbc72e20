"""Frame sources and the `stop-recognize` loop: frames -> clip buffer -> model -> windows and events."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ..schema import MetadataError
from .backends import BackendError
from .buffer import ClipBuffer
from .events import EventCfg, EventDetector
from .recognizer import Recognizer, top_k


class RecognizeError(RuntimeError):
    """A source or model that cannot be used, with the reason."""


def frames_from(source: str, max_seconds: float = 0.0) -> Iterator[tuple[float, np.ndarray]]:
    """(time in seconds, RGB uint8 frame) from a video file (file time), a camera index or a stream URL
    (wall-clock time since the first frame)."""
    try:
        import cv2
    except ImportError:
        raise RecognizeError("reading sources needs OpenCV: pip install opencv-python-headless") from None
    is_camera = source.isdigit()
    is_file = not is_camera and "://" not in source
    if is_file and not Path(source).is_file():
        raise RecognizeError(f"no video file at {source}")
    cap = cv2.VideoCapture(int(source) if is_camera else source)
    if not cap.isOpened():
        raise RecognizeError(f"cannot open {'camera' if is_camera else 'source'} {source}")
    fps = cap.get(cv2.CAP_PROP_FPS) if is_file else 0.0
    if is_file and not fps > 0:
        fps = 25.0  # no rate in the container: assume a common one
    try:
        index, start = 0, None
        while True:
            ok, bgr = cap.read()
            if not ok:
                if index == 0:
                    raise RecognizeError(f"{source}: no frame could be decoded")
                return
            now = time.monotonic()
            start = now if start is None else start
            t = index / fps if is_file else now - start
            if max_seconds and t > max_seconds:
                return
            yield t, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        cap.release()


class Printer:
    """Text or JSON-lines output, and the events file."""

    def __init__(self, as_json: bool, events_file: Path | None):
        self.as_json = as_json
        self.events = open(events_file, "a", encoding="utf-8") if events_file else None

    def window(self, t: float, top: list[tuple[str, float]]) -> None:
        if self.as_json:
            self._line({"type": "window", "t": round(t, 3), "top": [[k, round(s, 4)] for k, s in top]})
        else:
            print(f"[{t:8.2f} s] " + " | ".join(f"{k} {s:.2f}" for k, s in top), flush=True)

    def event(self, event) -> None:
        record = {"type": "event", **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in event.to_dict().items()}}
        if self.as_json:
            self._line(record)
        else:
            print(f"event: {event.label} {event.start_s:.2f}-{event.end_s:.2f} s (peak {event.peak:.2f})", flush=True)
        if self.events:
            self.events.write(json.dumps(record) + "\n")
            self.events.flush()

    def video(self, top: list[tuple[str, float]], protocol: str, windows: int) -> None:
        if self.as_json:
            self._line({"type": "video", "protocol": protocol, "windows": windows,
                        "top": [[k, round(s, 4)] for k, s in top]})
        else:
            print(f"video ({protocol}{f', {windows} windows' if protocol == 'live' else ''}): "
                  + " | ".join(f"{k} {s:.2f}" for k, s in top), flush=True)

    def _line(self, record: dict) -> None:
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()

    def close(self) -> None:
        if self.events:
            self.events.close()


def stream_windows(rec: Recognizer, frames: Iterable[tuple[float, np.ndarray]],
                   buffer: ClipBuffer) -> Iterator[tuple[float, np.ndarray]]:
    """Push (t, RGB frame) into the buffer; yield (clip end time, scores (K,)) whenever a prediction is due."""
    for t, frame in frames:
        buffer.push(frame, t)
        if buffer.due():
            clip, end = buffer.clip()
            yield end, rec.predict(clip).scores[0]


def run_recognize(args) -> int:
    try:
        rec = Recognizer.open(args.model, args.backend, args.threads)
        if args.labels:
            from stop_train.labels import load_labels

            rec.set_labels(load_labels(args.labels))
    except (BackendError, MetadataError, FileNotFoundError, ValueError) as err:
        raise RecognizeError(str(err)) from None
    printer = Printer(args.json, args.events)
    try:
        if args.protocol == "eval":
            if args.source.isdigit() or "://" in args.source:
                raise RecognizeError("--protocol eval needs a video file (it samples the whole video)")
            from stop_train.video.decode import VideoReadError

            try:
                pred = rec.predict_file(args.source)
            except (VideoReadError, OSError) as err:
                raise RecognizeError(f"cannot read {args.source}: {err}") from None
            printer.video(pred.top(args.top_k, rec.labels), "eval", 1)
            return 0
        interval = args.frame_interval or rec.meta.sampling["frame_interval_s"]
        buffer = ClipBuffer(rec.meta.frames, interval, args.predict_every, rec.preprocess)
        events = EventDetector(rec.labels, EventCfg(args.smoothing, args.on, args.off, args.min_duration))
        total, windows = None, 0
        for end, scores in stream_windows(rec, frames_from(args.source, args.max_seconds), buffer):
            total = scores if total is None else total + scores
            windows += 1
            printer.window(end, top_k(scores, rec.labels, args.top_k))
            for event in events.update(end, scores):
                printer.event(event)
        for event in events.finish(buffer.latest):
            printer.event(event)
        if total is None:
            need = (rec.meta.frames - 1) * interval
            raise RecognizeError(f"{args.source} ended after {buffer.latest or 0:.2f} s, before one clip ({need:.2f} s) was complete; "
                                 "try --protocol eval or a smaller --frame-interval")
        printer.video(top_k(total / windows, rec.labels, args.top_k), "live", windows)
        return 0
    finally:
        printer.close()

