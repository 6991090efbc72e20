"""Build the TemporalPromptInsert plugin library with CMake against the user's TensorRT and CUDA.

`stop-export --build-plugin` calls `build_plugin`; everything missing is named in one message.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from stop_train.errors import ConfigError, StopError

PLUGIN_DIR = Path(__file__).resolve().parent / "plugin"
LIBRARY = "libstop_tpi_plugin.so"
TARGETS = ("auto", "jetson", "desktop", "hopper", "all")
# headers and libraries of JetPack and the TensorRT deb/tar packages (pip wheels ship no C++ headers)
TENSORRT_ROOTS = ("/usr", "/usr/local/tensorrt", "/opt/tensorrt")


class PluginBuildError(StopError, RuntimeError):
    """What is missing or failed, in one message."""


def cuda_architectures(cuda: tuple[int, int], target: str) -> list[str]:
    """SM architectures for a CUDA version and target: Jetson Orin 87; desktops 75/86/89 (+120 from CUDA
    12.8); Hopper 90 (the GPU harness on H100/H200); `all` = every one of them."""
    if target not in TARGETS or target == "auto":
        raise ConfigError(f"target must be one of {', '.join(TARGETS[1:])}")
    blackwell = ["120"] if cuda >= (12, 8) else []
    return {
        "jetson": ["87"],
        "desktop": ["75", "86", "89", *blackwell],
        "hopper": ["90"],
        "all": ["75", "86", "87", "89", "90", *blackwell],
    }[target]


def nvcc_version(nvcc: str) -> tuple[int, int]:
    out = subprocess.run([nvcc, "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"release (\d+)\.(\d+)", out)
    if not match:
        raise PluginBuildError(f"cannot read the CUDA version from {nvcc} --version")
    return int(match.group(1)), int(match.group(2))


def find_tensorrt(root: str | None = None) -> Path:
    """The TensorRT install holding include/NvInfer.h (TENSORRT_ROOT, or the JetPack/deb/tar places)."""
    candidates = [root or os.environ.get("TENSORRT_ROOT", "")] + list(TENSORRT_ROOTS)
    for cand in filter(None, candidates):
        for include in (
            Path(cand) / "include",
            Path(cand) / "include" / "x86_64-linux-gnu",
            Path(cand) / "include" / "aarch64-linux-gnu",
        ):
            if (include / "NvInfer.h").is_file():
                return Path(cand)
    raise PluginBuildError(
        "TensorRT's C++ headers (NvInfer.h) were not found: set TENSORRT_ROOT to a TensorRT tar/deb install "
        "(JetPack ships them under /usr/include/aarch64-linux-gnu); the pip wheels have no headers"
    )


def build_plugin(out_dir: str | Path, target: str = "auto", tensorrt_root: str | None = None) -> Path:
    """Configure and build the plugin; returns the path of the shared library."""
    missing = [tool for tool in ("cmake", "nvcc") if shutil.which(tool) is None]
    if missing:
        raise PluginBuildError(
            f"building the plugin needs {' and '.join(missing)} on PATH (CUDA toolkit, CMake >= 3.18)"
        )
    trt = find_tensorrt(tensorrt_root)
    if target == "auto":
        target = "jetson" if Path("/etc/nv_tegra_release").is_file() else "desktop"
    archs = cuda_architectures(nvcc_version(shutil.which("nvcc")), target)
    build = Path(out_dir)
    build.mkdir(parents=True, exist_ok=True)
    configure = [
        "cmake",
        "-S",
        str(PLUGIN_DIR),
        "-B",
        str(build),
        f"-DTENSORRT_ROOT={trt}",
        f"-DCMAKE_CUDA_ARCHITECTURES={';'.join(archs)}",
        "-DCMAKE_BUILD_TYPE=Release",
    ]
    for step in (configure, ["cmake", "--build", str(build), "-j"]):
        result = subprocess.run(step, capture_output=True, text=True)
        if result.returncode != 0:
            raise PluginBuildError(f"{' '.join(step[:2])} failed:\n{(result.stdout + result.stderr)[-3000:]}")
    lib = build / LIBRARY
    if not lib.is_file():
        raise PluginBuildError(f"the build finished without {lib}")
    return lib
