"""The TemporalPromptInsert plugin's TensorRT-free parts: the core (checks, shapes) and the kernel's
per-element math, built with the host compiler and compared with the PyTorch reference op; the CUDA
sources compiled with nvcc for the target architectures."""

from __future__ import annotations

import ctypes
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from stop_export.trt.plugin_build import PLUGIN_DIR, cuda_architectures
from stop_train.model.insert_op import OP_DOMAIN, OP_TYPE, OP_VERSION, temporal_prompt_insert_reference
from stop_train.tolerances import GOLDEN_REL_ERR, relative_error

I64 = ctypes.POINTER(ctypes.c_int64)


@pytest.fixture(scope="module")
def host(tmp_path_factory) -> ctypes.CDLL:
    compiler = shutil.which("g++") or shutil.which("c++")
    assert compiler, "a host C++ compiler is required (g++)"
    lib = tmp_path_factory.mktemp("tpi") / "libtpi_host.so"
    subprocess.run(
        [
            compiler,
            "-std=c++17",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-shared",
            "-fPIC",
            str(PLUGIN_DIR / "tpi_host.cpp"),
            "-o",
            str(lib),
        ],
        check=True,
    )
    dll = ctypes.CDLL(str(lib))
    dll.tpi_sequence_length.restype = ctypes.c_int64
    dll.tpi_sequence_length.argtypes = [ctypes.c_int64, ctypes.c_int64, ctypes.c_int32]
    dll.tpi_check.restype = ctypes.c_int32
    dll.tpi_check.argtypes = [ctypes.c_int32, ctypes.c_int32, ctypes.c_float, I64, I64, ctypes.c_char_p, ctypes.c_int32]
    return dll


def run_host(dll, frames: np.ndarray, gaps: np.ndarray, p: int, n: int, tol: float):
    b, t, f, d = frames.shape
    s = dll.tpi_sequence_length(t, f, p)
    tokens = np.empty((b, s, d), np.float32)
    mask = np.empty((b, s), np.uint8)
    variation = np.empty((b, t - 1), np.float32)
    count = np.empty((b, t - 1), np.int32)
    ptr = lambda a: a.ctypes.data_as(ctypes.c_void_p)  # noqa: E731
    dll.tpi_host_forward(
        ptr(frames),
        ptr(gaps),
        ctypes.c_int64(b),
        ctypes.c_int64(t),
        ctypes.c_int64(f),
        ctypes.c_int64(d),
        ctypes.c_int32(p),
        ctypes.c_int32(n),
        ctypes.c_float(tol),
        ptr(tokens),
        ptr(mask),
        ptr(variation),
        ptr(count),
    )
    return tokens, mask.astype(bool), variation, count


def cases():
    rng = np.random.default_rng(0)
    for p in (0, 1, 4):
        for t in (2, 5):
            frames = rng.standard_normal((3, t, 7, 24)).astype(np.float32)
            frames[1, -1] = frames[1, 0]  # a repeated frame
            frames[2] = frames[2, :1]  # a still video: every gap alike
            yield f"p{p}-t{t}", frames, rng.standard_normal((3, t - 1, p, 24)).astype(np.float32), p


@pytest.mark.parametrize("name,frames,gaps,p", list(cases()), ids=lambda v: v if isinstance(v, str) else "")
def test_host_math_equals_the_reference_op(host, name, frames, gaps, p):
    n, tol = 5, 1e-4
    got = run_host(host, frames, gaps, p, n, tol)
    ref = temporal_prompt_insert_reference(torch.from_numpy(frames), torch.from_numpy(gaps), p, n, tol)
    tokens, mask, variation, count = (r.numpy() for r in ref)
    assert relative_error(got[2], variation) < GOLDEN_REL_ERR
    assert (got[3] == count).all() and (got[1] == mask).all()
    assert (got[0] == tokens).all()  # a rearrangement: bit-equal
    if p:
        assert count[2].tolist() == [0] * (frames.shape[1] - 1)  # a still video gets no gap prompts


def test_host_checks_name_what_is_wrong(host):
    def check(p, n, tol, frames, gaps):
        buf = ctypes.create_string_buffer(256)
        code = host.tpi_check(p, n, tol, (ctypes.c_int64 * 4)(*frames), (ctypes.c_int64 * 4)(*gaps), buf, 256)
        return code, buf.value.decode()

    assert check(2, 4, 1e-4, (2, 3, 9, 8), (2, 2, 2, 8)) == (0, "")
    assert "prompts_per_gap must be >= 0" in check(-1, 4, 1e-4, (2, 3, 9, 8), (2, 2, 0, 8))[1]
    assert "num_patches must be >= 1" in check(2, 0, 1e-4, (2, 3, 9, 8), (2, 2, 2, 8))[1]
    assert "exceeds the frame group size F=9" in check(2, 10, 1e-4, (2, 3, 9, 8), (2, 2, 2, 8))[1]
    assert "gap_prompts must be (2, 2, 2, 8)" in check(2, 4, 1e-4, (2, 3, 9, 8), (2, 2, 3, 8))[1]
    assert "T >= 2" in check(2, 4, 1e-4, (2, 1, 9, 8), (2, 0, 2, 8))[1]
    assert "variation_tol must be >= 0" in check(2, 4, -1.0, (2, 3, 9, 8), (2, 2, 2, 8))[1]


