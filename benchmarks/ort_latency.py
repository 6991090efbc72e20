"""Torch-free ONNX Runtime latency of exported STOP files, on every provider this onnxruntime build offers.

    python benchmarks/ort_latency.py MODEL.onnx [MODEL.onnx ...] [--threads 2] [--runs 10]

`latency_cpu.py --ort-python ENV/bin/python` runs it in another environment, for builds that cannot share
one with the default onnxruntime (pip `onnxruntime-openvino` installs its own `onnxruntime` module).
Prints one JSON line per (file, provider): median and p90 seconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import onnxruntime as ort

CPU_PROVIDERS = {"CPUExecutionProvider": "cpu", "OpenVINOExecutionProvider": "openvino"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    sessions = {}
    for path in args.models:
        for provider, short in CPU_PROVIDERS.items():
            if provider not in ort.get_available_providers():
                continue
            options = ort.SessionOptions()
            options.intra_op_num_threads = args.threads
            extra = [{"num_of_threads": str(args.threads)}] if short == "openvino" else [{}]
            session = ort.InferenceSession(path, options, providers=[provider], provider_options=extra)
            shape = [1 if isinstance(d, str) or d is None else d for d in session.get_inputs()[0].shape]
            frames = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
            sessions[(path, short)] = (session, frames)
    times = {key: [] for key in sessions}
    for i in range(args.warmup + args.runs):  # round-robin, as latency_cpu.py
        for key, (session, frames) in sessions.items():
            start = time.perf_counter()
            session.run(None, {"frames": frames})
            if i >= args.warmup:
                times[key].append(time.perf_counter() - start)
    for (path, short), ts in times.items():
        ts = sorted(ts)
        print(
            json.dumps(
                {
                    "model": path,
                    "provider": short,
                    "onnxruntime": ort.__version__,
                    "median_s": statistics.median(ts),
                    "p90_s": ts[int(0.9 * (len(ts) - 1))],
                }
            )
        )


if __name__ == "__main__":
    main()
