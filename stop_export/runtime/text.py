"""The exported text encoder, run with ONNX Runtime and the torch-free tokenizer: texts -> unit embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stop_train.schema import METADATA_KEY, TEXT_INPUT, Metadata

from .errors import BackendError
from .tokenizer import ClipTokenizer


def text_encoder_beside(model: str | Path) -> Path:
    """The text-encoder ONNX file that `stop-export` wrote beside `model` (an .onnx, a .engine with its sidecar, or
    the text encoder itself). Raises BackendError when there is none."""
    path = Path(model)
    if path.name.endswith(".text.onnx"):
        found = path
    elif path.suffix == ".engine":
        from .trt_backend import read_sidecar

        name = read_sidecar(path).text_encoder
        found = path.with_name(name) if name else None
    else:
        found = path.with_name(path.stem + ".text.onnx")
    if found is None or not found.is_file():
        raise BackendError(
            f"{path} has no text encoder beside it: re-export with stop-export (it writes "
            "<name>.text.onnx and the BPE file)"
        )
    return found


class TextEncoder:
    """A text-encoder ONNX file (`<name>.text.onnx`) and the BPE file its metadata names, on the CPU.

    `metadata` is the model's (the same document as the video graph's, fingerprint included)."""

    def __init__(self, path: str | Path, fingerprint: str = ""):
        """`fingerprint`: the model's; a text encoder of another export is refused (BackendError)."""
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise BackendError(f"no text encoder at {self.path}")
        try:
            self.session = ort.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
        except Exception as err:  # ORT raises its own exception types
            raise BackendError(f"ONNX Runtime cannot load {self.path}: {err}") from None
        self.metadata = Metadata.from_json(
            self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY), str(self.path)
        )
        if fingerprint and self.metadata.fingerprint != fingerprint:
            raise BackendError(
                f"{self.path} belongs to another export than the model beside it (fingerprint "
                f"{self.metadata.fingerprint or 'none'}, the model's {fingerprint}), as an export "
                "stopped midway leaves it: export again with stop-export"
            )
        bpe = self.path.parent / self.metadata.tokenizer
        if not self.metadata.tokenizer or not bpe.is_file():
            raise BackendError(
                f"{self.path}: the BPE file {self.metadata.tokenizer or '(none named)'} is not beside it"
            )
        self.tokenizer = ClipTokenizer(bpe)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Texts (K,) -> L2-normalised embeddings (K, E) float32."""
        ids = self.tokenizer(list(texts), self.metadata.model.text.max_tokens)
        (emb,) = self.session.run(None, {TEXT_INPUT: ids})
        return (emb / np.linalg.norm(emb, axis=-1, keepdims=True)).astype(np.float32)
