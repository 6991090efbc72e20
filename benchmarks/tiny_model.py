"""The model the app benchmarks use when none is given: the tiny preset (random weights, UCF101's labels)."""

from __future__ import annotations

from pathlib import Path


def model_or_tiny(model: str | None, work: Path) -> str:
    """`model` as given, else the tiny preset exported into `work` (no text encoder)."""
    if model is not None:
        return model
    from stop_export.cli import export_main

    path = str(work / "tiny.onnx")
    export_main(["tiny", "--labels", "ucf101", "-o", path, "--no-text-encoder"])
    return path
