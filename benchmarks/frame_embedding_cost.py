"""What the graph's `frame_embedding` output costs: the last block over every token (the frames' class tokens
are an output) against the last block over the global prompts only (all the video feature needs), in one run.

    .venv/bin/python benchmarks/frame_embedding_cost.py [--preset stop-b32] [--threads 2] [--runs 10]

Random weights (no download), batch 1, PyTorch on the CPU. Prints GFLOPs (matmuls and convolutions) and median
latency of both, and their ratio.
"""

from __future__ import annotations

import argparse
import statistics

import torch
import torch.nn.functional as F
from forward_cpu import _VideoEncoder as _Before  # the video embedding alone (what graphs gave before)
from forward_cpu import gflops, measure

from stop_train.config import load_config
from stop_train.model import create_model


class _Now(torch.nn.Module):
    """The video embedding and the frame embeddings, as `VideoClassifier` computes them."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, video):
        hidden, _ = self.model.forward_visual(video, all_tokens=True)
        return F.normalize(self.model.video_features(hidden), dim=-1), self.model.frame_embeddings(hidden)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="stop-b32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(args.preset)
    size = cfg.vision.image_size
    video = torch.randn(1, cfg.frames, 3, size, size)

    def build(wrapper):
        return lambda device: wrapper(create_model(cfg).to(device).eval())

    torch.manual_seed(0)
    model = create_model(cfg).eval()
    before, now = _Before(model), _Now(model)
    flops = {"video embedding only": gflops(build(_Before), video), "+ frame_embedding": gflops(build(_Now), video)}
    with torch.inference_mode():
        same = torch.allclose(before(video), now(video)[0], atol=1e-5)
        times = measure(
            {"video embedding only": lambda: before(video), "+ frame_embedding": lambda: now(video)},
            args.runs,
            args.warmup,
        )
    print(
        f"{args.preset}: {cfg.mode} mode, T={cfg.frames}, {size} px, {cfg.vision.layers} layers, batch 1, "
        f"{args.threads} CPU threads; video embeddings equal: {same}"
    )
    for name in flops:
        print(f"  {name:22s} {flops[name]:7.1f} GFLOPs  median {1e3 * statistics.median(times[name]):8.1f} ms")
    ratio_f = flops["+ frame_embedding"] / flops["video embedding only"]
    ratio_t = statistics.median(times["+ frame_embedding"]) / statistics.median(times["video embedding only"])
    print(f"  ratio: {ratio_f:.3f}x GFLOPs, {ratio_t:.3f}x latency")


if __name__ == "__main__":
    main()
