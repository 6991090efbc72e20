"""Everything issue 25 asks of a CPU, in one command: the ISA, each prompter convolution against its floor
and the training steps (`prompter_cpu.py`), the forward beside a plain ViT (`forward_cpu.py`), and ONNX
Runtime beside PyTorch eager (`latency_cpu.py`), run one after another on this host.

    .venv/bin/python benchmarks/cpu_report.py [--preset stop-b32] [--runs 5]
    # an AVX2 host's kernels on an AVX-512 machine:
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 .venv/bin/python benchmarks/cpu_report.py

Each part runs in its own process (so one part's allocations do not slow the next) with the same
environment, threads and preset; a part that fails is reported and the others still run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="stop-b32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    common = ["--preset", args.preset, "--threads", str(args.threads), "--runs", str(args.runs)]
    parts = [
        ("prompter convolutions and training steps", "prompter_cpu.py", []),
        ("forward beside a plain ViT", "forward_cpu.py", []),
        ("ONNX Runtime beside PyTorch eager", "latency_cpu.py", ["--no-bf16"]),
    ]
    failed = []
    for title, script, extra in parts:
        print(f"\n== {title} ({script}) ==", flush=True)
        rc = subprocess.call([sys.executable, str(HERE / script), *common, *extra], cwd=HERE.parent)
        if rc:
            failed.append(f"{script} (exit {rc})")
    if failed:
        print("failed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
