"""The runtime's frame reader: (time, RGB frame) pairs from the frame source (`stop_train.video.source`), a
file or a camera/stream reopened under a reconnect policy, with the runtime's errors and Ctrl-C handling."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from stop_train.video.decode import VideoReadError
from stop_train.video.source import ReconnectPolicy, SourceError, SourceLost, SourceSpec, live_frames, open_source

from .errors import RecognizeError, SourceGaveUp


def frames_from(
    source: str,
    max_seconds: float = 0.0,
    policy: ReconnectPolicy | None = None,
    notify=None,
    opened=None,
    stop: threading.Event | None = None,
) -> Iterator[tuple[float, np.ndarray]]:
    """(time in seconds, RGB uint8 frame) from the frame source: a file (its frames' own times), or a camera or
    stream (reopened under `policy` when lost, `opened` called at each (re)opening; raises SourceGaveUp when
    it gives up, and KeyboardInterrupt when `stop` was set, see `sigint_sets`)."""
    try:
        spec = SourceSpec.parse(source)
        src = None if spec.live else open_source(spec)
    except SourceError as err:
        raise RecognizeError(str(err)) from None
    try:
        frames = (
            src.frames()
            if src is not None
            else live_frames(spec, policy or ReconnectPolicy(), notify or _warn, stop, opened)
        )
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
