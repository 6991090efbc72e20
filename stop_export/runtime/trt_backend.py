"""TensorRT backend: an engine built by `stop-export --engine/--fp16` and its JSON sidecar.

Device buffers come from cuda-python (`cuda.bindings`) or PyTorch, whichever is installed, so the backend
works without PyTorch. An engine built for another TensorRT version or GPU, or one that needs the plugin
library when it is not given, is refused with one message naming what differs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from stop_train.schema import INPUT_NAME, Metadata, MetadataError

from .errors import BackendError
from .platform import PLUGIN_ENV, SIDECAR_SUFFIX, EngineError, compute_capability, detect_tensorrt, plugin_path


def read_sidecar(engine: str | Path) -> Metadata:
    """The metadata of `<engine>.json`. Raises BackendError when it is missing, or is not one of ours
    ("not a STOP engine sidecar: PATH": unreadable, not JSON, or without the STOP schema and a TensorRT section)."""
    path = Path(str(engine) + SIDECAR_SUFFIX)
    if not path.is_file():
        raise BackendError(f"{engine} has no sidecar {path.name}: rebuild the engine with stop-export --engine/--fp16")
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise BackendError(f"not a STOP engine sidecar: {path}") from None
    if (
        not isinstance(data, dict)
        or "schema_version" not in data
        or not isinstance(data.get("tensorrt"), dict)
        or not data["tensorrt"]
    ):
        raise BackendError(f"not a STOP engine sidecar: {path}")
    try:
        return Metadata.from_json(json.dumps(data), str(path))
    except MetadataError as err:  # ours, but newer or inconsistent: the schema's own message
        raise BackendError(str(err)) from None
    except TypeError as err:
        raise BackendError(f"not a STOP engine sidecar: {path} ({err})") from None


def check_compatible(meta: Metadata, flavour: str, version: str, capability: str, plugin: str | None) -> None:
    """Raise BackendError naming every difference between the engine's build and this machine."""
    built = meta.tensorrt
    problems = []
    if built.get("flavour") != flavour or built.get("version") != version:
        problems.append(
            f"built with {built.get('flavour')} {built.get('version')}, this machine has {flavour} {version}"
        )
    if built.get("compute_capability") and capability and built["compute_capability"] != capability:
        problems.append(f"built for compute capability {built['compute_capability']}, this GPU is {capability}")
    if built.get("plugin_version") and not plugin:
        problems.append(
            f"needs the TemporalPromptInsert plugin v{built['plugin_version']}: pass its library with "
            f"--plugin (or set {PLUGIN_ENV})"
        )
    if problems:
        raise BackendError(
            "this engine cannot run here: " + "; ".join(problems) + ". Rebuild it here with stop-export --engine/--fp16"
        )


