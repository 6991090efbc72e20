"""Where the spatial prompter's time goes on this CPU: each convolution of its stack, computed several exact
ways, against its floor, side by side in one run.

    .venv/bin/python benchmarks/prompter_cpu.py [--preset stop-b32] [--threads 2] [--runs 5]
    # an AVX2 host's kernels on an AVX-512 machine (ATen, oneDNN and MKL each capped):
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 .venv/bin/python benchmarks/prompter_cpu.py

Prints the ISA (the CPU's flags, what ATen dispatches to, the oneDNN cap), this process's FP32 matmul rate
(a square GEMM), then per layer of `SpatialPrompter.conv` (and the score network) the median time of:
- direct: `F.conv3d` as the model calls it (channels-last 3-D, oneDNN);
- direct NCDHW: the same on a contiguous tensor;
- taps as channels: the 3-D convolution as one 2-D convolution over all frames whose input channels are the
  kernel's time taps of each channel (exact: the same products, summed in another order);
- fft: `fft_conv3d`, what `FFTConv3d` (the model's layers) runs on the CPU: 2-D FFTs, time taps by matmul;
each for the forward and for forward + backward, with the floor (direct-convolution FLOPs / the matmul rate)
and the ratio to it. Random weights; the outputs of every method are checked against `direct` first.
Then one training step (forward, backward, AdamW) of `tiny` at the demo's batch of 8 and of the preset at
batch 1, with the seconds spent in the spatial and temporal prompters' backward (autograd profiler).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from stop_train.config import load_config
from stop_train.cpu import cpu_flags
from stop_train.model import create_model
from stop_train.model.layers import fft_conv3d
from stop_train.model.spatial import PROMPTER_CHANNELS, PROMPTER_KERNEL, SCORE_KERNEL
from stop_train.tolerances import relative_error


def isa() -> str:
    flags = cpu_flags() or set()
    have = [x for x in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16") if x in flags]
    caps = {
        k: os.environ[k]
        for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")
        if k in os.environ
    }
    return f"CPU flags {' '.join(have) or '?'}; ATen dispatch {torch.backends.cpu.get_cpu_capability()}" + (
        f"; capped by {caps}" if caps else ""
    )


def timed(fn, runs: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return statistics.median(out)


def matmul_gflops(runs: int) -> float:
    n = 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n**3 / timed(lambda: a @ b, runs) / 1e9


def taps_as_channels(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """'same' Conv3d (B, C, T, H, W) as one Conv2d over B*T frames with C*kt input channels (each channel's
    kt time taps around the frame, zeros past the ends)."""
    b, c, t, h, wd = x.shape
    kt = w.shape[2]
    taps = F.pad(x, (0, 0, 0, 0, kt // 2, kt // 2)).unfold(2, kt, 1)  # (B, C, T, H, W, kt)
    frames = taps.permute(0, 2, 1, 5, 3, 4).reshape(b * t, c * kt, h, wd)
    w2 = w.reshape(w.shape[0], c * kt, *w.shape[3:])
    y = F.conv2d(frames, w2, bias, padding=(w.shape[3] // 2, w.shape[4] // 2))
    return y.reshape(b, t, -1, h, wd).transpose(1, 2)


def layers(cfg) -> list[tuple[str, int, int, tuple[int, int, int]]]:
    c1, c2, c3 = PROMPTER_CHANNELS
    return [
        (f"conv 3->{c1}", 3, c1, PROMPTER_KERNEL),
        (f"conv {c1}->{c1}", c1, c1, PROMPTER_KERNEL),
        (f"conv {c1}->{c2}", c1, c2, PROMPTER_KERNEL),
        (f"conv {c2}->{c3}", c2, c3, PROMPTER_KERNEL),
        ("score 3->1", 3, 1, SCORE_KERNEL),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="stop-b32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-backward", dest="backward", action="store_false")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = load_config(args.preset)
    t, size = cfg.frames, cfg.vision.image_size
    rate = matmul_gflops(args.runs)
    print(f"device: {platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} threads")
    print(f"ISA   : {isa()}")
    print(f"FP32 matmul rate: {rate:.0f} GFLOP/s (2048^3)")
    print(f"input : {args.preset}: B=1, T={t}, {size}x{size}")
    methods = {
        "direct": lambda x, w, bias: F.conv3d(
            x.contiguous(memory_format=torch.channels_last_3d), w, bias, padding=tuple(k // 2 for k in w.shape[2:])
        ),
        "direct NCDHW": lambda x, w, bias: F.conv3d(x, w, bias, padding=tuple(k // 2 for k in w.shape[2:])),
        "taps as channels": taps_as_channels,
        "fft": lambda x, w, bias: fft_conv3d(x, w, bias),
    }
    print(
        f"{'layer':12s} {'GFLOP':>6s} {'floor s':>8s} "
        + " ".join(f"{m:>18s}" for m in methods)
        + ("   (forward; forward+backward below)" if args.backward else "")
    )
    totals = {m: [0.0, 0.0] for m in methods}
    for name, cin, cout, k in layers(cfg):
        x = torch.randn(1, cin, t, size, size)
        w, bias = torch.randn(cout, cin, *k) * 0.02, torch.randn(cout)
        flops = 2 * cout * cin * k[0] * k[1] * k[2] * t * size * size / 1e9
        ref = methods["direct"](x, w, bias)
        fwd, both = {}, {}
        for m, fn in methods.items():
            err = relative_error(fn(x, w, bias), ref)
            assert err < 1e-4, f"{name} {m}: relative error {err:.1e}"
            with torch.inference_mode():
                fwd[m] = timed(lambda: fn(x, w, bias), args.runs)
            if args.backward:
                xg, wg = x.clone().requires_grad_(), w.clone().requires_grad_()
                both[m] = timed(lambda: fn(xg, wg, bias).sum().backward(), max(1, args.runs // 2))
            totals[m][0] += fwd[m]
            totals[m][1] += both.get(m, 0.0)
        floor = flops / rate
        print(
            f"{name:12s} {flops:6.1f} {floor:8.3f} "
            + " ".join(f"{fwd[m]:8.3f}s {fwd[m] / floor:5.1f}x   " for m in methods)
        )
        if args.backward:
            print(
                f"{'':12s} {3 * flops:6.1f} {3 * floor:8.3f} "
                + " ".join(f"{both[m]:8.3f}s {both[m] / (3 * floor):5.1f}x   " for m in methods)
            )
    print(f"{'all layers':28s}" + " ".join(f"{totals[m][0]:8.3f}s          " for m in methods) + " (forward)")
    if args.backward:
        print(f"{'':28s}" + " ".join(f"{totals[m][1]:8.3f}s          " for m in methods) + " (forward+backward)")
    print("training step:", training_step("tiny", 8, args.runs))
    print("training step:", training_step(args.preset, 1, max(1, args.runs // 2)))


def training_step(preset: str, batch: int, runs: int) -> str:
    """Median seconds of one training step, and the prompters' share of it."""
    from torch.profiler import ProfilerActivity, profile

    cfg = load_config(preset)
    model = create_model(preset, pretrained="none").train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    video = torch.randn(batch, cfg.frames, 3, cfg.vision.image_size, cfg.vision.image_size)
    ids = model.tokenize([f"class {i}" for i in range(5)])
    labels = torch.arange(batch) % 5

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(video, ids), labels).backward()
        opt.step()

    seconds = timed(step, runs)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    conv = sum(e.self_cpu_time_total for e in prof.key_averages() if "convolution" in e.key) / 1e6
    fft = sum(e.self_cpu_time_total for e in prof.key_averages() if "fft" in e.key) / 1e6
    return f"{preset} batch {batch}: {seconds:.3f} s/step (direct convolutions {conv:.3f} s, FFTs {fft:.3f} s)"


if __name__ == "__main__":
    main()
