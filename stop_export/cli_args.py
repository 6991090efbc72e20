"""Command-line pieces shared by `stop-recognize` and `stop-gui` (torch-free): number checks that fail as one
usage line, and the event settings, so both tools take the same flags with the same defaults."""

from __future__ import annotations

import argparse
import os
import sys

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
    p.add_argument("--on", type=in_range(float, 0, 1), default=d.on, help="event start threshold on the smoothed score")
    p.add_argument("--off", type=in_range(float, 0, 1), default=d.off, help="event end threshold (<= --on)")
    p.add_argument(
        "--smoothing",
        type=in_range(float, 0, 1, low_open=True),
        default=d.smoothing,
        help="EMA weight of the newest scores, in (0, 1]",
    )
    p.add_argument(
        "--min-duration",
        type=non_negative(float),
        default=d.min_duration_s,
        metavar="SECONDS",
        help="shorter events are dropped",
    )


def event_cfg(parser: argparse.ArgumentParser, args: argparse.Namespace) -> EventCfg:
    """The EventCfg of parsed `add_event_arguments` flags; a usage error (exit 2) when --off > --on."""
    if args.off > args.on:
        parser.error(f"--off {args.off} must not exceed --on {args.on} (hysteresis)")
    return EventCfg(args.smoothing, args.on, args.off, args.min_duration)
