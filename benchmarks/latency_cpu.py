"""CPU latency of the exported classifier on every CPU backend the runtime offers, beside PyTorch eager and
a plain open_clip ViT on the same frames, timed round-robin in one run.

    .venv/bin/python benchmarks/latency_cpu.py [--preset stop-b32] [--threads 2] [--runs 10] [--workdir DIR]

Random weights (no download): both modes are exported to ONNX first (cached in --workdir). Prints GFLOPs
per part (torch's counter on the meta device), median and p90 latency, and ratios to the plain ViT.
Target (the export issue): the fastest FP32 backend <= 1.4x the plain ViT, in each mode; the PyTorch bf16
rows (CPUs with AVX512-BF16/AMX) print their error and top-1 agreement against FP32.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import open_clip
import torch
from forward_cpu import measure
from torch.utils.flop_counter import FlopCounterMode

from stop_export.onnx.check import check_clips
from stop_export.onnx.export import export_video
from stop_export.runtime.backends import OrtBackend, available_ort_providers
from stop_train.config import load_config
from stop_train.labels import load_labels
from stop_train.model import create_model
from stop_train.model.deploy import ExportSource, VideoClassifier, build_metadata
from stop_train.tolerances import TOP1_MARGIN_FACTOR, relative_error
from stop_train.video import PreprocessCfg, SamplingCfg

PARTS = {"spatial": "spatial prompter", "temporal": "temporal prompter", "prompts": "prompt generator"}


def overrides_for(cfg, mode: str) -> dict:
    if mode == cfg.mode:
        return {}
    if mode == "official":
        return {"mode": "official", "mask_layout": "lattice", "text_postfix_prompts": cfg.text_prefix_prompts}
    return {"mode": mode, "text_postfix_prompts": 0, "mask_layout": "patch"}


def flop_parts(module: torch.nn.Module, frames: torch.Tensor) -> dict[str, float]:
    """GFLOPs of the video forward (matmuls and convolutions) by part; the ViT blocks run through the
    model's own attention, so they are the total minus the prompters."""
    counter = FlopCounterMode(display=False)
    with counter:
        module(frames)
    counts = {name: sum(ops.values()) / 1e9 for name, ops in counter.get_flop_counts().items()}
    parts = {
        label: next((v for n, v in counts.items() if n.endswith(f"model.{key}")), 0.0) for key, label in PARTS.items()
    }
    parts["ViT and the rest"] = counts["Global"] - sum(parts.values())
    parts["total"] = counts["Global"]
    return parts


