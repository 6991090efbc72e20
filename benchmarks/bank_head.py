"""Cost of a label bank per window: the Tip-Adapter head (numpy) beside the tiny model's own run, in one process.

    .venv/bin/python benchmarks/bank_head.py [--classes 101] [--taught 20] [--examples 5] [--width 512] [--model M.onnx]

The head adds, per window, one (1, E) x (E, N) product, an exp and a (1, N) x (N, K) product on top of the
graph's logits; this prints its median time for a bank of `--taught` classes x `--examples` examples over
`--classes` model labels at embedding width `--width` (512: ViT-B), beside an exported model's run (`--model`).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from stop_export.runtime.bank import Example, LabelBank


def median_ms(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--classes", type=int, default=101)
    p.add_argument("--taught", type=int, default=20)
    p.add_argument("--examples", type=int, default=5)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--model", help="an exported .onnx to time beside the head")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    unit = lambda x: (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)  # noqa: E731
    bank = LabelBank("bench")
    for c in range(args.taught):
        bank.add(
            f"taught {c}",
            unit(rng.normal(size=(args.examples, args.width))),
            [Example("x", 0, 1)] * args.examples,
            "t",
            unit(rng.normal(size=args.width)),
        )
    head = bank.head([f"label {k}" for k in range(args.classes)])  # the model's own labels, by the graph's logits
    video, graph = unit(rng.normal(size=(1, args.width))), rng.normal(size=(1, args.classes))
    head_ms = median_ms(lambda: head.logits(video, 30.0, graph), args.runs)
    print(
        f"head: {args.classes} labels + {args.taught} taught classes x {args.examples} examples, E = {args.width}: "
        f"{head_ms:.3f} ms per window (median of {args.runs})"
    )
    if args.model:
        from stop_export.runtime.backends import open_backend

        backend = open_backend(args.model, "cpu", threads=2)
        clip = np.zeros((1, *backend.metadata.input_shape), np.uint8)
        model_ms = median_ms(lambda: backend.run(clip), max(10, args.runs // 10))
        print(f"model {args.model}: {model_ms:.1f} ms per window; the head adds {100 * head_ms / model_ms:.2f} %")


if __name__ == "__main__":
    main()
