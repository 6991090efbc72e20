"""`stop-recognize`'s loop: frames -> clip buffer -> model -> windows and events, printed or written."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from stop_train.atomic import finite
from stop_train.schema import MetadataError
from stop_train.video.decode import VideoReadError
from stop_train.video.source import ReconnectPolicy, SourceError, SourceSpec

from .runtime.backends import BackendError
from .runtime.buffer import ClipBuffer
from .runtime.errors import RecognizeError
from .runtime.events import EventCfg, EventDetector
from .runtime.frames import frames_from, sigint_sets
from .runtime.recognizer import Recognizer
from .runtime.recognizer import top_k as top_k_of


class Printer:
    """Text or JSON-lines output, and the events file."""

    def __init__(self, as_json: bool, events_file: Path | None):
        self.as_json = as_json
        try:
            self.events = open(events_file, "a", encoding="utf-8") if events_file else None
        except OSError as err:
            raise RecognizeError(f"cannot write events to {events_file}: {err.strerror}") from None

    def window(self, t: float, top: list[tuple[str, float]]) -> None:
        if self.as_json:
            self._line({"type": "window", "t": round(t, 3), "top": [[k, round(s, 4)] for k, s in top]})
        else:
            print(f"[{t:8.2f} s] " + " | ".join(f"{k} {s:.2f}" for k, s in top), flush=True)

    def event(self, event) -> None:
        self.record(event)
        self.show(event)

    def record(self, event) -> None:
        """Append `event` to the events file (first: it must not depend on a reader of stdout)."""
        if self.events:
            self.events.write(json.dumps(finite(self._event_dict(event)), allow_nan=False) + "\n")
            self.events.flush()

    def show(self, event) -> None:
        if self.as_json:
            self._line(self._event_dict(event))
        else:
            print(f"event: {event.label} {event.start_s:.2f}-{event.end_s:.2f} s (peak {event.peak:.2f})", flush=True)

    @staticmethod
    def _event_dict(event) -> dict:
        return {
            "type": "event",
            **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in event.to_dict().items()},
        }

    def video(self, top: list[tuple[str, float]], protocol: str, windows: int) -> None:
        if self.as_json:
            self._line(
                {"type": "video", "protocol": protocol, "windows": windows, "top": [[k, round(s, 4)] for k, s in top]}
            )
        else:
            print(
                f"video ({protocol}{f', {windows} windows' if protocol == 'live' else ''}): "
                + " | ".join(f"{k} {s:.2f}" for k, s in top),
                flush=True,
            )

    def _line(self, record: dict) -> None:
        sys.stdout.write(json.dumps(finite(record), allow_nan=False) + "\n")  # NaN scores as null: strict JSON
        sys.stdout.flush()

    def close(self) -> None:
        if self.events:
            self.events.close()


def stream_windows(
    rec: Recognizer, frames: Iterable[tuple[float, np.ndarray]], buffer: ClipBuffer
) -> Iterator[tuple[float, np.ndarray]]:
    """Push (t, RGB frame) into the buffer; yield (clip end time, scores (K,)) whenever a prediction is due."""
    for t, frame in frames:
        buffer.push(frame, t)
        if buffer.due():
            clip, end = buffer.clip()
            yield end, rec.predict(clip).scores[0]


def run_recognize(args) -> int:
    """`stop-recognize`'s namespace -> `recognize(...)`: opens the model (and re-labels it) and the printer."""
    try:
        rec = Recognizer.open(args.model, args.backend, args.threads, plugin=args.plugin)
        bank = getattr(args, "bank", None)
        if rec.meta.task == "retrieval" and not args.labels and not bank:
            raise RecognizeError(
                f"{args.model} is a retrieval model: it has no labels of its own; give --labels "
                "FILE to classify with its text encoder (or --bank BANK.json from stop-teach), or "
                "search with stop-search"
            )
        if args.labels:
            from stop_train.labels import load_labels

            rec.set_labels(load_labels(args.labels))
        if bank:
            from .runtime.bank import LabelBank

            rec.set_bank(LabelBank.load(bank))
            for note in rec.notes:
                print(f"stop-recognize: note: {note}", file=sys.stderr)
            print(f"{len(rec.bank.classes)} class(es) from {bank}: scored by {rec.scoring}", file=sys.stderr)
            if len(rec.labels) < 2:
                raise RecognizeError(
                    f"{bank} and the model's labels give only {len(rec.labels)} class(es): scores are "
                    "shared out among the classes, give at least two (--labels, or teach another)"
                )
    except (BackendError, MetadataError, FileNotFoundError, ValueError) as err:
        raise RecognizeError(str(err)) from None
    printer = Printer(args.json, args.events)
    try:
        return recognize(
            rec,
            args.source,
            printer,
            protocol=args.protocol,
            top_k=args.top_k,
            predict_every_s=args.predict_every,
            frame_interval_s=args.frame_interval,
            events=EventCfg(args.smoothing, args.on, args.off, args.min_duration),
            max_seconds=args.max_seconds,
            reconnect=args.reconnect,
        )
    finally:
        printer.close()


def recognize(
    rec: Recognizer,
    source: str,
    printer: Printer,
    *,
    protocol: str = "live",
    top_k: int = 3,
    predict_every_s: float = 0.5,
    frame_interval_s: float | None = None,
    events: EventCfg | None = None,
    max_seconds: float = 0.0,
    reconnect: int | None = None,
) -> int:
    """Recognise `source` (file, camera or stream URL) and report through `printer`; returns 0.

    protocol 'eval': the test views of the whole file, one result. 'live': the clip buffer
    (`Recognizer.clip_buffer`), a window every `predict_every_s` seconds, events from `EventDetector`, and the
    mean over the windows at the end; `max_seconds` > 0 stops early; a lost camera or stream is retried under
    `ReconnectPolicy(reconnect)` (None: forever). Raises RecognizeError (its `exit_code`) with the reason.
    """
    if protocol == "eval":
        try:
            if SourceSpec.parse(source).live:
                raise RecognizeError("--protocol eval needs a video file (it samples the whole video)")
            pred = rec.predict_file(source)
        except SourceError as err:
            raise RecognizeError(str(err)) from None
        except (VideoReadError, OSError) as err:
            raise RecognizeError(f"cannot read {source}: {err}") from None
        printer.video(pred.top(top_k, rec.labels), "eval", 1)
        return 0
    buffer = rec.clip_buffer(predict_every_s, frame_interval_s)
    detector = EventDetector(rec.labels, events or EventCfg())
    total, windows = None, 0
    stop = threading.Event()
    frames = frames_from(
        source, max_seconds, ReconnectPolicy(reconnect), opened=lambda _source: buffer.clear(), stop=stop
    )  # no history across a reconnect
    with sigint_sets(stop):
        try:
            for end, scores in stream_windows(rec, frames, buffer):
                total = scores if total is None else total + scores
                windows += 1
                printer.window(end, top_k_of(scores, rec.labels, top_k))
                for event in detector.update(end, scores):
                    printer.event(event)
        finally:  # events still open when the source ends, is given up, or stdout's reader went away, are closed
            closing = list(detector.finish(buffer.latest))  # at its last frame; all kept before any is shown
            for event in closing:
                printer.record(event)
            for event in closing:
                printer.show(event)
    if total is None:
        raise RecognizeError(
            f"{source} ended after {buffer.latest or 0:.2f} s, before one clip ({buffer.span:.2f} s) "
            "was complete; try --protocol eval or a smaller --frame-interval"
        )
    printer.video(top_k_of(total / windows, rec.labels, top_k), "live", windows)
    return 0
