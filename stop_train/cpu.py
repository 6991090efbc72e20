"""What this CPU computes natively, for choices made at run time (torch-free; reads /proc/cpuinfo on Linux)."""

from __future__ import annotations

import functools
import logging
import os

log = logging.getLogger(__name__)

FORCE_BF16_ENV = "STOP_FORCE_BF16"  # 1: use bf16 on the CPU even without native support
# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) that still allow its bf16 instructions
_BF16_ISAS = (
    "ALL",
    "AVX512_CORE_BF16",
    "AVX512_CORE_FP16",
    "AVX512_CORE_AMX",
    "AVX512_CORE_AMX_FP16",
    "AVX10_1_512",
    "AVX10_1_512_AMX",
    "AVX10_1_512_AMX_FP16",
    "AVX10_2_512",
    "AVX10_2_512_AMX_2",
)


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str] | None:
    """The CPU's feature flags (x86 'flags', Arm 'Features'), or None where /proc/cpuinfo does not say."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return None


def native_bf16() -> bool:
    """Whether bf16 matmuls and convolutions run natively here: AVX512-BF16 or AMX on x86 (and oneDNN not capped
    below them by ONEDNN_MAX_CPU_ISA), the bf16 extension on Arm. Without such instructions PyTorch emulates
    bf16 far slower than FP32 (an AVX2 host did not finish three stop-b32 forwards in ten minutes). True where
    the CPU's flags cannot be read."""
    flags = cpu_flags()
    if flags is None:
        return True
    if "bf16" in flags:  # Arm
        return True
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    return bool({"avx512_bf16", "amx_bf16"} & flags) and cap in _BF16_ISAS


def cpu_precision(precision: str, what: str) -> str:
    """`precision` for work on the CPU: 'bf16' becomes 'fp32', said in one warning, where bf16 is not native
    (unless STOP_FORCE_BF16=1). `what` names the work in the warning."""
    if precision != "bf16" or native_bf16() or os.environ.get(FORCE_BF16_ENV) == "1":
        return precision
    log.warning(
        "%s: this CPU has no native bf16 (AVX512-BF16 or AMX), where bf16 runs many times slower than "
        "FP32: using FP32 (%s=1 forces bf16)",
        what,
        FORCE_BF16_ENV,
    )
    return "fp32"
