"""The one visible training configuration. Every field is a `stop-train` flag (`--batch-size 8`); model
config fields are set with `--model key=value` (e.g. `--model mode=official`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..data.types import RETRIEVAL_DATASETS
from ..errors import ConfigError
from ..labels import DEFAULT_TEMPLATE

TASKS = {"recognition": "synthetic-motion", "retrieval": "synthetic-captions"}  # task -> its default dataset

# the published retrieval recipe's model settings (STOP msrvtt.sh: 12 frames, max_words 32), applied to a new
# retrieval run unless --model sets them
RETRIEVAL_MODEL_DEFAULTS = {"frames": 12, "text.max_tokens": 32}


PROBES = ("exact", "fast")  # how videos are indexed (TrainConfig.probe)


@dataclass
class TrainConfig:
    # recognition (class labels) | retrieval (captions, text-video search); '' = retrieval for a caption dataset
    task: str = ""
    # data
    # recognition: ucf101 | hmdb51 | kinetics400 | ssv2 | folder | list | synthetic-motion;
    # retrieval: msrvtt | captions | synthetic-captions ('' = the task's synthetic set)
    dataset: str = ""
    data_root: str = ""  # dataset root ('' with synthetic-motion: generated under runs/.synthetic-motion)
    fold: int = 1  # official split of UCF101 / HMDB51
    val_fraction: float = 0.1  # grouped hold-out from train where the dataset has no validation split (0 = none)
    split_dir: str = ""  # ucf101 / hmdb51: folder of the official split files ('' = found beside the videos)
    # list / kinetics400: '<path> <label>' file of the train split ('' = standard names in the root); captions:
    # its CSV / JSON-lines caption file; msrvtt: MSRVTT_train.9k.csv (default) or MSRVTT_train.7k.csv
    train_list: str = ""
    val_list: str = ""  # list / kinetics400 / captions: the same for val
    test_list: str = ""  # list / captions: the same for test; msrvtt: MSRVTT_JSFUSION_test.csv (default)
    classes: str = ""  # list: class names, a label file or set name ('' = inferred from the lists)
    annotations: str = ""  # kinetics400 / ssv2 / msrvtt: folder of the annotation files ('' = found under the root)
    # ssv2 / msrvtt: the video folder; kinetics400: the folder holding train/ and val/ ('' = found under the root)
    video_dir: str = ""
    video_ext: str = ""  # kinetics400 / ssv2 / msrvtt: video file extension ('' = found on disk)
    extensions: str = ""  # folder: comma-separated video extensions ('' = .avi,.mp4,.mkv,.webm,.mov)
    flip_safe: bool | None = None  # folder / list: horizontal flips keep every label (None = yes)
    workers: int = 2  # data-loading processes
    probe_cache: str = ""  # JSON cache of frame counts ('' = <runs_root>/.probe-cache.json)
    # exact: each video's frame index verified by decoding it once (cached); fast: from its packets only, which
    # cannot see packets the decoder rejects mid-file (each shifts later frames by one against ffmpeg)
    probe: str = "exact"
    # sampling and pre-processing (DECISIONS §4)
    sampler: str = "segments"  # segments | interval
    frame_interval_s: float = 0.5  # interval sampler
    test_clips: int = 1  # N test views in time
    test_crops: int = 1  # M test crops (1 or 3)
    augment: bool = False  # random crop position (+ flip where the dataset is flip-safe); off = published recipe
    shuffle_frames: bool = False  # diagnostic: shuffle each clip's frame order (train and test) to remove order cues
    template: str = DEFAULT_TEMPLATE  # prompt text for labels
    dual_softmax: bool = False  # retrieval: also report dual-softmax re-ranked figures (dsl_*, apart from the default)
    # model
    preset: str = "stop-b32"  # model preset or JSON file; only a new run reads it (config.json holds the result)
    pretrained: str = ""  # CLIP weights: open_clip tag, local file, or 'none' ('' = the preset's: openai, tiny none)
    model: dict[str, Any] = field(default_factory=dict)  # ModelConfig overrides
    # optimisation (published recipe)
    epochs: int = 10
    max_steps: int = 0  # stop after this many optimizer steps (0 = run all epochs)
    batch_size: int = 32  # clips per optimizer step and process, before accumulation
    grad_accum: int = 1  # micro-batches per optimizer step
    lr: float = 1e-3
    backbone_lr_scale: float = 1.0  # lr multiplier for the CLIP weights (the published code's coef_lr)
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    weight_decay: float = 0.2
    decay_exclude: str = "bias"  # 'bias' (published) or 'bias-norm-prompt' (deviation: also norms and prompts)
    warmup: float = 0.1  # fraction of steps with linear warm-up, then cosine
    grad_clip: float = 1.0
    label_smoothing: float = 0.0
    precision: str = "auto"  # auto (bf16 on GPU, fp32 on CPU) | fp32 | bf16 | fp16
    # run
    run_dir: str = ""  # '' = runs/<dataset>-<preset>-<time>
    resume: str = ""  # run directory to continue
    seed: int = 0
    save_every: int = 0  # also checkpoint every N steps (0 = at epoch ends only)
    device: str = "auto"  # auto | cpu | cuda

    def __post_init__(self) -> None:
        if not self.task:
            self.task = "retrieval" if self.dataset in RETRIEVAL_DATASETS else "recognition"
        if self.task not in TASKS:
            raise ConfigError(f"task {self.task!r} is not one of {', '.join(TASKS)}")
        if not self.dataset:
            self.dataset = TASKS[self.task]
        if self.probe not in PROBES:
            raise ConfigError(f"probe {self.probe!r} is not one of {', '.join(PROBES)}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown training option(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
        data = dict(data)
        if "betas" in data:
            data["betas"] = tuple(data["betas"])
        return cls(**data)


# datasets generated into --data-root when it is empty (no download, no files to bring)
GENERATED_DATASETS = ("synthetic-motion", "synthetic-captions")

# TrainConfig field -> (indexer option, the datasets that take it)
DATASET_FLAGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "split_dir": ("split_dir", ("ucf101", "hmdb51")),
    "train_list": ("lists", ("list", "kinetics400", "captions", "msrvtt")),
    "val_list": ("lists", ("list", "kinetics400", "captions")),
    "test_list": ("lists", ("list", "captions", "msrvtt")),
    "classes": ("classes", ("list",)),
    "annotations": ("annotations", ("kinetics400", "ssv2", "msrvtt")),
    "video_dir": ("videos", ("kinetics400", "ssv2", "msrvtt")),
    "video_ext": ("ext", ("kinetics400", "ssv2", "msrvtt")),
    "extensions": ("extensions", ("folder",)),
    "flip_safe": ("flip_safe", ("folder", "list")),
}
