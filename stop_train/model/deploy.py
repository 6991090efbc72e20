"""What a trained model becomes for deployment: the source (a run, a checkpoint folder or a preset, with its
labels, sampling and pre-processing), the frames-in classifier and the text encoder that the exporter traces
and the PyTorch backend runs, and the metadata both describe it with (`stop_train.schema`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import stop_train

from ..config import ModelConfig, load_config
from ..errors import StopError
from ..labels import DEFAULT_TEMPLATE, load_labels
from ..rundir import RunDir, locate
from ..schema import Metadata
from ..statistics import STATISTICS_FILE
from ..video import PreprocessCfg, SamplingCfg
from .factory import create_model, load_model, model_fingerprint
from .stop import STOP

log = logging.getLogger(__name__)


class ExportError(StopError, RuntimeError):
    """A source that cannot be exported, with the reason."""


@dataclass
class ExportSource:
    """What a run, checkpoint or preset gives the exporter."""

    model: STOP
    labels: list[str]
    template: str
    sampling: SamplingCfg
    preprocess: PreprocessCfg
    description: str
    task: str = "recognition"  # a retrieval run's model: no labels, no logits, the text encoder always
    statistics: Path | None = None  # the checkpoint's class statistics (`stop_train.statistics`), when it has them


def _load(source: str | Path, checkpoint: str | None) -> tuple[STOP, RunDir | None, Path | None, str]:
    """-> (model in eval mode, its run or None, where its class statistics would be, a description)."""
    path = Path(source)
    try:
        where = locate(path, checkpoint)
    except FileNotFoundError as err:  # a run without that checkpoint
        raise ExportError(str(err)) from None
    if where is not None:
        if where.run is not None and where.run.path == path:  # the run itself, not a checkpoint folder in it
            if checkpoint is None and where.checkpoint == "last":
                log.warning(
                    "%s has no best checkpoint (no validation picked one, or checkpoints/best is missing): "
                    "exporting the last one",
                    path,
                )
            described = f"run {path.resolve()} ({where.checkpoint})"
        else:
            described = f"model folder {path.resolve()}"
        return load_model(where.folder).eval(), where.run, where.folder / STATISTICS_FILE, described
    if path.suffix == ".json" and path.is_file() or not path.exists():
        try:
            cfg = load_config(source)
        except (FileNotFoundError, ValueError) as err:
            raise ExportError(f"{source!r} is not a run directory, a model folder or a preset ({err})") from None
        return create_model(cfg).eval(), None, None, f"preset {source} (random weights)"
    raise ExportError(
        f"{path} is neither a run directory (config.json + checkpoints/) nor a model folder "
        "(model.safetensors + config.json)"
    )


def resolve_source(
    source: str | Path,
    labels: str | None = None,
    template: str | None = None,
    checkpoint: str | None = None,
    task: str | None = None,
) -> ExportSource:
    """A run directory, a model/checkpoint folder (model.safetensors + config.json) or a preset name.

    Runs bring their labels, template and sampling; the others need `labels` (a label file or a bundled
    set name: ucf101, hmdb51, kinetics400, ssv2), which also replaces a run's labels when given.
    `task` (recognition, retrieval) defaults to the run's; a model folder or preset outside a run is a
    recognition model unless told otherwise (a converted published checkpoint is a retrieval model).
    A run's checkpoint defaults to `best`, or `last` when no validation has picked one yet.
    """
    model, run, stats, description = _load(source, checkpoint)
    bad = next(
        (k for k, v in model.state_dict().items() if v.is_floating_point() and not torch.isfinite(v).all()), None
    )
    if bad is not None:
        raise ExportError(
            f"{description}: the weights are not finite ({bad} holds NaN or infinity; the training "
            "diverged): nothing exported"
        )
    run_cfg = run.config if run is not None else {}
    train = run_cfg.get("train", {})
    task = task or train.get("task", "recognition")
    cfg = model.cfg
    sampling = SamplingCfg(**run_cfg["sampling"]) if "sampling" in run_cfg else SamplingCfg(frames=cfg.frames)
    if task == "retrieval":
        if labels:
            raise ExportError(
                f"{description} is a retrieval model: it has no labels to export (it searches with "
                "captions; stop-recognize --labels classifies with its text encoder)"
            )
        # labels given at run time (stop-recognize --labels, the app) are encoded as written, like captions
        return ExportSource(model, [], template or "{label}", sampling, PreprocessCfg.for_model(cfg), description, task)
    run_labels = run.labels() if run is not None else None
    if labels:
        classes = load_labels(labels)
    elif run_labels:
        classes = run_labels
    else:
        raise ExportError(
            f"{description} carries no labels: pass --labels FILE (one class per line) or a bundled "
            "set (ucf101, hmdb51, kinetics400, ssv2)"
        )
    return ExportSource(
        model,
        classes,
        template or train.get("template", DEFAULT_TEMPLATE),
        sampling,
        PreprocessCfg.for_model(cfg),
        description,
        statistics=stats if stats is not None and stats.is_file() else None,
    )


class VideoClassifier(nn.Module):
    """uint8 RGB frames (B, T, S, S, 3) -> the outputs of DECISIONS §3; normalisation inside the graph.
    `text_embedding` None: a retrieval model, whose outputs start at `video_embedding` (no logits)."""

    def __init__(self, model: STOP, text_embedding: torch.Tensor | None, pre: PreprocessCfg):
        super().__init__()
        self.model = model
        self.classify = text_embedding is not None
        if self.classify:
            self.register_buffer("text_embedding", F.normalize(text_embedding.detach().float(), dim=-1))
        shape = (1, 1, 3, 1, 1)
        self.register_buffer("mean", torch.tensor(pre.mean).mul(255.0).view(shape))
        self.register_buffer("inv_std", torch.tensor(pre.std).mul(255.0).reciprocal().view(shape))

    def forward(self, frames: torch.Tensor):
        # cast first: TensorRT takes uint8 only straight into a Cast (no Transpose on uint8)
        x = (frames.float().permute(0, 1, 4, 2, 3) - self.mean) * self.inv_std
        # a bf16 model (PyTorch backend) runs in bf16; the outputs are float32 in every precision
        # all tokens through the last block: the frames' class tokens are an output too (`frame_embedding`)
        hidden, aux = self.model.forward_visual(x.to(self.model.global_prompts.dtype), all_tokens=True)
        emb = F.normalize(self.model.video_features(hidden), dim=-1).float()
        frames = self.model.frame_embeddings(hidden).float()
        if self.model.dynamic:
            outs = (emb, aux["spatial_mask"], aux["gap_variation"].float(), aux["gap_prompt_count"], frames)
        else:
            outs = (emb, aux["spatial_mask"], aux["frame_weight"].float(), frames)
        if not self.classify:
            return outs
        return (self.model.logit_scale.float() * emb @ self.text_embedding.t(), *outs)


class TextEncoder(nn.Module):
    """Token ids (K, n) int64 from the tokenizer -> L2-normalised label embeddings (K, E)."""

    def __init__(self, model: STOP):
        super().__init__()
        self.model = model

    def forward(self, token_ids: torch.Tensor) -> torch.Tensor:
        return self.model.encode_text(token_ids)


def build_metadata(src: ExportSource, text_encoder: str = "", tokenizer: str = "", statistics: str = "") -> Metadata:
    cfg: ModelConfig = src.model.cfg
    pre = src.preprocess
    return Metadata(
        labels=list(src.labels),
        template=src.template,
        logit_scale=float(src.model.logit_scale),
        model=cfg,
        preprocess=pre,
        sampling=src.sampling,
        toolkit_version=stop_train.__version__,
        source=src.description,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        fingerprint=model_fingerprint(src.model),
        task=src.task,
        frame_embedding=True,
        statistics=statistics,
    )


def label_embeddings(src: ExportSource) -> torch.Tensor | None:
    """The label prompts' text embeddings (K, E) a recognition graph scores against; None for retrieval."""
    if src.task == "retrieval":
        return None
    with torch.no_grad():
        return src.model.encode_labels(src.labels, src.template)
