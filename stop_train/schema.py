"""The one versioned metadata schema (DECISIONS §3): written into ONNX `metadata_props` and into the JSON
sidecar of a TensorRT engine, read by every runtime. Torch-free and onnx-free (DECISIONS §9).

Schema 2 holds the model, pre-processing and sampling configs as typed objects, with T and the input size
stored once (in the model config and the pre-processing). Schema 1 files (frames, size and mode beside
untyped dicts) still open: they are checked for agreement and read into the same object.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from stop_train.config import ModelConfig
from stop_train.video.preprocess import PreprocessCfg
from stop_train.video.sampling import SamplingCfg

from .errors import StopError

SCHEMA_VERSION = 2
METADATA_KEY = "stop"  # metadata_props key holding the JSON document
INPUT_NAME = "frames"
DYNAMIC_OUTPUTS = ("logits", "video_embedding", "spatial_mask", "gap_variation", "gap_prompt_count")
OFFICIAL_OUTPUTS = ("logits", "video_embedding", "spatial_mask", "frame_weight")
FRAME_OUTPUT = "frame_embedding"  # (B, T, E), last, in files that have it (`Metadata.frame_embedding`)
TEXT_INPUT = "token_ids"
TEXT_OUTPUT = "text_embedding"
TASKS = ("recognition", "retrieval")  # retrieval: no labels and no logits; the text encoder is always beside it


class MetadataError(StopError, ValueError):
    """Metadata missing, from a newer schema, or inconsistent with the model file."""


@dataclass
class Metadata:
    labels: list[str]  # canonical class keys, in dataset index order
    template: str  # prompt text for labels ("a video of a person {label}.")
    logit_scale: float  # logits = logit_scale * video_embedding . text_embedding^T
    model: ModelConfig  # the run's one model config (mode, T = model.frames, ...)
    preprocess: PreprocessCfg  # input side S, mean, std (0-1 RGB); resize short side + centre crop
    sampling: SamplingCfg  # sampler, frame_interval_s, test_clips, test_crops (DECISIONS §4)
    toolkit_version: str
    source: str = ""  # what was exported (run directory, checkpoint, preset)
    text_encoder: str = ""  # file name of the text-encoder ONNX beside the model ('' = none)
    tokenizer: str = ""  # file name of the tokenizer JSON beside the model
    tensorrt: dict[str, Any] = field(default_factory=dict)  # engine sidecars: version, compute capability, plugin
    # the weights and model config (not the labels): equal for an ONNX file and every engine built from it;
    # '' in files exported before it was recorded
    fingerprint: str = ""
    task: str = "recognition"  # TASKS; files exported before it was recorded are recognition models
    # the graph's last output is `frame_embedding` (B, T, E); False in files exported before it existed
    frame_embedding: bool = False
    # file name, beside the model, of its class statistics (`stop_train.statistics`); '' = none
    statistics: str = ""
    schema_version: int = SCHEMA_VERSION

    @property
    def mode(self) -> str:
        return self.model.mode

    @property
    def frames(self) -> int:
        """T."""
        return self.model.frames

    @property
    def size(self) -> int:
        """The square input side S."""
        return self.preprocess.size

    @property
    def outputs(self) -> tuple[str, ...]:
        """The graph's outputs, in order: a retrieval model has no `logits`."""
        names = (DYNAMIC_OUTPUTS if self.mode == "dynamic" else OFFICIAL_OUTPUTS) + (
            FRAME_OUTPUT,
        ) * self.frame_embedding
        return names if self.task == "recognition" else names[1:]

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """(T, S, S, 3) per video; the batch is dynamic."""
        return (self.frames, self.size, self.size, 3)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None, where: str = "model") -> Metadata:
        """Read schema 1 or 2. Raises MetadataError for none, bad JSON, a newer schema, missing or
        inconsistent fields."""
        if not text:
            raise MetadataError(f"{where} carries no STOP metadata (key {METADATA_KEY!r}): export it with stop-export")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise MetadataError(f"{where}: STOP metadata is not valid JSON ({err})") from None
        if not isinstance(data, dict):
            raise MetadataError(f"{where}: STOP metadata is not a JSON object")
        version = data.get("schema_version")
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise MetadataError(
                f"{where} uses metadata schema {version!r}; this toolkit reads up to {SCHEMA_VERSION}: upgrade stop-toolkit"
            )
        missing = [
            f.name for f in fields(cls) if f.name not in data and f.default is MISSING and f.default_factory is MISSING
        ]
        if missing:
            raise MetadataError(f"{where}: STOP metadata lacks {', '.join(missing)}")
        data = dict(data)
        try:
            model = ModelConfig.from_dict(data.pop("model"))
            pre, sampling = data.pop("preprocess"), data.pop("sampling")
            preprocess = PreprocessCfg(
                size=int(pre.get("size", data.get("size", model.vision.image_size))),
                mean=tuple(pre["mean"]),
                std=tuple(pre["std"]),
            )
            known = {f.name for f in fields(SamplingCfg)}
            sampling = SamplingCfg(**{k: v for k, v in sampling.items() if k in known})
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise MetadataError(
                f"{where}: STOP metadata has an unreadable model, preprocess or sampling ({err})"
            ) from None
        if version == 1:  # frames, size and mode were stored beside the configs: they must agree
            old = {"frames": model.frames, "size": preprocess.size, "mode": model.mode}
            differ = [f"{k} {data[k]!r} vs {v!r}" for k, v in old.items() if k in data and data[k] != v]
            if differ:
                raise MetadataError(f"{where}: STOP metadata disagrees with its model config: {', '.join(differ)}")
        known = {f.name for f in fields(cls)}
        rest = {k: v for k, v in data.items() if k in known and k != "schema_version"}
        meta = cls(model=model, preprocess=preprocess, sampling=sampling, **rest)
        meta.validate(where)
        return meta

    def validate(self, where: str = "model") -> None:
        if self.task not in TASKS:
            raise MetadataError(f"{where}: task {self.task!r} is not one of {', '.join(TASKS)}: upgrade stop-toolkit")
        if self.task == "recognition" and not self.labels:
            raise MetadataError(f"{where}: no labels in the metadata")
        if self.task == "retrieval" and not self.text_encoder:
            raise MetadataError(f"{where}: a retrieval model needs its text encoder (metadata names none)")
        if self.statistics and (Path(self.statistics).name != self.statistics or self.statistics in (".", "..")):
            raise MetadataError(
                f"{where}: the class statistics must be named as a file beside the model, got {self.statistics!r}"
            )
        if self.sampling.frames != self.model.frames:
            raise MetadataError(f"{where}: sampling takes {self.sampling.frames} frames, the model {self.model.frames}")
        if self.preprocess.size != self.model.vision.image_size:
            raise MetadataError(
                f"{where}: pre-processing gives {self.preprocess.size} px, the model takes "
                f"{self.model.vision.image_size}"
            )
