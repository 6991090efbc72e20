"""Issue 25: choices made per CPU at run time — bf16 only where the CPU computes it natively."""

from __future__ import annotations

import contextlib
import logging

import pytest

from stop_train import cpu


@pytest.fixture
def flags(monkeypatch):
    def set_flags(*names: str) -> None:
        monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset(names))

    monkeypatch.delenv(cpu.FORCE_BF16_ENV, raising=False)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    return set_flags


def test_bf16_on_a_cpu_without_native_bf16_is_fp32_said_in_one_warning(flags, monkeypatch, caplog):
    flags("avx2", "fma")  # the AVX2 EPYC
    with caplog.at_level(logging.WARNING):
        assert cpu.cpu_precision("bf16", "--precision bf16") == "fp32"
    assert len(caplog.records) == 1 and "no native bf16" in caplog.text and "STOP_FORCE_BF16=1" in caplog.text
    assert cpu.cpu_precision("fp32", "x") == "fp32"
    monkeypatch.setenv(cpu.FORCE_BF16_ENV, "1")
    assert cpu.cpu_precision("bf16", "x") == "bf16"  # forced


def test_bf16_stays_where_the_cpu_has_it_unless_onednn_is_capped_below_it(flags, monkeypatch):
    flags("avx2", "avx512f", "avx512_bf16")
    assert cpu.cpu_precision("bf16", "x") == "bf16"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert cpu.cpu_precision("bf16", "x") == "fp32"
    flags("fp", "asimd", "bf16")  # Arm with the bf16 extension
    assert cpu.native_bf16()


def test_training_with_bf16_on_such_a_cpu_runs_in_fp32(flags):
    import torch

    from stop_train.engine.optim import precision_context

    flags("avx2", "fma")
    autocast, scaler = precision_context("bf16", torch.device("cpu"))
    assert autocast is contextlib.nullcontext and not scaler.is_enabled()
