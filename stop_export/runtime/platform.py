"""What the TensorRT builder and the TensorRT runtime both need, torch-free and onnx-free (DECISIONS §9):
finding the TensorRT Python module, the GPU's compute capability, and the plugin's version and library."""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass

from stop_train.errors import StopError

PLUGIN_VERSION = "1"  # of libstop_tpi_plugin.so's TemporalPromptInsert creator
PLUGIN_ENV = "STOP_TPI_PLUGIN"  # path of the plugin library, when no --plugin is given
SIDECAR_SUFFIX = ".json"  # an engine's metadata: <engine>.json


class EngineError(StopError, RuntimeError):
    """TensorRT missing, or an engine that cannot be built or loaded, with the reason."""


@dataclass
class TensorRT:
    module: object
    flavour: str  # 'tensorrt' or 'tensorrt_rtx'
    version: tuple[int, ...]

    @property
    def strongly_typed(self) -> bool:
        """No FP16 builder flag: TensorRT 11+ and TensorRT for RTX."""
        return self.flavour == "tensorrt_rtx" or self.version[0] >= 11

    @property
    def supports_plugins(self) -> bool:
        return self.flavour == "tensorrt"

    @property
    def inlines_functions(self) -> bool:
        """Parsers before TensorRT 10.7 inline every model-local function, registered plugin or not."""
        return self.flavour == "tensorrt" and self.version < (10, 7)

    def describe(self) -> str:
        name = "TensorRT for RTX" if self.flavour == "tensorrt_rtx" else "TensorRT"
        return f"{name} {'.'.join(map(str, self.version))}"


def detect_tensorrt(prefer: str | None = None) -> TensorRT:
    """The TensorRT Python module here: full TensorRT first, then TensorRT for RTX (or only `prefer`).

    Raises EngineError naming what to install when there is none."""
    order = [prefer] if prefer else ["tensorrt", "tensorrt_rtx"]
    for name in order:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        version = tuple(int(x) for x in module.__version__.split(".")[:3])
        return TensorRT(module, name, version)
    wanted = "TensorRT for RTX" if prefer == "tensorrt_rtx" else "TensorRT"
    raise EngineError(
        f"no {wanted} Python module: on Jetson it comes with JetPack (python3-libnvinfer); on RTX "
        "machines pip install 'stop-toolkit[rtx]' (TensorRT for RTX) or the TensorRT wheel"
    )


def compute_capability() -> str:
    """The first GPU's compute capability ('8.7'), '' when none is visible (TensorRT for RTX builds on the CPU).

    Asks cuda-python, else PyTorch if it is installed; neither is required."""
    try:
        from cuda.bindings import runtime as cudart  # cuda-python
    except ImportError:
        try:
            import torch
        except ImportError:
            return ""
        return ".".join(map(str, torch.cuda.get_device_capability())) if torch.cuda.is_available() else ""
    err, major = cudart.cudaDeviceGetAttribute(cudart.cudaDeviceAttr.cudaDevAttrComputeCapabilityMajor, 0)
    if err != cudart.cudaError_t.cudaSuccess:
        return ""
    _, minor = cudart.cudaDeviceGetAttribute(cudart.cudaDeviceAttr.cudaDevAttrComputeCapabilityMinor, 0)
    return f"{major}.{minor}"


def plugin_path(given: str | os.PathLike | None = None) -> str | None:
    """The plugin library to load: `given` (--plugin), else $STOP_TPI_PLUGIN, else None."""
    return str(given) if given else os.environ.get(PLUGIN_ENV) or None
