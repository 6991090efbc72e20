"""`Recognizer`: a backend plus what turns its outputs into labelled scores — softmax, top-k, the
test-view protocol for files, re-labelling through the exported text encoder and the classes of a label bank
(no PyTorch)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stop_train.labels import label_texts
from stop_train.schema import FRAME_OUTPUT, Metadata
from stop_train.statistics import FrameStatistics, StatisticsError
from stop_train.video.preprocess import PreprocessCfg
from stop_train.video.sampling import SamplingCfg

from .backends import Backend, open_backend, statistics_file
from .bank import LabelBank
from .bank_head import Head
from .buffer import ClipBuffer
from .errors import BackendError
from .text import TextEncoder


def top_k(scores: np.ndarray, labels: list[str], k: int) -> list[tuple[str, float]]:
    """The k best (label, score) pairs of one score vector (K,)."""
    order = np.argsort(-scores)[:k]
    return [(labels[i], float(scores[i])) for i in order]


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@dataclass
class Prediction:
    scores: np.ndarray  # (B, K) softmax over the labels
    outputs: dict[str, np.ndarray]  # every graph output (logits, video_embedding, overlays)
    labels: list[str] = field(default_factory=list)  # the K labels the scores are over

    def top(self, k: int = 5, labels: list[str] | None = None, row: int = 0) -> list[tuple[str, float]]:
        names = labels or self.labels or [str(i) for i in range(self.scores.shape[-1])]
        return top_k(self.scores[row], names, k)


class Recognizer:
    """Scores clips with a backend; `set_labels` re-labels an ONNX model without PyTorch. `set_labels` may run
    in another thread than `predict`: each prediction carries the labels its scores are over."""

    def __init__(self, backend: Backend):
        self.backend = backend
        self.meta: Metadata = backend.metadata
        # (labels, the classifier over them or None for the graph's own logits), replaced as one object
        self._head: tuple[list[str], Head | None] = (list(self.meta.labels), None)
        self._given: tuple[list[str], np.ndarray] | None = None  # labels given to set_labels, their text embeddings
        self.bank: LabelBank | None = None
        self._statistics: FrameStatistics | None | bool = False  # False: not read yet
        self._stats_notes: list[str] = []  # why the statistics beside the model are not used
        self._bank_note = ""  # why the bank's head is scored by the cache, for the bank as it is now
        self.preprocess: PreprocessCfg = self.meta.preprocess
        self.sampling: SamplingCfg = self.meta.sampling

    @classmethod
    def open(
        cls,
        model: str | Path,
        backend: str = "auto",
        threads: int = 0,
        labels: str | None = None,
        plugin: str | None = None,
    ) -> Recognizer:
        """A model file (.onnx, or .engine with its sidecar; `plugin`: the TemporalPromptInsert library an
        engine may need, else $STOP_TPI_PLUGIN) or a run / model folder (torch backend). Raises BackendError."""
        return cls(open_backend(model, backend, threads, labels=labels, plugin=plugin))

    @property
    def labels(self) -> list[str]:
        return list(self._head[0])

    def clip_buffer(self, predict_every_s: float, frame_interval_s: float | None = None) -> ClipBuffer:
        """The live clip buffer for this model (DECISIONS §4): its T frames, `frame_interval_s` apart (default:
        the time scale the model learned, from the metadata), pre-processed as in training; a prediction falls
        due every `predict_every_s` seconds. Raises ValueError for non-positive times."""
        interval = frame_interval_s or self.sampling.frame_interval_s
        return ClipBuffer(self.meta.frames, interval, predict_every_s, self.preprocess)

    def predict(self, frames: np.ndarray) -> Prediction:
        """uint8 RGB (B, T, S, S, 3) (or one clip (T, S, S, 3)) -> scores over `self.labels`."""
        frames = np.asarray(frames)
        if frames.ndim == 4:
            frames = frames[None]
        if frames.dtype != np.uint8 or frames.shape[1:] != self.meta.input_shape:
            raise ValueError(
                f"expected uint8 frames (B, {', '.join(map(str, self.meta.input_shape))}), "
                f"got {frames.dtype} {frames.shape}"
            )
        labels, head = self._head
        if head is None and self.meta.task == "retrieval":
            raise BackendError(
                "a retrieval model has no labels of its own: give labels to score against "
                "(stop-recognize --labels FILE or --bank BANK), or search with stop-search"
            )
        outputs = self.backend.run(np.ascontiguousarray(frames))
        if head is not None:
            logits = head.logits(
                outputs["video_embedding"], self.meta.logit_scale, outputs.get("logits"), outputs.get(FRAME_OUTPUT)
            )
        else:
            logits = outputs["logits"]
        return Prediction(softmax(logits.astype(np.float64)), outputs, list(labels))

    def predict_file(self, path: str | Path) -> Prediction:
        """The test protocol stored in the metadata: N clips x M crops of the whole file, averaged."""
        from stop_train.video.decode import probe_exact
        from stop_train.video.views import eval_views

        pred = self.predict(eval_views(path, probe_exact(path), self.sampling, self.preprocess))
        mean = pred.scores.mean(axis=0, keepdims=True)
        return Prediction(mean, pred.outputs, pred.labels)

    def prompts(self, labels: list[str], template: str | None = None) -> list[str]:
        """The prompt texts of class keys (`template`, default the model's)."""
        return label_texts(labels, template or self.meta.template)

    def embed_labels(self, labels: list[str], template: str | None = None) -> np.ndarray:
        """Unit text embeddings (K, E) of class keys' prompts, through the exported text encoder (or the PyTorch
        backend's own text tower). Raises BackendError when the model has none beside it."""
        if hasattr(self.backend, "encode_text"):
            return np.asarray(self.backend.encode_text(self.prompts(labels, template)), np.float32)
        path, name = getattr(self.backend, "path", None), self.meta.text_encoder
        if path is None or not name or not (Path(path).parent / name).is_file():
            raise BackendError(
                "this model has no text encoder beside it: re-export with stop-export "
                "(it writes <name>.text.onnx and the BPE file)"
            )
        return TextEncoder(Path(path).parent / name, self.meta.fingerprint).encode(self.prompts(labels, template))

    def set_labels(self, labels: list[str], template: str | None = None) -> None:
        """Score against new class keys: their prompts go through the exported text encoder."""
        self._given = (list(labels), self.embed_labels(labels, template))
        self._rebuild()

    def set_bank(self, bank: LabelBank | None) -> None:
        """Add a label bank's classes (and examples) to the labels scored (the model's own, or those given to
        `set_labels`); call again after the bank changed. None removes it. Raises BankError for a bank of
        another model."""
        if bank is not None:
            bank.check_model(self.meta, str(getattr(self.backend, "path", None) or "this model"))
        self.bank = bank
        self._rebuild()

    @property
    def notes(self) -> list[str]:
        """What a user should know about how the labels are scored now (statistics not used, and why the bank
        falls back to the example cache)."""
        return [*self._stats_notes, *([self._bank_note] if self._bank_note and self.bank is not None else [])]

    @property
    def bank_head_uses_means(self) -> bool:
        """The labels are scored by class means of frame embeddings (the model's class statistics)."""
        head = self._head[1]
        return head is not None and head.means is not None

    @property
    def scoring(self) -> str:
        """How the labels are scored now, for messages."""
        head = self._head[1]
        if head is None:
            return "the model's own logits"
        if self.bank_head_uses_means:
            return "the class means of frame embeddings (the model's class statistics with the examples)"
        if len(head.keys):
            return f"text and the example cache (alpha {head.alpha:g}, beta {head.beta:g})"
        return "text"

    @property
    def statistics(self) -> FrameStatistics | None:
        """The model's class statistics, read once when a bank needs them; None when it has none (a file that is
        missing, damaged or another model's is a note in `notes`, and the bank is scored by its cache)."""
        if self._statistics is False:
            self._statistics = None
            path = statistics_file(self.backend)
            if path is not None:
                try:
                    stats = FrameStatistics.load(path)
                except StatisticsError as err:
                    self._stats_notes.append(f"{err}: taught classes are scored by the example cache alone")
                else:
                    if not stats.fingerprint or stats.fingerprint != self.meta.fingerprint:
                        whose = "carries no model fingerprint" if not stats.fingerprint else "belongs to another model"
                        self._stats_notes.append(
                            f"{path} {whose}: taught classes are scored by the example cache alone "
                            "(re-export the model: stop-export writes its own)"
                        )
                    elif stats.dim != self.meta.frames * self.meta.model.embed_dim:
                        self._stats_notes.append(
                            f"{path} does not fit the model (features {stats.dim} wide): taught classes "
                            "are scored by the example cache alone"
                        )
                    else:
                        self._statistics = stats
        return self._statistics

    def _rebuild(self) -> None:
        self._bank_note = ""
        if self._given is not None:
            labels, text = self._given
        else:
            labels, text = ([] if self.meta.task == "retrieval" else list(self.meta.labels)), None
        if self.bank is not None and self.bank.classes:
            stats = self.statistics if len(self.bank.example) else None
            head = self.bank.head(labels, text, stats)
            self._bank_note = self.bank.without_means(head.labels, stats)
        elif text is not None:
            head = Head(
                labels,
                text,
                np.ones(len(labels), bool),
                np.zeros((0, text.shape[1]), np.float32),
                np.zeros(0, np.int64),
                0.0,
                0.0,
            )
        else:
            head = None
        self._head = (head.labels if head is not None else labels, head)
