"""The whole differential corpus through every reader against ffmpeg, and what indexing by decoding costs.

    python benchmarks/corpus_check.py [--cuts 6] [--dataset 200] [--work /tmp/corpus-check]

1. Corpus: every variant of `tests/realvideos.py` plus `--cuts` more stream-copy cuts per source and container
   at random points; each checked by `tests/differential.check` (equal to ffmpeg, or one clear refusal). Prints
   one line per file and the counts; exits 1 on any mismatch.
2. Cost: `--dataset` UCF101-like clips (320x240, 25 fps, ~7 s, MPEG-4 Part 2 in AVI, as UCF101 ships) indexed
   side by side in one run: from their packets (`--probe fast`), exactly (`probe_exact`: packets verified by one
   decoding pass, training's default) one after another, and exactly on threads as training probes a dataset
   (`probe_items`); ms per video and ratios, and the same for the 640x272 H.264 source.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import realvideos  # noqa: E402
from differential import check  # noqa: E402
from videofiles import ffmpeg  # noqa: E402


def extra_cuts(root: Path, count: int, seed: int) -> list[Path]:
    """`count` stream-copy cuts per source clip and kind at random times: mid-GOP (output seeking, non-key
    packets kept) into MKV, MPEG-TS and MP4 without an edit list, and MP4 cut with an edit list (input seeking)."""
    rng, out = np.random.default_rng(seed), []
    for src, length in (("bikes.mp4", 10.0), ("bigbuckbunny.mp4", 5.3), ("carphone_pristine.mp4", 4.0)):
        source = realvideos.source_dir() / src
        for kind in ("mkv", "ts", "noedit.mp4", "editlist.mp4"):
            for _ in range(count):
                at = round(float(rng.uniform(0.05, 0.8)) * length, 3)
                dst = root / f"{src.split('.')[0].split('_')[0]}-cut{at:g}s.{kind}"
                if kind == "editlist.mp4":
                    ffmpeg("-ss", at, "-i", source, "-map", "0:v:0", "-c", "copy", dst)
                else:
                    extra = ("-use_editlist", "0") if kind == "noedit.mp4" else ()
                    ffmpeg("-i", source, "-map", "0:v:0", "-c", "copy", "-ss", at, "-copyinkf", *extra, dst)
                out.append(dst)
    return out


def corpus(work: Path, cuts: int) -> int:
    files = list(realvideos.build(work / "corpus").values()) + extra_cuts(work / "corpus", cuts, seed=2024)
    counts: dict[str, int] = {}
    start = time.monotonic()
    for path in files:
        res = check(path)
        counts[res.outcome] = counts.get(res.outcome, 0) + 1
        print(f"{res.outcome:9s} {res.name:40s} {res.detail} {'; '.join(res.problems[:2])}", flush=True)
    print(
        f"corpus: {len(files)} files in {time.monotonic() - start:.0f} s: "
        + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    )
    return counts.get("MISMATCH", 0)


def cost(work: Path, count: int) -> None:
    from types import SimpleNamespace

    from stop_train.video.index import probe, probe_exact
    from stop_train.video.probe_cache import ProbeCache, probe_items

    folder = work / "dataset"
    folder.mkdir(parents=True, exist_ok=True)
    src = realvideos.source_dir() / "bikes.mp4"
    ucf = folder / "ucf-like.avi"
    ffmpeg(
        "-i",
        src,
        "-t",
        "7",
        "-vf",
        "scale=320:240",
        "-r",
        "25",
        "-c:v",
        "mpeg4",
        "-vtag",
        "XVID",
        "-q:v",
        "5",
        "-an",
        ucf,
    )
    for name, one in (("UCF101-like 320x240 MPEG-4 AVI, 7 s", ucf), ("640x272 H.264 MP4, 10 s, 6 GOPs", src)):
        paths = []
        for i in range(count):
            dst = folder / f"{i:04d}{one.suffix}"
            shutil.copyfile(one, dst)  # a distinct file each: no OS cache advantage beyond the page cache
            paths.append(dst)
        ms = {}
        for how, run in (
            ("fast", lambda: [probe(p) for p in paths]),
            ("exact", lambda: [probe_exact(p) for p in paths]),
            ("exact-threads", lambda: probe_items([SimpleNamespace(path=p) for p in paths], ProbeCache(None))),
        ):
            t0 = time.monotonic()
            run()
            ms[how] = (time.monotonic() - t0) / count * 1e3
        print(
            f"{name}: fast {ms['fast']:.1f} ms/video, exact {ms['exact']:.1f} ({ms['exact'] / ms['fast']:.1f}x), "
            f"exact on threads {ms['exact-threads']:.1f} ({ms['exact-threads'] / ms['fast']:.1f}x); 13,320 videos "
            f"(UCF101 size): {ms['fast'] * 13.32 / 60:.1f} / {ms['exact'] * 13.32 / 60:.1f} / "
            f"{ms['exact-threads'] * 13.32 / 60:.1f} min",
            flush=True,
        )
        for p in paths:
            p.unlink()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cuts", type=int, default=6, help="extra random cuts per source and container")
    parser.add_argument("--dataset", type=int, default=200, help="videos in the cost measurement")
    parser.add_argument("--work", type=Path, default=Path("build/corpus-check"))
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    mismatches = corpus(args.work, args.cuts)
    cost(args.work, args.dataset)
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
