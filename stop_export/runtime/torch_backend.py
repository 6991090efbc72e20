"""The PyTorch backend: a run directory, model folder or preset run by PyTorch (`stop-recognize --backend
torch|torch-bf16`). The one runtime module that imports torch and the model, and only when chosen: it needs
the `train` extra, nothing of export."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import BackendError


class TorchBackend:
    """PyTorch eager on a run directory, model folder or preset (needs the `train` extra)."""

    def __init__(self, source: str | Path, labels: str | None = None, device: str = "cpu", precision: str = "fp32"):
        try:
            import torch

            from stop_train.model.deploy import (
                ExportError,
                VideoClassifier,
                build_metadata,
                label_embeddings,
                resolve_source,
            )
        except ImportError as err:
            raise BackendError(
                f"{source} is not an .onnx or .engine file, so it is read as a run directory, model "
                f"folder or preset by the PyTorch backend, which needs torch and the training extra "
                f"({err})"
            ) from None
        from stop_train.cpu import cpu_precision

        dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
        if precision not in dtypes:
            raise BackendError(f"precision {precision!r} is not one of {', '.join(dtypes)}")
        if device == "cpu":
            precision = cpu_precision(precision, "the torch-bf16 backend")
        try:
            src = resolve_source(source, labels=labels)
            text = label_embeddings(src)
        except ExportError as err:  # a mistyped model path lands here: one line, as for the other backends
            raise BackendError(str(err)) from None
        self.torch = torch
        self.model = src.model.to(dtypes[precision]).to(device).eval()
        self.module = VideoClassifier(self.model, text, src.preprocess).to(device).eval()
        self.device = device
        self.metadata = build_metadata(src)
        self.statistics_file = src.statistics  # the checkpoint's own (`stop_train.statistics`), or None
        self.path = None  # no model file: the text encoder is the model's own (`encode_text`)
        self.name = f"pytorch-{device}" + ("-bf16" if precision == "bf16" else "")

    def encode_text(self, texts: list[str]) -> np.ndarray:
        """Unit text embeddings (N, E) float32 of `texts` (prompts, as written), by the model's own text tower."""
        with self.torch.no_grad():
            out = self.model.encode_text(self.model.tokenize(texts).to(self.device))
        return out.float().cpu().numpy()

    def run(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        with self.torch.no_grad():
            outs = self.module(self.torch.from_numpy(np.ascontiguousarray(frames)).to(self.device))
        return {name: out.cpu().numpy() for name, out in zip(self.metadata.outputs, outs)}