def test_spec_file_matches_the_op_and_the_core():
    spec = json.loads((PLUGIN_DIR / "spec.json").read_text())
    assert (spec["domain"], spec["op_type"], spec["version"]) == (OP_DOMAIN, OP_TYPE, OP_VERSION)
    core = (PLUGIN_DIR / "tpi_core.h").read_text()
    for attr in spec["attributes"]:
        assert f'"{attr["name"]}"' in core  # the creator fields use the node's attribute names
    assert [o["name"] for o in spec["outputs"]] == ["tokens", "key_mask", "gap_variation", "gap_prompt_count"]
    assert spec["tolerances"]["gap_variation_rel_err"] == GOLDEN_REL_ERR


def test_architectures_follow_the_cuda_version_and_target():
    assert cuda_architectures((12, 6), "jetson") == ["87"]
    assert cuda_architectures((12, 6), "desktop") == ["75", "86", "89"]
    assert cuda_architectures((12, 8), "desktop") == ["75", "86", "89", "120"]
    assert cuda_architectures((13, 0), "all") == ["75", "86", "87", "89", "90", "120"]
    assert "90" in cuda_architectures((12, 4), "hopper")


def test_nvcc_compiles_the_kernels(tmp_path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("no nvcc: the CUDA sources cannot be compiled here")
    version = subprocess.run([nvcc, "--version"], capture_output=True, text=True).stdout
    release = tuple(int(x) for x in version.split("release ")[1].split(",")[0].split("."))
    gencode = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in cuda_architectures(release, "all")]
    for source in ("tpi_kernel.cu", "tpi_harness.cu"):
        result = subprocess.run(
            [
                nvcc,
                "-std=c++17",
                "-O2",
                "-c",
                str(PLUGIN_DIR / source),
                "-o",
                str(tmp_path / (source + ".o")),
                "-Xcompiler",
                "-Wall,-Werror",
                *gencode,
            ],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr[-3000:]


def test_cuda_kernels_equal_the_reference_op_on_the_gpu(tmp_path):
    """On a machine with a GPU: the kernels (FP32 and FP16 I/O) against the reference, and their time."""
    if not torch.cuda.is_available():
        pytest.skip("no GPU: the CUDA kernels run only where one is present")
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("no nvcc: the CUDA harness cannot be built")
    lib = tmp_path / "libtpi_harness.so"
    major, minor = torch.cuda.get_device_capability()
    subprocess.run(
        [
            nvcc,
            "-std=c++17",
            "-O2",
            "-shared",
            "-Xcompiler",
            "-fPIC",
            f"-arch=sm_{major}{minor}",
            str(PLUGIN_DIR / "tpi_kernel.cu"),
            str(PLUGIN_DIR / "tpi_harness.cu"),
            "-o",
            str(lib),
        ],
        check=True,
    )
    dll = ctypes.CDLL(str(lib))
    dll.tpi_cuda_forward.restype = ctypes.c_int32
    ptr = lambda a: a.ctypes.data_as(ctypes.c_void_p)  # noqa: E731
    rng = np.random.default_rng(1)
    shapes = [(3, 2, 7, 24, 0), (3, 5, 7, 24, 1), (2, 8, 54, 768, 4), (64, 8, 54, 768, 4)]
    for b, t, f, d, p in shapes:
        for half in (0, 1):
            dtype = np.float16 if half else np.float32
            frames = rng.standard_normal((b, t, f, d)).astype(dtype)
            frames[0, -1] = frames[0, 0]
            gaps = rng.standard_normal((b, t - 1, p, d)).astype(dtype)
            s = t * f + (t - 1) * p
            tokens, mask = np.empty((b, s, d), dtype), np.empty((b, s), np.uint8)
            variation, count = np.empty((b, t - 1), np.float32), np.empty((b, t - 1), np.int32)
            ms = ctypes.c_float()
            code = dll.tpi_cuda_forward(
                half,
                ptr(frames),
                ptr(gaps),
                ctypes.c_int64(b),
                ctypes.c_int64(t),
                ctypes.c_int64(f),
                ctypes.c_int64(d),
                ctypes.c_int32(p),
                ctypes.c_int32(f - 5),
                ctypes.c_float(1e-4),
                ptr(tokens),
                ptr(mask),
                ptr(variation),
                ptr(count),
                ctypes.c_int32(20),
                ctypes.byref(ms),
            )
            assert code == 0, f"CUDA error {code}"
            ref = temporal_prompt_insert_reference(torch.from_numpy(frames), torch.from_numpy(gaps), p, f - 5, 1e-4)
            assert relative_error(variation, ref[2]) < GOLDEN_REL_ERR
            assert (count == ref[3].numpy()).all() and (mask.astype(bool) == ref[1].numpy()).all()
            assert (tokens == ref[0].numpy()).all()
            print(f"B={b} T={t} F={f} D={d} P={p} {'fp16' if half else 'fp32'}: {ms.value * 1000:.1f} us per call")


def test_build_plugin_names_what_is_missing(tmp_path, monkeypatch):
    from stop_export.trt.plugin_build import PluginBuildError, build_plugin

    monkeypatch.delenv("TENSORRT_ROOT", raising=False)
    if shutil.which("cmake") is None or shutil.which("nvcc") is None:
        with pytest.raises(PluginBuildError, match="needs"):
            build_plugin(tmp_path, "desktop", str(tmp_path / "nowhere"))
        return
    if (
        Path("/usr/include/x86_64-linux-gnu/NvInfer.h").is_file()
        or Path("/usr/include/NvInfer.h").is_file()
        or Path("/usr/include/aarch64-linux-gnu/NvInfer.h").is_file()
    ):
        pytest.skip("no full TensorRT is what this test needs: this machine has TensorRT headers")
    with pytest.raises(PluginBuildError, match="NvInfer.h.*TENSORRT_ROOT"):
        build_plugin(tmp_path, "desktop", str(tmp_path / "nowhere"))
