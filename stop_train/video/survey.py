"""`stop-train check FOLDER`: how each video of a dataset folder will be read, before training (torch-free).

Per file, one of: read exactly (`probe` proved the index from the packets, and one decoding pass agreed unless
--probe fast), read by decoding (the index comes from one decoding pass; the reason says what the packets could
not prove or where decoding disagreed), or unreadable and why (training
would skip it into `skipped_videos.json`). Results go to the probe cache training uses, so the run that
follows does not probe again.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from ..atomic import printable
from ..data.types import VIDEO_EXTENSIONS, parse_extensions
from .probe_cache import ProbeCache, probe_items

SUFFIXES = VIDEO_EXTENSIONS  # what the dataset indexers take


@dataclass(frozen=True)
class Verdict:
    path: Path
    status: str  # 'exact', 'packets' (--probe fast: not verified by decoding), 'decoding' or 'unreadable'
    reason: str = ""
    frames: int = 0
    fps: float = 0.0


def videos_under(folder: Path, suffixes: tuple[str, ...] = SUFFIXES) -> tuple[list[Path], Counter]:
    """(video files below `folder` by suffix, any case, sorted; the suffixes of the other files, counted).
    Hidden files and folders are left out, as the dataset indexers leave them."""
    found, other = [], Counter()
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in files:
            if f.startswith("."):
                continue
            if f.lower().endswith(suffixes):
                found.append(Path(root) / f)
            else:
                other[os.path.splitext(f)[1].lower() or "(none)"] += 1
    return sorted(found), other


def survey(paths: list[Path], cache: ProbeCache, progress=None, exact: bool = True) -> list[Verdict]:
    """A Verdict per path, probed through `cache` on threads (`probe_items`; `exact`: each verified by decoding it
    once). `progress(iterable, total=n)` wraps the probes of the files not cached."""
    items = [SimpleNamespace(path=p) for p in paths]
    usable, infos, skipped = probe_items(items, cache, progress, exact=exact)
    by_path = {os.fspath(item.path): info for item, info in zip(usable, infos)}
    reasons = dict(skipped)
    out = []
    for path in paths:
        info = by_path.get(os.fspath(path))
        if info is None:
            out.append(Verdict(path, "unreadable", reasons.get(os.fspath(path), "")))
        else:
            status = "decoding" if info.method != "packets" else "exact" if exact else "packets"
            out.append(Verdict(path, status, info.why, info.frames, info.fps))
    return out


def add_arguments(parser: argparse.ArgumentParser, runs_root: Path = Path("runs")) -> None:
    """The arguments of `stop-train check` (runs_root: where training keeps its probe cache)."""
    parser.add_argument("folder", type=Path, help="dataset folder (searched recursively)")
    parser.add_argument(
        "--probe-cache",
        type=Path,
        default=runs_root / ".probe-cache.json",
        help="probe cache shared with training (default %(default)s)",
    )
    parser.add_argument(
        "--extensions",
        default="",
        help=f"comma-separated video suffixes, as stop-train takes them (default {','.join(SUFFIXES)})",
    )
    parser.add_argument("--quiet", action="store_true", help="list only the videos that are not read exactly")
    parser.add_argument(
        "--probe",
        choices=("exact", "fast"),
        default="exact",
        help="exact (default): decode every video once, which finds packets the decoder rejects "
        "(damaged slices); fast: from the packets only, as stop-train --probe fast reads them",
    )
    parser.add_argument("--decode", action="store_true", help=argparse.SUPPRESS)  # the default now


def main(argv: list[str] | None = None, runs_root: Path = Path("runs")) -> int:
    """`stop-train check` on its own: parse argv, then `check`."""
    parser = argparse.ArgumentParser(prog="stop-train check", description=__doc__.split("\n\n")[0])
    add_arguments(parser, runs_root)
    return check(parser.parse_args(argv), parser)


def check(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Probe every video under args.folder and print a verdict each. Exit 0 when every video is usable, 1 when
    some are unreadable, 2 for a folder that holds none."""
    if not args.folder.is_dir():
        parser.exit(2, f"stop-train check: {printable(args.folder)} is not a folder\n")
    suffixes = parse_extensions(args.extensions) or SUFFIXES
    paths, other = videos_under(args.folder, suffixes)
    ignored = ", ".join(f"{n} {suffix}" for suffix, n in other.most_common())
    if not paths:
        parser.exit(
            2,
            f"stop-train check: no video files ({', '.join(suffixes)}) under {printable(args.folder)}"
            + (f"; other files: {ignored} (--extensions takes more suffixes)" if ignored else "")
            + "\n",
        )
    tty = sys.stderr.isatty()
    cache, start = ProbeCache(args.probe_cache), time.monotonic()
    verdicts = survey(paths, cache, _counter if tty else None, exact=args.probe == "exact")
    try:
        cache.save()
    except OSError as err:
        print(
            f"stop-train check: could not save the probe cache ({err}); the results below are complete", file=sys.stderr
        )
    return _report(verdicts, args, suffixes, ignored, time.monotonic() - start)


def _report(verdicts, args: argparse.Namespace, suffixes, ignored: str, seconds: float) -> int:
    """Print one line per video (args.quiet: only those not read exactly) and the totals; 1 when some video is
    unreadable."""
    words = {
        "exact": "read exactly",
        "packets": "packets only",
        "decoding": "read by decoding",
        "unreadable": "unreadable",
    }
    for v in verdicts:
        if args.quiet and v.status in ("exact", "packets"):
            continue
        name = printable(v.path.relative_to(args.folder))
        detail = f"{v.frames} frames, {v.fps:.3g} fps" if v.status != "unreadable" else ""
        detail = "; ".join(x for x in (v.reason, detail) if x)
        print(f"{words[v.status]:17s} {name}" + (f"  ({detail})" if detail else ""))
    counts = {s: sum(v.status == s for v in verdicts) for s in words}
    fast = (
        f"{counts['packets']} indexed from their packets only (--probe fast: not checked by decoding, which "
        "finds packets the decoder rejects), "
        if args.probe == "fast"
        else ""
    )
    print(
        f"checked {len(verdicts)} videos in {seconds:.1f} s: {counts['exact']} read exactly, {fast}"
        f"{counts['decoding']} read by decoding, {counts['unreadable']} unreadable"
        + (" (training skips these)" if counts["unreadable"] else "")
    )
    if ignored:
        hint = "" if args.extensions else "; stop-train reads them only with --extensions"
        print(f"not checked (not {','.join(suffixes)}{hint}): {ignored}")
    return 1 if counts["unreadable"] else 0


def _counter(iterable, total: int):
    """'probing i/n' on one terminal line."""
    for i, x in enumerate(iterable, 1):
        print(f"\rprobing {i}/{total}", end="", file=sys.stderr, flush=True)
        yield x
    print(file=sys.stderr)
