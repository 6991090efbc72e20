"""`stop-train check FOLDER`: how each video of a dataset folder will be read, before training (torch-free).

Per file, one of: read exactly (`probe` proved the index from the packets), read by decoding (the index comes
from one decoding pass; the reason says what the packets could not prove), or unreadable and why (training
would skip it into `skipped_videos.json`). Results go to the probe cache training uses, so the run that
follows does not probe again.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..data.types import VIDEO_EXTENSIONS
from .libav import VideoReadError
from .probe_cache import ProbeCache

SUFFIXES = VIDEO_EXTENSIONS  # what the dataset indexers take


@dataclass(frozen=True)
class Verdict:
    path: Path
    status: str  # 'exact', 'decoding' or 'unreadable'
    reason: str = ""
    frames: int = 0
    fps: float = 0.0


def printable(path: os.PathLike | str) -> str:
    """A path as text any terminal shows: bytes that are not UTF-8 as \\xNN."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def videos_under(folder: Path) -> list[Path]:
    """Video files below `folder` (by suffix, any case), sorted; hidden files and folders left out."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(root) / f for f in files if not f.startswith(".") and f.lower().endswith(SUFFIXES)]
    return sorted(found)


def survey(paths: list[Path], cache: ProbeCache, progress=None) -> list[Verdict]:
    """A Verdict per path (probed through `cache`); `progress(i, n)` after each."""
    out = []
    for i, path in enumerate(paths, 1):
        try:
            info = cache.probe(path)
        except VideoReadError as err:
            out.append(Verdict(path, "unreadable", str(err)))
        else:
            status = "exact" if info.method == "packets" else "decoding"
            out.append(Verdict(path, status, info.why, info.frames, info.fps))
        if progress:
            progress(i, len(paths))
    return out


def main(argv: list[str] | None = None, runs_root: Path = Path("runs")) -> int:
    """Exit 0 when every video is usable, 1 when some are unreadable, 2 for a folder that holds none."""
    parser = argparse.ArgumentParser(prog="stop-train check", description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="dataset folder (searched recursively)")
    parser.add_argument("--probe-cache", type=Path, default=runs_root / ".probe-cache.json",
                        help="probe cache shared with training (default %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="list only the videos that are not read exactly")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        parser.exit(2, f"stop-train check: {printable(args.folder)} is not a folder\n")
    paths = videos_under(args.folder)
    if not paths:
        parser.exit(2, f"stop-train check: no video files ({', '.join(SUFFIXES)}) under {printable(args.folder)}\n")
    tty = sys.stderr.isatty()
    cache, start = ProbeCache(args.probe_cache), time.monotonic()
    verdicts = survey(paths, cache, (lambda i, n: print(f"\rprobing {i}/{n}", end="", file=sys.stderr)) if tty else None)
    if tty:
        print(file=sys.stderr)
    try:
        cache.save()
    except OSError as err:
        print(f"stop-train check: could not save the probe cache ({err}); the results below are complete", file=sys.stderr)
    words = {"exact": "read exactly", "decoding": "read by decoding", "unreadable": "unreadable"}
    for v in verdicts:
        if args.quiet and v.status == "exact":
            continue
        name = printable(v.path.relative_to(args.folder))
        detail = f"{v.frames} frames, {v.fps:.3g} fps" if v.status != "unreadable" else ""
        detail = "; ".join(x for x in (v.reason, detail) if x)
        print(f"{words[v.status]:17s} {name}" + (f"  ({detail})" if detail else ""))
    counts = {s: sum(v.status == s for v in verdicts) for s in words}
    print(f"checked {len(verdicts)} videos in {time.monotonic() - start:.1f} s: {counts['exact']} read exactly, "
          f"{counts['decoding']} read by decoding, {counts['unreadable']} unreadable"
          + (" (training skips these)" if counts["unreadable"] else ""))
    return 1 if counts["unreadable"] else 0
