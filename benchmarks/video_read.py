"""Clip reading speed of the frame source beside the reader it replaced, in one run.

    .venv/bin/python benchmarks/video_read.py [--cache runs/.bench-video] [--runs 20] [--long-runs 3]
                                              [--legacy-rev 8f49637]

Two generated H.264 files (x264 defaults, key frame interval 250, testsrc2 pattern, 30 fps): 10 minutes at
1080p (made once, about 10 minutes on 2 cores, then cached) and a 10 s clip at 1080p. For each file: probe
time, then clips/s reading 8 frames of a random TSN training clip (the same indices for both readers,
round-robin). The old reader is `stop_train/video/decode.py` as of `--legacy-rev` (git), loaded from git.
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from videofiles import ffmpeg_exe  # noqa: E402

from stop_train.video import decode  # noqa: E402
from stop_train.video.sampling import segment_indices  # noqa: E402


def legacy_reader(rev: str):
    """The decode module of `rev`, imported from git under another name."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:stop_train/video/decode.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    spec = importlib.util.spec_from_loader("legacy_decode", loader=None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    exec(compile(source, f"{rev}:decode.py", "exec"), module.__dict__)
    return module


def make(path: Path, seconds: int) -> Path:
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"writing {path} ({seconds} s of 1080p H.264) ...", flush=True)
        tmp = path.with_suffix(".tmp.mp4")
        subprocess.run(
            [
                ffmpeg_exe(),
                "-hide_banner",
                "-loglevel",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=1920x1080:rate=30",
                "-t",
                str(seconds),
                "-c:v",
                "libx264",
                "-g",
                "250",
                "-pix_fmt",
                "yuv420p",
                str(tmp),
            ],
            check=True,
        )
        tmp.replace(path)
    return path


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def bench(path: Path, old, runs: int, frames: int = 8) -> None:
    t_old, info_old = timed(lambda: old.probe(path))
    t_new, info = timed(lambda: decode.probe(path))
    assert info_old.frames == info.frames, (info_old.frames, info.frames)
    rng = np.random.default_rng(0)
    clips = [segment_indices(info.frames, frames, rng) for _ in range(runs)]
    times = {"old": [], "new": []}
    for indices in clips:  # round-robin: drift hits both alike
        dt, a = timed(lambda: old.read_frames(path, indices, info_old))
        times["old"].append(dt)
        dt, b = timed(lambda: decode.read_frames(path, indices, info))
        times["new"].append(dt)
        same = np.array_equal(a, b)
    speed = {k: 1.0 / statistics.median(v) for k, v in times.items()}
    print(f"\n{path.name}: {info.frames} frames, {info.width}x{info.height}, key frames {len(info.keyframes)}")
    print(f"  probe        old {t_old:7.3f} s   new {t_new:7.3f} s")
    print(
        f"  clips/s      old {speed['old']:7.3f}     new {speed['new']:7.3f}     new/old {speed['new'] / speed['old']:.2f}x"
        f"   ({runs} clips of {frames} frames; last clip equal in both: {same})"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cache", type=Path, default=ROOT / "runs" / ".bench-video")
    p.add_argument("--runs", type=int, default=20, help="clips read from the 10 s file")
    p.add_argument("--long-runs", type=int, default=3, help="clips read from the 10-minute file")
    p.add_argument("--legacy-rev", default="8f49637", help="git revision of the reader to compare with")
    args = p.parse_args()
    import av

    print(f"{platform.processor() or platform.machine()}, PyAV {av.__version__}, legacy reader {args.legacy_rev}")
    old = legacy_reader(args.legacy_rev)
    bench(make(args.cache / "clip-10s-1080p.mp4", 10), old, args.runs)
    bench(make(args.cache / "long-10min-1080p.mp4", 600), old, args.long_runs)


if __name__ == "__main__":
    main()
