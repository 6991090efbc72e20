"""The one versioned metadata schema (DECISIONS §3): written into ONNX `metadata_props` and into the JSON
sidecar of a TensorRT engine, read by every runtime. Stdlib only."""
from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

SCHEMA_VERSION = 1
METADATA_KEY = "stop"  # metadata_props key holding the JSON document
INPUT_NAME = "frames"
DYNAMIC_OUTPUTS = ("logits", "video_embedding", "spatial_mask", "gap_variation", "gap_prompt_count")
OFFICIAL_OUTPUTS = ("logits", "video_embedding", "spatial_mask", "frame_weight")
TEXT_INPUT = "token_ids"
TEXT_OUTPUT = "text_embedding"


class MetadataError(ValueError):
    """Metadata missing, from a newer schema, or inconsistent with the model file."""


@dataclass
class Metadata:
    labels: list[str]  # canonical class keys, in dataset index order
    template: str  # prompt text for labels ("a video of a person {label}.")
    logit_scale: float  # logits = logit_scale * video_embedding . text_embedding^T
    mode: str  # 'dynamic' or 'official'
    frames: int  # T
    size: int  # square input side S
    preprocess: dict[str, Any]  # mean, std (0-1 RGB), resize and crop rule
    sampling: dict[str, Any]  # sampler, frame_interval_s, test_clips, test_crops (DECISIONS §4)
    model: dict[str, Any]  # the ModelConfig fields
    toolkit_version: str
    source: str = ""  # what was exported (run directory, checkpoint, preset)
    text_encoder: str = ""  # file name of the text-encoder ONNX beside the model ('' = none)
    tokenizer: str = ""  # file name of the tokenizer JSON beside the model
    tensorrt: dict[str, Any] = field(default_factory=dict)  # engine sidecars: version, compute capability, plugin
    # the weights and model config (not the labels): equal for an ONNX file and every engine built from it;
    # '' in files exported before it was recorded
    fingerprint: str = ""
    schema_version: int = SCHEMA_VERSION

    @property
    def outputs(self) -> tuple[str, ...]:
        return DYNAMIC_OUTPUTS if self.mode == "dynamic" else OFFICIAL_OUTPUTS

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """(T, S, S, 3) per video; the batch is dynamic."""
        return (self.frames, self.size, self.size, 3)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None, where: str = "model") -> "Metadata":
        if not text:
            raise MetadataError(f"{where} carries no STOP metadata (key {METADATA_KEY!r}): export it with stop-export")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise MetadataError(f"{where}: STOP metadata is not valid JSON ({err})") from None
        version = data.get("schema_version")
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise MetadataError(
                f"{where} uses metadata schema {version!r}; this toolkit reads up to {SCHEMA_VERSION}: upgrade stop-toolkit"
            )
        known = {f.name for f in fields(cls)}
        missing = [f.name for f in fields(cls) if f.name not in data and f.default is MISSING
                   and f.default_factory is MISSING]
        if missing:
            raise MetadataError(f"{where}: STOP metadata lacks {', '.join(missing)}")
        meta = cls(**{k: v for k, v in data.items() if k in known})
        meta.validate(where)
        return meta

    def validate(self, where: str = "model") -> None:
        if self.mode not in ("dynamic", "official"):
            raise MetadataError(f"{where}: unknown mode {self.mode!r}")
        if not self.labels:
            raise MetadataError(f"{where}: no labels in the metadata")
        if self.frames < 2 or self.size < 1:
            raise MetadataError(f"{where}: frames={self.frames}, size={self.size} are not a model input")
