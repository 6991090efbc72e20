"""Frame sources and the `stop-recognize` loop: frames -> clip buffer -> model -> windows and events."""
from __future__ import annotations

import json
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from stop_train.video.decode import VideoReadError
from stop_train.video.source import ReconnectPolicy, SourceError, SourceLost, SourceSpec, live_frames, open_source

from ..schema import MetadataError
from .backends import BackendError
from .buffer import ClipBuffer
from .events import EventCfg, EventDetector
from .recognizer import Recognizer, top_k


class RecognizeError(RuntimeError):
    """A source or model that cannot be used, with the reason; `exit_code` for the CLI."""

    exit_code = 2


class SourceGaveUp(RecognizeError):
    """A camera or stream was lost and the reconnect policy gave up."""

    exit_code = 3


def frames_from(source: str, max_seconds: float = 0.0, policy: ReconnectPolicy | None = None,
                notify=None, opened=None, stop: threading.Event | None = None) -> Iterator[tuple[float, np.ndarray]]:
    """(time in seconds, RGB uint8 frame) from the frame source: a file (its frames' own times), or a camera or
    stream (reopened under `policy` when lost, `opened` called at each (re)opening; raises SourceGaveUp when
    it gives up, and KeyboardInterrupt when `stop` was set, see `sigint_sets`)."""
    try:
        spec = SourceSpec.parse(source)
        src = None if spec.live else open_source(spec)
    except SourceError as err:
        raise RecognizeError(str(err)) from None
    try:
        frames = src.frames() if src is not None else \
            live_frames(spec, policy or ReconnectPolicy(), notify or _warn, stop, opened)
        for frame in frames:
            if max_seconds and frame.t > max_seconds:
                return
            yield frame.t, frame.image
        if stop is not None and stop.is_set():
            raise KeyboardInterrupt
    except SourceLost as err:
        if stop is not None and stop.is_set():
            raise KeyboardInterrupt from None
        raise SourceGaveUp(str(err)) from None
    except VideoReadError as err:
        raise RecognizeError(f"cannot read {source}: {err}") from None
    finally:
        if src is not None:
            src.close()


@contextmanager
def sigint_sets(stop: threading.Event):
    """Within: Ctrl-C sets `stop` as well as raising KeyboardInterrupt. FFmpeg's waits on a stream that does
    not answer swallow the exception (PyAV's interrupt callback); the flag survives them."""
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or previous in (signal.SIG_IGN, None):
        yield
        return

    def handler(signum, frame):
        stop.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _warn(message: str) -> None:
    print(f"stop-recognize: {message}", file=sys.stderr, flush=True)


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
        rec = Recognizer.open(args.model, args.backend, args.threads, plugin=args.plugin)
        if args.labels:
            from stop_train.labels import load_labels

            rec.set_labels(load_labels(args.labels))
    except (BackendError, MetadataError, FileNotFoundError, ValueError) as err:
        raise RecognizeError(str(err)) from None
    printer = Printer(args.json, args.events)
    try:
        if args.protocol == "eval":
            try:
                if SourceSpec.parse(args.source).live:
                    raise RecognizeError("--protocol eval needs a video file (it samples the whole video)")
                pred = rec.predict_file(args.source)
            except SourceError as err:
                raise RecognizeError(str(err)) from None
            except (VideoReadError, OSError) as err:
                raise RecognizeError(f"cannot read {args.source}: {err}") from None
            printer.video(pred.top(args.top_k, rec.labels), "eval", 1)
            return 0
        buffer = rec.clip_buffer(args.predict_every, args.frame_interval)
        events = EventDetector(rec.labels, EventCfg(args.smoothing, args.on, args.off, args.min_duration))
        total, windows = None, 0
        stop = threading.Event()
        frames = frames_from(args.source, args.max_seconds, ReconnectPolicy(args.reconnect),
                             opened=lambda _source: buffer.clear(), stop=stop)  # no history across a reconnect
        with sigint_sets(stop):
            try:
                for end, scores in stream_windows(rec, frames, buffer):
                    total = scores if total is None else total + scores
                    windows += 1
                    printer.window(end, top_k(scores, rec.labels, args.top_k))
                    for event in events.update(end, scores):
                        printer.event(event)
            finally:  # events still open when the source ends, or is given up, are closed at its last frame
                for event in events.finish(buffer.latest):
                    printer.event(event)
        if total is None:
            need = buffer.span
            raise RecognizeError(f"{args.source} ended after {buffer.latest or 0:.2f} s, before one clip ({need:.2f} s) was complete; "
                                 "try --protocol eval or a smaller --frame-interval")
        printer.video(top_k(total / windows, rec.labels, args.top_k), "live", windows)
        return 0
    finally:
        printer.close()

