"""Inference backends behind one call: `run(frames uint8 (B, T, S, S, 3)) -> {output name: array}`.

ONNX Runtime (CPU, CUDA, OpenVINO, TensorRT execution providers, whichever are installed) needs no
PyTorch; the PyTorch backend is optional and imports torch only when chosen.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import numpy as np

from stop_train.schema import INPUT_NAME, METADATA_KEY, Metadata, MetadataError

from .errors import BackendError

log = logging.getLogger(__name__)

# ONNX Runtime providers by short name, in the order `auto` prefers them
ORT_PROVIDERS = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "cpu": "CPUExecutionProvider",
}

# every `backend` name `open_backend` takes (engines pick TensorRT by their suffix)
BACKEND_NAMES = ("auto", "cpu", "cuda", "openvino", "tensorrt", "torch", "torch-bf16")


class Backend(Protocol):
    """What the recognizer, label banks and search need of a backend. `name`: shown to the user (the app reads its
    prefix: onnxruntime-, pytorch-); `metadata`: the model's; `path`: the model file, beside which the text encoder
    and the class statistics the metadata names are found (None when there is no file; a backend may instead
    give `statistics_file`, and `encode_text(texts)` -> unit (N, E) for a text tower of its own);
    `run(frames)`: uint8 (B, T, S, S, 3) RGB -> the metadata's outputs."""

    name: str
    metadata: Metadata
    path: Path | None

    def run(self, frames: np.ndarray) -> dict[str, np.ndarray]: ...


def _import_ort():
    try:
        import onnxruntime
    except ImportError:
        raise BackendError(
            "ONNX Runtime is not installed: pip install 'stop-toolkit[runtime]' "
            "(or [gpu] for onnxruntime-gpu, [openvino] for onnxruntime-openvino)"
        ) from None
    return onnxruntime


def available_ort_providers() -> list[str]:
    """Short names of the ONNX Runtime providers this installation offers (e.g. ['cuda', 'cpu'])."""
    try:
        ort = _import_ort()
    except BackendError:
        return []
    offered = set(ort.get_available_providers())
    return [short for short, full in ORT_PROVIDERS.items() if full in offered]


class OrtBackend:
    """ONNX Runtime on one provider (`cpu`, `cuda`, `openvino`, `tensorrt`), falling back to CPU."""

    def __init__(self, path: str | Path, provider: str = "cpu", threads: int = 0):
        ort = _import_ort()
        path = Path(path)
        if not path.is_file():
            raise BackendError(f"no model file at {path}")
        if provider not in ORT_PROVIDERS:
            raise BackendError(f"unknown provider {provider!r}; choose from {', '.join(ORT_PROVIDERS)}")
        if provider not in available_ort_providers():
            raise BackendError(f"ONNX Runtime here offers {', '.join(available_ort_providers())}, not {provider}")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = [ORT_PROVIDERS[provider]] + ([] if provider == "cpu" else [ORT_PROVIDERS["cpu"]])
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as err:  # ORT raises its own exception types
            raise BackendError(f"ONNX Runtime cannot load {path}: {err}") from None
        meta = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        self.metadata = Metadata.from_json(meta, str(path))
        inputs = {i.name: i for i in self.session.get_inputs()}
        if INPUT_NAME not in inputs:
            raise MetadataError(f"{path} has no '{INPUT_NAME}' input: not a STOP video model")
        declared = tuple(inputs[INPUT_NAME].shape[1:])
        if declared != self.metadata.input_shape:
            raise MetadataError(
                f"{path}: the graph takes frames {declared}, its metadata says {self.metadata.input_shape}"
            )
        self.outputs = [o.name for o in self.session.get_outputs()]
        logits = next((o for o in self.session.get_outputs() if o.name == "logits"), None)
        if logits is not None and isinstance(logits.shape[-1], int) and logits.shape[-1] != len(self.metadata.labels):
            raise MetadataError(
                f"{path}: the graph scores {logits.shape[-1]} classes but its metadata lists "
                f"{len(self.metadata.labels)} labels"
            )
        self.name = f"onnxruntime-{provider}"
        self.path = path

    def run(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(self.outputs, self.session.run(None, {INPUT_NAME: frames})))


def statistics_file(backend: Backend) -> Path | None:
    """Where the model's class statistics are (`stop_train.statistics`): the file its metadata names beside an
    .onnx or .engine file, a checkpoint's own for the PyTorch backend; None when it has none."""
    if getattr(backend, "statistics_file", None) is not None:
        return Path(backend.statistics_file)
    path, name = getattr(backend, "path", None), backend.metadata.statistics
    return Path(path).parent / name if path is not None and name else None


def open_backend(
    model: str | Path, backend: str = "auto", threads: int = 0, labels: str | None = None, plugin: str | None = None
) -> Backend:
    """`backend`: auto (best ONNX Runtime provider), cpu, cuda, openvino, tensorrt (ORT providers), torch or
    torch-bf16 (PyTorch in bfloat16: faster on CPUs with AVX512-BF16/AMX, outputs still float32).

    ONNX files go to ONNX Runtime; `.engine` files (with their sidecar) to TensorRT, with the plugin library
    `plugin` (else $STOP_TPI_PLUGIN) where the engine needs it; run directories, model
    folders and presets to PyTorch.
    """
    path = Path(model)
    if path.suffix in (".onnx", ".engine") and not path.is_file():
        raise BackendError(f"no model file at {path}")
    if path.is_file() and path.suffix not in (".onnx", ".engine"):
        raise BackendError(
            f"{path} is not a model: give an exported .onnx, a TensorRT .engine (with its sidecar), "
            "or a run directory / model folder (torch backend)"
        )
    if path.suffix == ".engine" or backend == "tensorrt-engine":
        from .trt_backend import TensorRTBackend

        return TensorRTBackend(path, plugin=plugin)
    if backend in ("torch", "torch-bf16") and path.suffix in (".onnx", ".engine"):  # before importing torch
        raise BackendError(
            f"the {backend} backend reads run directories and model folders, not {path.suffix} files: "
            f"choose auto, cpu, cuda, openvino or tensorrt for {path.name}"
        )
    if backend in ("torch", "torch-bf16") or not (path.suffix == ".onnx"):
        if backend not in ("auto", "torch", "torch-bf16"):
            raise BackendError(f"{model} is not an .onnx file: only the torch backend reads runs and checkpoints")
        from .torch_backend import TorchBackend

        return TorchBackend(model, labels=labels, precision="bf16" if backend == "torch-bf16" else "fp32")
    if backend == "auto":
        offered = available_ort_providers()
        if not offered:
            _import_ort()
        reasons = []
        for provider in offered:
            try:
                return OrtBackend(path, provider, threads)
            except BackendError as err:
                log.info("provider %s unavailable: %s", provider, err)
                reasons.append(str(err))
        raise BackendError(f"no ONNX Runtime provider could load {path}" + (f" ({reasons[-1]})" if reasons else ""))
    return OrtBackend(path, backend, threads)