def bf16_error(fp32, bf16, frames: int, size: int, count: int) -> str:
    """bf16 vs FP32 PyTorch on generated clips: embedding error, and top-1 agreement (all clips, and those
    whose top-2 margin exceeds TOP1_MARGIN_FACTOR x the logits error)."""
    clips = torch.from_numpy(check_clips(frames, size, count, seed=1))
    with torch.inference_mode():
        a, b = fp32(clips), bf16(clips)
    cosine = torch.nn.functional.cosine_similarity(a[1], b[1]).min().item()
    err = (a[0] - b[0]).abs().max().item()
    top2 = a[0].topk(2, dim=-1).values
    clear = (top2[:, 0] - top2[:, 1]) > TOP1_MARGIN_FACTOR * err
    agree = a[0].argmax(-1) == b[0].argmax(-1)
    clear_text = f"{agree[clear].float().mean().item():.3f} on {int(clear.sum())}" if clear.any() else "n/a on 0"
    return (
        f"embedding relative error {relative_error(b[1], a[1]):.2e}, min cosine {cosine:.5f}; top-1 agreement "
        f"{agree.float().mean().item():.3f} on all {count} clips, {clear_text} clear-margin clips "
        f"(random weights: small margins)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="stop-b32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "stop-latency")
    parser.add_argument("--no-bf16", dest="bf16", action="store_false", help="skip the PyTorch bf16 rows")
    parser.add_argument("--check-clips", type=int, default=16, help="clips for the bf16 error and agreement")
    parser.add_argument(
        "--ort-python",
        action="append",
        default=[],
        metavar="PYTHON",
        help="also time the exported files with the onnxruntime build of another environment "
        "(e.g. one with onnxruntime-openvino), in a separate process after this run",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = load_config(args.preset)
    t, size = cfg.frames, cfg.vision.image_size
    frames = np.random.default_rng(0).integers(0, 256, (1, t, size, size, 3), dtype=np.uint8)
    labels = load_labels("ucf101")
    pre = PreprocessCfg.for_model(cfg)
    print(
        f"device: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{args.threads} threads, fp32; ONNX Runtime providers: {', '.join(available_ort_providers())}"
    )
    print(f"input : {args.preset}, B=1, T={t}, {size}x{size} uint8; {args.runs} runs after {args.warmup} warm-up")

    fns, flops, bf16_checks = {}, {}, {}
    plain = open_clip.create_model(cfg.clip_model).visual.eval()
    video = torch.from_numpy(frames).permute(0, 1, 4, 2, 3).float()[0] / 255.0
    fns["plain ViT (open_clip, torch)"] = lambda: plain(video)
    for mode in ("official", "dynamic"):
        model = create_model(args.preset, **overrides_for(cfg, mode)).eval()
        with torch.no_grad():
            text = model.encode_labels(labels)
        wrapper = VideoClassifier(model, text, pre).eval()
        meta_model = (
            VideoClassifier(create_model(args.preset, device="meta", **overrides_for(cfg, mode)), text.to("meta"), pre)
            .to("meta")
            .eval()
        )
        flops[mode] = flop_parts(meta_model, torch.from_numpy(frames).to("meta"))
        path = args.workdir / f"{args.preset}-{mode}.onnx"
        if not path.is_file():
            print(f"exporting {mode} -> {path} ...", flush=True)
            src = ExportSource(model, labels, "a video of a person {label}.", SamplingCfg(frames=t), pre, args.preset)
            export_video(src, path, build_metadata(src))
        x = torch.from_numpy(frames)
        fns[f"STOP {mode}: PyTorch eager"] = (lambda w: lambda: w(x))(wrapper)
        if args.bf16:
            half = create_model(args.preset, **overrides_for(cfg, mode)).eval()
            half.load_state_dict(model.state_dict())
            half_wrapper = VideoClassifier(half.to(torch.bfloat16), text, pre).eval()
            fns[f"STOP {mode}: PyTorch eager bf16"] = (lambda w: lambda: w(x))(half_wrapper)
            bf16_checks[mode] = bf16_error(wrapper, half_wrapper, t, size, args.check_clips)
        for provider in available_ort_providers():
            if provider in ("cpu", "openvino"):
                backend = OrtBackend(path, provider, threads=args.threads)
                fns[f"STOP {mode}: ORT {provider}"] = (lambda b: lambda: b.run(frames))(backend)

    for mode, parts in flops.items():
        print(f"GFLOP {mode:8s}: " + ", ".join(f"{k} {v:.1f}" for k, v in parts.items()))
    with torch.inference_mode():
        times = measure(fns, args.runs, args.warmup)
    base = statistics.median(times["plain ViT (open_clip, torch)"])
    print(f"{'model / backend':34s} {'median s':>9s} {'p90 s':>7s} {'x plain':>8s}")
    for name, ts in times.items():
        ts = sorted(ts)
        med = statistics.median(ts)
        print(f"{name:34s} {med:9.3f} {ts[int(0.9 * (len(ts) - 1))]:7.3f} {med / base:8.2f}")
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    for python in args.ort_python:  # not interleaved with the runs above: compare with care
        files = [str(args.workdir / f"{args.preset}-{mode}.onnx") for mode in flops]
        out = subprocess.run(
            [
                python,
                str(Path(__file__).with_name("ort_latency.py")),
                *files,
                "--threads",
                str(args.threads),
                "--runs",
                str(args.runs),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        for line in out.stdout.splitlines():
            row = json.loads(line)
            mode = Path(row["model"]).stem.rsplit("-", 1)[1]
            name = f"STOP {mode}: ORT {row['onnxruntime']} {row['provider']} *"
            medians[name] = row["median_s"]
            print(f"{name:34s} {row['median_s']:9.3f} {row['p90_s']:7.3f} {row['median_s'] / base:8.2f}")
    if args.ort_python:
        print("* timed in a separate process with that environment's onnxruntime")
    for mode, text in bf16_checks.items():
        print(f"bf16 {mode}: {text}")
    for mode in flops:
        rows = {n: med for n, med in medians.items() if n.startswith(f"STOP {mode}")}
        for kind, names in (("FP32", [n for n in rows if "bf16" not in n]), ("bf16", [n for n in rows if "bf16" in n])):
            if names:
                best = min(names, key=rows.get)
                verdict = "meets" if rows[best] <= 1.4 * base else "misses"
                print(
                    f"{mode}: fastest {kind} {best} {rows[best]:.3f} s = {rows[best] / base:.2f}x plain; "
                    f"{verdict} the 1.4x target"
                )


if __name__ == "__main__":
    main()
