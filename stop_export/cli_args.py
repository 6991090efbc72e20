"""Command-line pieces shared by the console scripts (torch-free): number checks that fail as one usage line, the
event settings (`stop-recognize` and `stop-gui` take the same flags with the same defaults), clip ranges
(VIDEO@START-END), and quiet exits for a closed standard output."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from stop_train.errors import ConfigError

from .runtime.events import EventCfg

SIGPIPE_EXIT = 141  # 128 + SIGPIPE: what a shell reports for a writer whose reader went away


def stdout_closed() -> int:
    """Call when stdout can take no more: its reader went away (BrokenPipeError: `stop-recognize ... | head -3`),
    or it is full. Points stdout at /dev/null so that the interpreter's final flush does not raise again, and
    returns the exit status for a reader that went away (SIGPIPE_EXIT), so the command stops quietly, as Unix
    tools do."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return SIGPIPE_EXIT


def settle_stdout() -> None:
    """After an OSError: when it was stdout that failed (a full disk, a closed reader), what it still holds cannot
    be written either; point it at /dev/null so the interpreter's final flush does not fail again."""
    try:
        sys.stdout.flush()
    except OSError:
        stdout_closed()


def in_range(kind, low: float, high: float = float("inf"), low_open: bool = False):
    """argparse type: a number in [low, high] ((low, high] with low_open), NaN refused, as one usage line."""

    def parse(text: str):
        value = kind(text)
        if not ((value > low) if low_open else (value >= low)) or not value <= high:
            bound = (
                f"{'(' if low_open else '['}{low:g}, {high:g}]"
                if high != float("inf")
                else f"{'>' if low_open else '>='} {low:g}"
            )
            raise argparse.ArgumentTypeError(f"must be {'in ' if high != float('inf') else ''}{bound}, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def non_negative(kind):
    def parse(text: str):
        value = kind(text)
        if not value >= 0:  # NaN too
            raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def add_event_arguments(p: argparse.ArgumentParser) -> None:
    """--on, --off, --smoothing, --min-duration with `EventCfg`'s defaults."""
    d = EventCfg()
    p.add_argument(
        "--on",
        type=in_range(float, 0, 1),
        default=d.on,
        help="event start threshold on the smoothed score (default %(default)s)",
    )
    p.add_argument(
        "--off", type=in_range(float, 0, 1), default=d.off, help="event end threshold, <= --on (default %(default)s)"
    )
    p.add_argument(
        "--smoothing",
        type=in_range(float, 0, 1, low_open=True),
        default=d.smoothing,
        help="EMA weight of the newest scores, in (0, 1] (default %(default)s)",
    )
    p.add_argument(
        "--min-duration",
        type=non_negative(float),
        default=d.min_duration_s,
        metavar="SECONDS",
        help="shorter events are dropped (default %(default)s)",
    )


def event_cfg(parser: argparse.ArgumentParser, args: argparse.Namespace) -> EventCfg:
    """The EventCfg of parsed `add_event_arguments` flags; a usage error (exit 2) when --off > --on."""
    if args.off > args.on:
        parser.error(f"--off {args.off} must not exceed --on {args.on} (hysteresis)")
    return EventCfg(args.smoothing, args.on, args.off, args.min_duration)


_TIME = r"(?:\d+:[0-5]?\d(?:\.\d*)?|\d+(?:\.\d*)?)"  # seconds, or m:ss with ss < 60
_RANGE = re.compile(rf"^(?P<start>{_TIME})?-(?P<end>{_TIME})?$")


def seconds(text: str) -> float:
    """'12.5', '1:05' or '1:02:03.5' -> seconds."""
    value = 0.0
    for part in text.split(":"):
        value = value * 60 + float(part)
    return value


def parse_clip(item: str) -> tuple[Path, float | None, float | None]:
    """VIDEO, VIDEO@START-END, VIDEO@START- or VIDEO@-END (seconds or m:ss) -> (path, start, end). A path that
    exists as given is a whole file, even with an @ in its name. Raises ValueError for a bad range."""
    path, at, tail = item.rpartition("@")
    if not at or Path(item).expanduser().exists():
        return Path(item).expanduser(), None, None
    m = _RANGE.match(tail.strip())
    if not m or not (m["start"] or m["end"]):
        raise ConfigError(
            f"{item}: the time range must be START-END, START- or -END in seconds or m:ss, "
            f"e.g. {path}@12-15.5 or {path}@1:02-1:06"
        )
    start = seconds(m["start"]) if m["start"] else None
    end = seconds(m["end"]) if m["end"] else None
    if start is not None and end is not None and end <= start:
        raise ConfigError(
            f"{item}: the range is empty (it ends where it starts)"
            if end == start
            else f"{item}: the range ends ({end:g} s) before it starts ({start:g} s)"
        )
    return Path(path).expanduser(), start, end
