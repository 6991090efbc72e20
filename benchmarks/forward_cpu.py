"""CPU forward latency of STOP (both modes) beside a plain open_clip ViT on the same frames, in one run.

    .venv/bin/python benchmarks/forward_cpu.py [--preset stop-b32] [--threads 2] [--runs 10]

Random weights (no download). Prints the device, shapes, GFLOPs (torch's flop counter on the meta device:
matmuls and convolutions counted as direct convolutions), median and p90 latency, and each mode's ratio
to the plain ViT; one more row runs the official model with its prompter convolutions direct instead of by
FFT (`direct_convolutions`), as export, GPUs and the published code compute them.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import open_clip
import torch
from torch.utils.flop_counter import FlopCounterMode

from stop_train.config import load_config
from stop_train.model import create_model
from stop_train.model.layers import direct_convolutions


def measure(fns: dict, runs: int, warmup: int) -> dict[str, list[float]]:
    """Round-robin timing (each run times every candidate once), so drift on a shared machine hits all alike."""
    times = {name: [] for name in fns}
    for i in range(warmup + runs):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    return times


def gflops(build, inputs) -> float:
    """FLOPs of matmuls and convolutions, counted on the meta device (convolutions as direct convolutions)."""
    model = build("meta")
    counter = FlopCounterMode(display=False)
    with counter:
        model(inputs.to("meta"))
    return counter.get_total_flops() / 1e9


def _direct(fn):
    with direct_convolutions():
        return fn()


class _VideoEncoder(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, video):
        return self.model.encode_video(video)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="stop-b32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    cfg = load_config(args.preset)
    t, size = cfg.frames, cfg.vision.image_size
    video = torch.randn(1, t, 3, size, size)
    print(
        f"device: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, fp32"
    )
    print(f"input : {args.preset}, B=1, T={t}, {size}x{size}; {args.runs} runs after {args.warmup} warm-up")

    builders = {
        "plain ViT (open_clip, T frames)": (
            lambda dev: open_clip.create_model(cfg.clip_model, device=dev).visual,
            video[0],
        )
    }
    official = {"mode": "official", "mask_layout": "lattice", "text_postfix_prompts": cfg.text_prefix_prompts}
    for mode in ("official", "dynamic"):
        overrides = (
            {} if mode == cfg.mode else official if mode == "official" else {"mode": mode, "text_postfix_prompts": 0}
        )
        builders[f"STOP {mode}"] = (
            (lambda o: lambda dev: _VideoEncoder(create_model(args.preset, device=dev, **o)))(overrides),
            video,
        )

    flops, fns = {}, {}
    for name, (build, inputs) in builders.items():
        flops[name] = gflops(build, inputs)
        fns[name] = (lambda m, x: lambda: m(x))(build("cpu").eval(), inputs)
    # the same official model with the prompters' convolutions direct (what export and GPUs run, and how
    # the published code computes them)
    direct = "STOP official, direct convolutions"
    flops[direct], model = flops["STOP official"], fns["STOP official"]
    fns[direct] = lambda: _direct(model)
    with torch.inference_mode():
        times = measure(fns, args.runs, args.warmup)
    rows = []
    for name, ts in times.items():
        ts = sorted(ts)
        rows.append((name, flops[name], statistics.median(ts), ts[int(0.9 * (len(ts) - 1))]))
    base = rows[0][2]
    print(f"{'model':34s} {'GFLOP':>7s} {'median s':>9s} {'p90 s':>7s} {'x plain':>8s}")
    for name, flops, med, p90 in rows:
        print(f"{name:34s} {flops:7.1f} {med:9.3f} {p90:7.3f} {med / base:8.2f}")


if __name__ == "__main__":
    main()
