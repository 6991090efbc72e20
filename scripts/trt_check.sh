#!/usr/bin/env sh
# TensorRT check on a machine with a GPU and TensorRT (JetPack 6.1+, or TensorRT 10/11 with its C++ headers):
# builds the plugin and FP16 engines (plugin and function body) for the make-demo tiny model and stop-b32,
# compares them with ONNX Runtime FP32 (DECISIONS §5, FP16 row) and prints latencies.
#   TENSORRT_ROOT=/path/to/TensorRT scripts/trt_check.sh [--clips 32] [--runs 20]
set -eu
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
exec "$PY" scripts/trt_check.py "$@"
