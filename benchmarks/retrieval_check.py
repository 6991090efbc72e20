"""Retrieval learning check: `tiny` from scratch on synthetic-captions (MSR-VTT layout), on the CPU.

    .venv/bin/python benchmarks/retrieval_check.py [--epochs 16] [--runs-root runs/retrieval-check]
    (or the two runs side by side: --only dynamic --threads 1 & --only shuffled --threads 1, then --reuse)

Two runs of `stop-train --task retrieval`: dynamic mode, and dynamic mode with every clip's frame order
shuffled at train and test time (the control). The test split holds one video per (colour, shape, motion),
so every test caption is unique (a hit is the captioned video only; chance R@1 = 1 / test videos).
Motions come in time-reversed pairs, so the direction is only in the frame order. Printed per run:
text->video R@1/5/10 and MdR over the test split, and the twin check: for each test caption, whether the
model scores its video above the same clip played backwards (frames reversed in time).
Targets (issue 14): dynamic t2v R@1 >= 30 %; twin check dynamic >= 90 %, shuffled <= 60 %.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import torch

from stop_train.cli import main as stop_train
from stop_train.data.captions import open_caption_dataset
from stop_train.data.synthetic_captions import SyntheticCaptionsSpec, write_synthetic_captions
from stop_train.model import load_model
from stop_train.video import PreprocessCfg, SamplingCfg, normalize_frames
from stop_train.video.decode import probe_exact
from stop_train.video.views import eval_views


@torch.no_grad()
def twin_check(run_dir: Path, data_root: Path) -> tuple[float, int]:
    """Fraction of test captions whose video outscores its time-reversed clip, and the count."""
    model = load_model(
        run_dir / "checkpoints" / ("best" if (run_dir / "checkpoints" / "best").is_dir() else "last")
    ).eval()
    cfg = model.cfg
    config = json.loads((run_dir / "config.json").read_text())
    sampling = SamplingCfg(**{**config["sampling"], "test_clips": 1, "test_crops": 1})
    pre = PreprocessCfg.for_model(cfg)
    test = open_caption_dataset("synthetic-captions", data_root, val_fraction=0).splits["test"]
    clips = np.stack(
        [eval_views(v.path, probe_exact(v.path), sampling, pre)[0] for v in test.videos]
    )  # (N, T, S, S, 3)
    forward = torch.from_numpy(normalize_frames(clips, pre))
    video = model.encode_video(forward)
    backward = model.encode_video(forward.flip(1))
    text = model.encode_text(model.tokenize(test.captions))
    own = torch.as_tensor(test.video_of_caption)
    above = (text * video[own]).sum(-1) > (text * backward[own]).sum(-1)
    return float(above.float().mean()), len(above)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--train-per-combo", type=int, default=4, help="training videos per (colour, shape, motion)")
    parser.add_argument("--runs-root", type=Path, default=Path("runs/retrieval-check"))
    parser.add_argument("--only", choices=("dynamic", "shuffled"), action="append")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (1 each for two runs side by side)")
    parser.add_argument("--reuse", action="store_true", help="report a finished run again instead of training it")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = args.runs_root / "data"
    write_synthetic_captions(data, SyntheticCaptionsSpec(train_per_combo=args.train_per_combo, train_captions=1))
    common = [
        "--task",
        "retrieval",
        "--dataset",
        "synthetic-captions",
        "--data-root",
        str(data),
        "--preset",
        "tiny",
        "--pretrained",
        "none",
        "--model",
        f"frames={args.frames}",
        "--epochs",
        str(args.epochs),
        "--batch-size",
        str(args.batch_size),
        "--workers",
        "1",
        "--lr",
        str(args.lr),
        "--decay-exclude",
        "bias-norm-prompt",
    ]
    plans = {"dynamic": [], "shuffled": ["--shuffle-frames"]}
    rows = []
    for name, extra in plans.items():
        if args.only and name not in args.only:
            continue
        run_dir = args.runs_root / name
        if not (args.reuse and (run_dir / "test_metrics.json").is_file()):
            if stop_train([*common, "--run-dir", str(run_dir), *extra]) != 0:
                raise SystemExit(f"{name}: stop-train failed")
        metrics = json.loads((run_dir / "test_metrics.json").read_text())
        twin, count = twin_check(run_dir, data)
        with open(run_dir / "metrics.csv", encoding="utf-8") as f:
            training_s = float(list(csv.DictReader(f))[-1]["elapsed_s"])
        rows.append((name, metrics, twin, count, training_s / 60))
    print(
        f"\nCPU threads {torch.get_num_threads()}; epochs {args.epochs}, batch {args.batch_size}, lr {args.lr}, "
        f"frames {args.frames}, {args.train_per_combo} training videos per combination"
    )
    print(
        f"{'run':10s} {'t2v R@1':>8s} {'R@5':>6s} {'R@10':>6s} {'MdR':>5s} {'v2t R@1':>8s} {'twin':>6s} {'videos':>6s} {'train min':>9s}"
    )
    for name, m, twin, count, minutes in rows:
        print(
            f"{name:10s} {m['t2v_R1']:8.1f} {m['t2v_R5']:6.1f} {m['t2v_R10']:6.1f} {m['t2v_MdR']:5g} "
            f"{m['v2t_R1']:8.1f} {100 * twin:5.1f}% {count:6d} {minutes:9.1f}"
        )
    if rows:
        print(f"chance t2v R@1: {100 / rows[0][3]:.2f} % ({rows[0][3]} test videos, unique captions)")


if __name__ == "__main__":
    main()
