"""TensorRT check for a machine with a GPU and TensorRT (`scripts/trt_check.sh` runs it).

For each model (the newest `make demo` run's tiny export, and `stop-b32` with random weights): build the
plugin, build FP16 engines with the plugin and with the function body, compare each with ONNX Runtime FP32
by the FP16 row of DECISIONS §5 (video-embedding cosine, counts and masks with the flip rate, top-1 on
clear-margin clips), and print latency beside ONNX Runtime CUDA and PyTorch FP32.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from stop_export.cli import export_main
from stop_export.onnx.check import check_clips
from stop_export.runtime.backends import OrtBackend, available_ort_providers
from stop_export.runtime.torch_backend import TorchBackend
from stop_export.runtime.trt_backend import TensorRTBackend
from stop_export.trt.builder import BuildOptions, build_engine, detect_tensorrt
from stop_export.trt.plugin_build import build_plugin
from stop_train.tolerances import FP16_EMBED_COSINE, FP16_TOP1_AGREEMENT, TOP1_MARGIN_FACTOR


def compare_fp16(ref: dict, got: dict) -> tuple[bool, str]:
    a, b = ref["video_embedding"], got["video_embedding"].astype(np.float32)
    cosine = float(((a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)).min())
    err = float(np.abs(got["logits"].astype(np.float32) - ref["logits"]).max())
    top2 = np.sort(ref["logits"], -1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > TOP1_MARGIN_FACTOR * err
    agree = float((ref["logits"].argmax(-1) == got["logits"].argmax(-1))[clear].mean()) if clear.any() else 1.0
    flips = {k: float((ref[k] != got[k]).mean()) for k in ("spatial_mask", "gap_prompt_count") if k in ref}
    ok = cosine >= FP16_EMBED_COSINE and agree >= FP16_TOP1_AGREEMENT
    text = (
        f"min cosine {cosine:.5f} (>= {FP16_EMBED_COSINE}), top-1 {agree:.3f} on {int(clear.sum())} clear clips, "
        + ", ".join(f"{k} flip rate {v:.4f}" for k, v in flips.items())
    )
    return ok, text


def latency(fn, frames, runs: int) -> float:
    fn(frames)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(frames)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("build/trt-check"))
    parser.add_argument("--demo-run", type=Path, default=None, help="run directory (default: newest runs/demo-*)")
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    trt = detect_tensorrt()
    print(f"{trt.describe()}; ONNX Runtime providers: {', '.join(available_ort_providers())}")
    plugin = None
    if trt.supports_plugins:
        plugin = str(build_plugin(args.workdir / "plugin", "auto"))
        print(f"plugin: {plugin}")
    demo = args.demo_run or max(Path("runs").glob("demo-*"), default=None, key=lambda p: p.stat().st_mtime)
    sources = ([("tiny (make demo)", [str(demo)])] if demo else []) + [("stop-b32", ["stop-b32", "--labels", "ucf101"])]
    failed = False
    for name, source in sources:
        onnx_path = args.workdir / name.split()[0] / "model.onnx"
        if export_main([*source, "-o", str(onnx_path), "--no-text-encoder"]) != 0:
            return 2
        ort_cpu = OrtBackend(onnx_path, "cpu")
        meta = ort_cpu.metadata
        clips = check_clips(meta.frames, meta.size, args.clips)
        reference = ort_cpu.run(clips)
        rows = {}
        if "cuda" in available_ort_providers():
            cuda = OrtBackend(onnx_path, "cuda")
            rows["ONNX Runtime CUDA FP32"] = latency(cuda.run, clips[:1], args.runs)
        for label, lib in (("plugin", plugin), ("function body", None)):
            if label == "plugin" and lib is None:
                print(f"{name}: {trt.describe()} takes no plugin; function body only")
                continue
            engine = onnx_path.with_name(f"fp16-{label.replace(' ', '-')}.engine")
            section = build_engine(onnx_path, engine, BuildOptions(fp16=True, plugin=lib, max_batch=args.clips), trt)
            backend = TensorRTBackend(engine, plugin=lib)
            ok, text = compare_fp16(reference, backend.run(clips))
            failed |= not ok
            print(f"{name} FP16 engine ({section['implementation']}): {'PASS' if ok else 'FAIL'}: {text}")
            rows[f"TensorRT FP16, {label}"] = latency(backend.run, clips[:1], args.runs)
        try:
            torch_backend = TorchBackend(source[0], labels=source[2] if len(source) > 2 else None, device="cuda")
            rows["PyTorch FP32 (CUDA)"] = latency(torch_backend.run, clips[:1], args.runs)
        except Exception as err:  # report and go on: the comparison above is the check
            print(f"PyTorch row skipped: {err}")
        for row, seconds in rows.items():
            print(f"  {name:18s} {row:28s} {seconds * 1000:8.2f} ms (B=1)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