class TensorRTBackend:
    """Runs a TensorRT engine; `run(frames)` as the other backends.

    Checks, in order, each with its own one-line BackendError: the sidecar, the TensorRT module, device
    buffers (cuda-python or PyTorch), a visible GPU, the build's TensorRT / GPU / plugin against this machine,
    the plugin library (`plugin`, else $STOP_TPI_PLUGIN), then TensorRT's deserialisation.
    """

    def __init__(self, engine: str | Path, plugin: str | None = None):
        self.metadata = read_sidecar(engine)
        built = self.metadata.tensorrt
        try:
            trt = detect_tensorrt(built.get("flavour"))
        except EngineError as err:
            name = "TensorRT for RTX" if built.get("flavour") == "tensorrt_rtx" else "TensorRT"
            raise BackendError(
                f"this engine was built with {name} {built.get('version')}, which is not installed "
                f"here ({err}); or rebuild the engine here with stop-export --engine/--fp16"
            ) from None
        plugin = plugin_path(plugin)
        if plugin and not Path(plugin).is_file():
            raise BackendError(f"no plugin library at {plugin}")
        self.buffers = _DeviceBuffers()  # needs a GPU: an edge box without one stops here, with the reason
        check_compatible(self.metadata, trt.flavour, ".".join(map(str, trt.version)), compute_capability(), plugin)
        t = trt.module
        logger = t.Logger(t.Logger.WARNING)
        if plugin:
            t.init_libnvinfer_plugins(logger, "")
            if t.get_plugin_registry().load_library(str(plugin)) is None:
                raise BackendError(f"TensorRT could not load the plugin library {plugin}")
        self.engine = t.Runtime(logger).deserialize_cuda_engine(Path(engine).read_bytes())
        if self.engine is None:
            raise BackendError(f"TensorRT could not deserialize {engine} (see its messages above)")
        self.context = self.engine.create_execution_context()
        self.trt = t
        self.outputs = list(self.metadata.outputs)
        self.name = f"{trt.flavour}-{self.metadata.tensorrt.get('precision', '')}"
        self.path = Path(engine)

    def run(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        frames = np.ascontiguousarray(frames)
        self.context.set_input_shape(INPUT_NAME, frames.shape)
        self.context.set_tensor_address(INPUT_NAME, self.buffers.upload(INPUT_NAME, frames))
        shapes = {}
        for name in self.outputs:
            shape = tuple(self.context.get_tensor_shape(name))
            dtype = np.dtype(self.trt.nptype(self.engine.get_tensor_dtype(name)))
            shapes[name] = (shape, dtype)
            self.context.set_tensor_address(name, self.buffers.allocate(name, shape, dtype))
        if not self.context.execute_async_v3(self.buffers.stream):
            raise BackendError("TensorRT execution failed")
        return {name: self.buffers.download(name, *shapes[name]) for name in self.outputs}


class _DeviceBuffers:
    """Device memory by tensor name, through PyTorch if present, else cuda-python."""

    def __init__(self):
        try:
            import torch

            if not torch.cuda.is_available():
                raise BackendError("TensorRT engines run on a CUDA GPU, and PyTorch sees none here")
            self.torch, self._stream = torch, torch.cuda.Stream()
            self.stream = self._stream.cuda_stream
        except ImportError:
            try:
                from cuda.bindings import runtime as cudart
            except ImportError:
                raise BackendError(
                    "the TensorRT backend needs cuda-python (pip install cuda-python) or PyTorch for device buffers"
                ) from None
            self.torch, self.cudart = None, cudart
            err, count = cudart.cudaGetDeviceCount()
            if int(err) != 0 or count == 0:
                raise BackendError("TensorRT engines run on a CUDA GPU, and none is visible here") from None
            self.stream = _ok(cudart.cudaStreamCreate())
        self.tensors: dict[str, object] = {}

    def allocate(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> int:
        nbytes = int(np.prod(shape)) * dtype.itemsize
        if self.torch is not None:
            t = self.torch.empty(max(nbytes, 1), dtype=self.torch.uint8, device="cuda")
            self.tensors[name] = t
            return t.data_ptr()
        old = self.tensors.get(name)
        if old is not None:
            self.cudart.cudaFree(old)
        ptr = _ok(self.cudart.cudaMalloc(max(nbytes, 1)))
        self.tensors[name] = ptr
        return int(ptr)

    def upload(self, name: str, array: np.ndarray) -> int:
        ptr = self.allocate(name, array.shape, array.dtype)
        if self.torch is not None:
            self.tensors[name].copy_(self.torch.from_numpy(array.view(np.uint8).reshape(-1)))
        else:
            _ok(
                self.cudart.cudaMemcpy(
                    ptr, array.ctypes.data, array.nbytes, self.cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
                )
            )
        return ptr

    def download(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        out = np.empty(shape, dtype=dtype)
        if self.torch is not None:
            self._stream.synchronize()
            out.view(np.uint8).reshape(-1)[:] = self.tensors[name][: out.nbytes].cpu().numpy()
        else:
            _ok(self.cudart.cudaStreamSynchronize(self.stream))
            _ok(
                self.cudart.cudaMemcpy(
                    out.ctypes.data, self.tensors[name], out.nbytes, self.cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
                )
            )
        return out


def _ok(result):
    err, *rest = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise BackendError(f"CUDA error {err}")
    return rest[0] if rest else None


__all__ = ["PLUGIN_ENV", "TensorRTBackend", "check_compatible", "read_sidecar"]
