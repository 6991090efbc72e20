"""Label banks (torch-free): teach a model new classes from a few example clips, on the edge box.

A bank holds, for each class, the text-prompt embedding of its name (or none: an example-only class) and the
video embeddings and frame embeddings of its example clips (one example = one clip of a file's time range, or
of frames recorded from a camera, under the metadata's eval sampling: `embed_example`).

When the model carries its class statistics (`stop_train.statistics`) and every class scored has clips behind it
(the model's training videos, or examples), every class is the mean frame embedding of those clips and a clip is
scored by Gaussian discriminant analysis (`ClassMeans`; the formula is in `stop_train.statistics`). Otherwise
(labels of the user's own, a model without statistics or frame embeddings, a version-1 bank) classification is
Tip-Adapter's training-free cache (Zhang et al., "Tip-Adapter: Training-free Adaption of CLIP for Few-shot Classification",
ECCV 2022, eq. 6), with the model's own logit scale s in place of CLIP's 100:

    logits = s * f W^T + alpha * exp(-beta * (1 - f F^T)) L

f (B, E) unit video embeddings, W (K, E) the classes' unit text embeddings, F (N, E) the unit example
embeddings, L (N, K) their one-hot classes. A class without examples keeps its text logit alone, so a bank
without examples gives today's text-only logits. An example-only class has no text to compare: its first term
is the clip's mean text logit over the classes that have text (neutral, so that only its examples lift it: a
video lies closer to other videos than to any text, and the cosine to its examples' mean would win
everywhere), or, when no class has text, s times the cosine to the unit mean of its examples (its prototype).

A bank is two files, `BANK.json` (format version, the model fingerprint, alpha and beta, the classes with each
example's source and time range) and `BANK.npz` (text embeddings (C, E), example embeddings (N, E), their
class (N,), their frame embeddings (N, T*E), or (0, 0) when an example lacks them, and the document of BANK.json:
one rename writes a bank, `files`); no pickle. The fingerprint covers the weights and config, so an ONNX file and the engines built
from it share a bank, and any other model is refused.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from stop_train.data.types import VIDEO_EXTENSIONS
from stop_train.errors import StopError
from stop_train.schema import Metadata
from stop_train.statistics import FrameStatistics

from .files import pair_exists, paired_paths, read_pair, write_pair

BANK_VERSION = 2  # 2: the examples' frame embeddings
# chosen by benchmarks/few_shot_check.py --epochs 18 (issue 15): the best mean held-out top-1 with 5 examples per
# class among the settings that keep every model's trained classes within 2 points of text only (three held-out
# pairs); a sharp beta: only clips close to an example are lifted (README, learning check)
DEFAULT_ALPHA = 2.0
DEFAULT_BETA = 12.0
ALPHA_GRID = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)  # leave-one-out tuning
BETA_GRID = (1.0, 3.0, 5.5, 8.0, 12.0)


# a --bank with one of these suffixes is a clip (video or image) or a model given in the wrong place, not a bank
CLIP_SUFFIXES = (*VIDEO_EXTENSIONS, ".m4v", ".mpg", ".mpeg", ".ts", ".gif", ".jpg", ".jpeg", ".png", ".bmp")
NOT_BANK_SUFFIXES = (*CLIP_SUFFIXES, ".onnx", ".engine")


class BankError(StopError, ValueError):
    """A bank that cannot be read, that belongs to another model, or a request it cannot satisfy."""


def class_name(text: str) -> str:
    """A class name as stored: `text` without surrounding white space. Raises BankError for an empty name or one
    with a control character (a new line, a tab: a name is one line of a list or a banner)."""
    name = text.strip()
    if not name:
        raise BankError("a class needs a name")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise BankError(f"a class name is one line of text without tabs: {name!r}")
    return name


def check_bank_path(path: str | Path) -> None:
    """Raises BankError when `path` cannot name a bank: no file name, a folder, or a video, image or model file
    (a clip given in the wrong place)."""
    path = Path(path)
    if not path.name or path.name in (".", ".."):
        raise BankError(f"give the bank a file name (e.g. site.json), not {str(path) or 'an empty path'!r}")
    if path.is_dir():
        raise BankError(f"{path} is a folder, not a label bank: give a file name in it (e.g. {path / 'site.json'})")
    suffix = path.suffix.lower()
    if suffix not in (".json", ".npz") and (path.is_file() or suffix in NOT_BANK_SUFFIXES):
        raise BankError(
            f"{path} is {'a file' if path.is_file() else 'a video, image or model name'}, not a label "
            "bank: give BANK.json (stop-teach creates it)"
        )


@dataclass
class Example:
    source: str  # an absolute file path, or a camera / stream as given
    start_s: float  # the range of the source the clip was sampled from, seconds
    end_s: float
    added: str = ""  # local time, ISO 8601


@dataclass
class BankClass:
    name: str
    text: str  # the prompt its text embedding was encoded from; "" for an example-only class
    examples: list[Example] = field(default_factory=list)


@dataclass
class LabelBank:
    """Classes taught to one model (by fingerprint). Rows of `example` are grouped by class, in class order."""

    fingerprint: str
    model: str = ""  # the model file the bank was started with, for messages
    alpha: float = DEFAULT_ALPHA
    beta: float = DEFAULT_BETA
    tuned: dict | None = None  # {"alpha", "beta", "loo_top1", "examples"} of the last leave-one-out tuning
    classes: list[BankClass] = field(default_factory=list)
    text: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))  # (C, E), zero rows: no text
    example: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))  # (N, E) unit rows
    example_class: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # (N,) index into classes
    # (N, T*E) the examples' frame embeddings (`frame_embedding` output, flattened), or (0, 0) when any example
    # lacks them (a model exported without that output, a version-1 bank): the cache alone then scores the bank
    frames: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))

    # ------------------------------------------------------------------------------------------- files
    @staticmethod
    def paths(path: str | Path) -> tuple[Path, Path]:
        """(BANK.json, BANK.npz) for `path` given with or without the .json suffix."""
        return paired_paths(path)

    def document(self) -> dict:
        """What BANK.json holds: everything but the arrays."""
        return {
            "format": "stop-label-bank",
            "version": BANK_VERSION,
            "fingerprint": self.fingerprint,
            "model": self.model,
            "alpha": self.alpha,
            "beta": self.beta,
            "tuned": self.tuned,
            "classes": [asdict(c) for c in self.classes],
        }

    def save(self, path: str | Path) -> Path:
        """Write BANK.npz and BANK.json (`files.write_pair`: a crash leaves the previous bank). Raises OSError."""
        return write_pair(
            path,
            self.document(),
            {
                "text": self.text.astype(np.float32),
                "example": self.example.astype(np.float32),
                "example_class": self.example_class.astype(np.int32),
                "frames": self.frames.astype(np.float32),
            },
        )

    @classmethod
    def load(cls, path: str | Path) -> LabelBank:
        """Read a bank. Raises BankError naming the problem (missing, not a bank, newer format, damaged)."""
        check_bank_path(path)
        meta_path = paired_paths(path)[0]
        doc, arrays = read_pair(
            path, "stop-label-bank", "label bank", BANK_VERSION, BankError, "teach one with stop-teach"
        )
        try:
            classes = [BankClass(c["name"], c["text"], [Example(**e) for e in c["examples"]]) for c in doc["classes"]]
            bank = cls(
                str(doc["fingerprint"]),
                str(doc.get("model", "")),
                float(doc["alpha"]),
                float(doc["beta"]),
                doc.get("tuned"),
                classes,
                arrays["text"],
                arrays["example"],
                arrays["example_class"],
                arrays.get("frames", np.zeros((0, 0), np.float32)),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise BankError(f"{meta_path}: damaged bank ({err})") from None
        counts = (
            np.bincount(bank.example_class, minlength=len(classes))
            if len(bank.example_class)
            else np.zeros(len(classes))
        )
        if (
            len(bank.text) != len(classes)
            or len(bank.example) != len(bank.example_class)
            or len(counts) != len(classes)
            or [len(c.examples) for c in classes] != counts.tolist()
            or np.any(np.diff(bank.example_class) < 0)
            or (bank.text.size and bank.example.size and bank.text.shape[1] != bank.example.shape[1])
            or bank.frames.ndim != 2
            or (len(bank.frames) and len(bank.frames) != len(bank.example))
            or not (np.isfinite(bank.alpha) and bank.alpha >= 0 and np.isfinite(bank.beta) and bank.beta > 0)
        ):
            raise BankError(
                f"{meta_path}: damaged bank (its classes and arrays disagree, or alpha/beta are not numbers "
                "alpha >= 0, beta > 0)"
            )
        return bank

    @classmethod
    def open(cls, path: str | Path, meta: Metadata, model: str = "", create: bool = False) -> LabelBank:
        """The bank at `path` for the model `meta` (checked with `check_model`), or a new empty one when there is
        none and `create`."""
        check_bank_path(path)
        if create and not pair_exists(path):
            if not meta.fingerprint:
                raise BankError(
                    f"{model or 'this model'} was exported before models carried a fingerprint: re-export it"
                )
            return cls(meta.fingerprint, str(model))
        bank = cls.load(path)
        bank.check_model(meta, model or "this model")
        return bank

    def check_model(self, meta: Metadata, where: str) -> None:
        """Raise BankError when `meta` is not the model this bank was taught with."""
        if not meta.fingerprint:
            raise BankError(f"{where} was exported before models carried a fingerprint: re-export it")
        if meta.fingerprint != self.fingerprint:
            raise BankError(
                f"this label bank belongs to another model (fingerprint {self.fingerprint}, "
                f"{self.model or 'path not recorded'}); {where} has {meta.fingerprint}: teach this "
                "model a bank of its own"
            )
        if self.width and self.width != meta.model.embed_dim:
            raise BankError(f"damaged bank: its embeddings are {self.width} wide, {where}'s {meta.model.embed_dim}")

    # ------------------------------------------------------------------------------------------ editing
    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    def find(self, name: str) -> int | None:
        """The index of class `name` (surrounding white space ignored), or None."""
        name = name.strip()
        return next((i for i, c in enumerate(self.classes) if c.name == name), None)

    def add(
        self,
        name: str,
        embeddings: np.ndarray,
        examples: list[Example],
        text: str = "",
        text_embedding: np.ndarray | None = None,
        frames: np.ndarray | None = None,
    ) -> None:
        """Add example embeddings (n, E) with their `examples` (and their frame embeddings (n, T*E), when the model
        gives them) to class `name`, creating it (with `text` and its `text_embedding` (E,), or example-only) when
        new. Raises BankError for a bad class name (`class_name`), a size mismatch, or a new example-only class
        without examples."""
        name = class_name(name)
        had_frames = len(self.frames) == len(self.example)  # every example so far has them (or there are none)
        if frames is not None and examples:
            frames = np.asarray(frames, np.float32).reshape(len(examples), -1)
            if len(self.frames) and frames.shape[1] != self.frames.shape[1]:
                raise BankError(
                    f"frame embedding width {frames.shape[1]} does not match the bank's {self.frames.shape[1]}"
                )
        embeddings = np.asarray(embeddings, np.float32).reshape(len(examples), -1) if examples else None
        given = embeddings.shape[1] if examples else len(text_embedding) if text_embedding is not None else 0
        width = self.width or given
        if given and given != width:
            raise BankError(f"embedding width {given} does not match the bank's {width}")
        if embeddings is None:
            embeddings = np.zeros((0, width), np.float32)
        k = self.find(name)
        if k is None:
            if not len(examples) and text_embedding is None:
                raise BankError(f"{name!r}: a class without text needs at least one example")
            k = len(self.classes)
            self.classes.append(BankClass(name, text if text_embedding is not None else ""))
            row = np.zeros((1, width), np.float32) if text_embedding is None else _unit(text_embedding[None])
            self.text = row if self.text.size == 0 else np.concatenate([self.text, row])
        self.classes[k].examples += examples
        at = int(np.searchsorted(self.example_class, k, side="right"))  # keep the rows grouped by class
        if self.example.size == 0:
            self.example = np.zeros((0, width), np.float32)
        self.example = np.concatenate([self.example[:at], _unit(embeddings), self.example[at:]])
        if had_frames and (frames is not None or not examples):
            if frames is not None and examples:
                self.frames = (
                    frames if not len(self.frames) else np.concatenate([self.frames[:at], frames, self.frames[at:]])
                )
        else:  # an example without frame embeddings: the bank is scored by its cache alone
            self.frames = np.zeros((0, 0), np.float32)
        self.example_class = np.concatenate(
            [self.example_class[:at], np.full(len(examples), k, np.int32), self.example_class[at:]]
        ).astype(np.int32)

    def add_clips(
        self,
        name: str,
        clips: list[ClipEmbedding],
        examples: list[Example],
        text: str = "",
        text_embedding: np.ndarray | None = None,
    ) -> None:
        """`add` for the clips `embed_example` / `embed_recording` give, one per example."""
        frames = (
            None if not clips or any(c.frames is None for c in clips) else np.stack([c.frames.ravel() for c in clips])
        )
        embeddings = np.stack([c.embedding for c in clips]) if clips else np.zeros((0, self.width), np.float32)
        self.add(name, embeddings, examples, text, text_embedding, frames)

    def remove(self, name: str, example: int | None = None) -> None:
        """Remove class `name`, or only its `example`-th example (0-based). A class left with neither text nor
        examples is removed. Raises BankError naming what is not there."""
        k = self.find(name)
        if k is None:
            raise BankError(f"no class {name!r} in the bank (it has: {', '.join(self.names) or 'none'})")
        rows = np.flatnonzero(self.example_class == k)
        if example is not None:
            if not 0 <= example < len(rows):
                raise BankError(f"{name!r} has {len(rows)} example(s): there is no example {example + 1}")
            self.example = np.delete(self.example, rows[example], axis=0)
            if len(self.frames):
                self.frames = np.delete(self.frames, rows[example], axis=0)
            self.example_class = np.delete(self.example_class, rows[example])
            del self.classes[k].examples[example]
            if self.classes[k].examples or self.classes[k].text:
                return
            rows = rows[:0]
        keep = self.example_class != k
        self.example, self.example_class = self.example[keep], self.example_class[keep]
        if len(self.frames):
            self.frames = self.frames[keep]
        self.example_class = (self.example_class - (self.example_class > k)).astype(np.int32)
        self.text = np.delete(self.text, k, axis=0)
        del self.classes[k]

    @property
    def width(self) -> int:
        return int(self.text.shape[1]) if self.text.size else (int(self.example.shape[1]) if self.example.size else 0)

    # ------------------------------------------------------------------------------------------- scoring
    def head(
        self,
        labels: list[str] | None = None,
        label_text: np.ndarray | None = None,
        statistics: FrameStatistics | None = None,
    ) -> Head:
        """The classifier over `labels` followed by the bank's classes not among them; a label the bank also has
        takes the bank's examples (and keeps its own text). `label_text`: the labels' unit text embeddings
        (K, E); None: `labels` are the model's own classes, scored by its graph's logits. With the model's class
        `statistics`, when every class has clips behind it (the model's training videos or examples) and every
        example its frame embeddings, the head scores by them (module docstring); else by the cache."""
        labels = list(labels or [])
        graph = len(labels) if label_text is None else 0
        weights = list(
            np.zeros((graph, self.width), np.float32) if label_text is None else np.asarray(label_text, np.float32)
        )
        has_text = [True] * len(labels)
        slot = {name: i for i, name in enumerate(labels)}
        for c, cls in enumerate(self.classes):
            if cls.name not in slot:
                slot[cls.name] = len(labels)
                labels.append(cls.name)
                weights.append(self.text[c])
                has_text.append(bool(cls.text))
        key_class = np.array([slot[self.classes[c].name] for c in self.example_class], np.int64)
        return Head(
            labels,
            np.stack(weights) if weights else np.zeros((0, self.width), np.float32),
            np.array(has_text, bool),
            self.example,
            key_class,
            self.alpha,
            self.beta,
            graph,
            self._class_means(labels, key_class, statistics),
        )

    def without_means(self, labels: list[str], stats: FrameStatistics | None) -> str:
        """Why a head over `labels` (all of its classes) with `stats` is scored by the cache, for a note; '' when
        it is not (or when there are no statistics or examples to speak of)."""
        if stats is None or not len(self.example):
            return ""
        if len(self.frames) != len(self.example):
            return (
                f"the bank's {len(self.example)} example(s) have no frame embeddings (taught with a model exported "
                "before them, or a version-1 bank): remove them and teach them again to score by the model's class "
                "statistics; until then the example cache scores the bank"
            )
        behind = {n for n, c in zip(stats.labels, stats.count) if c > 0}
        behind |= {self.classes[c].name for c in np.unique(self.example_class)}
        missing = [n for n in labels if n not in behind]
        if not missing:
            return ""
        return (
            f"no clips behind {', '.join(repr(n) for n in missing[:4])}{', ...' if len(missing) > 4 else ''} "
            "(neither one of the model's training classes nor taught): the example cache scores the labels; "
            "teach them examples to score by the model's class statistics"
        )

    def _class_means(
        self, labels: list[str], key_class: np.ndarray, stats: FrameStatistics | None
    ) -> ClassMeans | None:
        """The classes' means in frame-embedding space and the clips behind each, from the model's training videos
        (`stats`, by class name) and the examples together; None when a class has neither, an example has no frame
        embeddings, or there are no examples (the model's own scores are then unchanged)."""
        if (
            stats is None
            or not len(self.example)
            or len(self.frames) != len(self.example)
            or self.frames.shape[1] != stats.dim
        ):
            return None
        sums = np.zeros((len(labels), stats.dim))
        counts = np.zeros(len(labels))
        trained = {name: i for i, name in enumerate(stats.labels) if stats.count[i] > 0}
        for k, name in enumerate(labels):
            if name in trained:
                i = trained[name]
                counts[k], sums[k] = stats.count[i], stats.count[i] * stats.mean[i].astype(np.float64)
        frames = self.frames.astype(np.float64)
        np.add.at(sums, key_class, frames)
        counts += np.bincount(key_class, minlength=len(labels))
        if not np.all(counts > 0):
            return None
        # the examples' deviations from their own class's example mean join the covariance (pooled over classes)
        residuals = [frames[key_class == k] - frames[key_class == k].mean(0) for k in np.unique(key_class)]
        return ClassMeans(
            sums / counts[:, None], counts, stats, (np.concatenate(residuals), len(frames) - len(residuals))
        )

    def tune(
        self,
        scale: float,
        labels: list[str] | None = None,
        label_text: np.ndarray | None = None,
        alphas=ALPHA_GRID,
        betas=BETA_GRID,
    ) -> dict:
        """Leave-one-out choice of (alpha, beta) over the bank's classes: every example is classified by the
        rest (its own class's prototype recomputed without it), with the model's logit `scale`, among the bank's
        classes and `labels` (their unit text embeddings `label_text`: the model's own, as competitors). Needs >= 2 classes and >= 2 examples in every
        class. Sets `alpha`, `beta` and `tuned`; returns `tuned`. Raises BankError otherwise."""
        counts = np.bincount(self.example_class, minlength=len(self.classes))
        taught = [n for c, n in zip(self.classes, counts) if n or not c.text]  # a text class without examples competes
        if len(taught) < 2 or min(taught) < 2:
            few = [f"{c.name} ({n})" for c, n in zip(self.classes, counts) if (n or not c.text) and n < 2]
            raise BankError(
                "leave-one-out tuning needs at least two classes with examples, at least two each"
                + (f"; too few: {', '.join(few)}" if few else "")
            )
        head = self.head(labels, label_text)
        best = None
        for a in sorted(alphas):
            for b in betas:
                hits, loglik = head.leave_one_out(a, b, scale)
                # the most examples right with the smallest alpha (the least change to the other classes' scores,
                # which the examples alone cannot measure), then the likelier
                score = (hits, -a, loglik)
                if best is None or score > best[0]:
                    best = (score, a, b, hits)
        _, self.alpha, self.beta, hits = best
        self.tuned = {
            "alpha": self.alpha,
            "beta": self.beta,
            "loo_top1": round(hits / len(self.example), 4),
            "examples": int(len(self.example)),
        }
        return self.tuned


@dataclass
class ClassMeans:
    """Every class of a head as a mean of frame embeddings (D = T*E) over the clips behind it."""

    mean: np.ndarray  # (K, D) float64
    count: np.ndarray  # (K,) clips behind each mean (training videos + examples)
    statistics: FrameStatistics  # the model's: its covariance
    scatter: tuple[np.ndarray, int]  # the examples' deviations from their class's example mean, and their dof

    def __post_init__(self):
        self.scorer = self.statistics.prepare(self.mean, self.count, self.scatter)  # once, not per window

    def logits(self, frames: np.ndarray) -> np.ndarray:
        """Frame embeddings (B, T, E) -> logits (B, K) float64 (`stop_train.statistics`), the covariance pooled
        with the examples'."""
        frames = np.asarray(frames)
        return self.scorer.logits(frames.reshape(len(frames), -1))


@dataclass
class Head:
    """Class weights and the example cache: `logits(video, scale)` is the module docstring's formula, or, with
    `means`, the class statistics' (module docstring)."""

    labels: list[str]
    weights: np.ndarray  # (K, E) unit text embeddings; rows without text are replaced by prototypes
    has_text: np.ndarray  # (K,) bool
    keys: np.ndarray  # (N, E) unit example embeddings
    key_class: np.ndarray  # (N,) index into labels
    alpha: float
    beta: float
    graph: int = 0  # the first `graph` classes are the model's own, scored by its graph's logits
    means: ClassMeans | None = None  # set: clips are scored by their frame embeddings instead

    def __post_init__(self):
        self.weights = np.array(self.weights, np.float32)
        self.onehot = np.eye(len(self.labels))[self.key_class]  # L (N, K)
        self.prototypes = not self.has_text.any()  # no text at all: example-only classes by their prototypes
        for k in np.flatnonzero(~self.has_text):
            self.weights[k] = _unit(self.keys[self.key_class == k].sum(axis=0)) if self.prototypes else 0.0

    def logits(
        self, video: np.ndarray, scale: float, graph_logits: np.ndarray | None = None, frames: np.ndarray | None = None
    ) -> np.ndarray:
        """Unit video embeddings (B, E) -> logits (B, K) float64; `graph_logits` (B, graph): the model's own;
        `frames` (B, T, E): the graph's frame embeddings (used when the head has `means`)."""
        if self.means is not None:
            if frames is None:
                raise ValueError("this head scores clips by their frame embeddings: pass frames")
            return self.means.logits(frames)
        text = scale * np.asarray(video, np.float64) @ self.weights.T.astype(np.float64)
        if self.graph:
            if graph_logits is None:
                raise ValueError("this head scores the model's own classes by its logits: pass graph_logits")
            text[:, : self.graph] = graph_logits  # their weights are zero rows: s f W^T is the graph's
        return self._neutral(text) + cache_logits(video, self.keys, self.onehot, self.alpha, self.beta)

    def _neutral(self, text: np.ndarray) -> np.ndarray:
        """Example-only classes get the mean text logit of the classes with text (module docstring)."""
        if not self.prototypes and not self.has_text.all():
            text[:, ~self.has_text] = text[:, self.has_text].mean(axis=1, keepdims=True)
        return text

    def leave_one_out(self, alpha: float, beta: float, scale: float) -> tuple[int, float]:
        """(correct, mean log-probability of the true class) when each example is scored by the others."""
        y, onehot = self.key_class, self.onehot
        own = self.keys.astype(np.float64)
        base = scale * own @ self.weights.T.astype(np.float64)  # (N, K)
        rows = np.arange(len(y))
        if self.prototypes:  # each example's own class prototype, without it
            for_self = (onehot.T @ own)[y] - own
            proto = for_self / np.maximum(np.linalg.norm(for_self, axis=1, keepdims=True), 1e-12)
            base[rows, y] = scale * np.sum(own * proto, axis=1)
        else:
            base = self._neutral(base)
        affinity = np.exp(-beta * (1.0 - own @ own.T))
        np.fill_diagonal(affinity, 0.0)
        logits = base + alpha * affinity @ onehot
        z = logits - logits.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return int(np.sum(logits.argmax(axis=1) == y)), float(logp[rows, y].mean())


def class_logits(
    video: np.ndarray,
    weights: np.ndarray,
    scale: float,
    keys: np.ndarray | None = None,
    key_class: np.ndarray | None = None,
    alpha: float = DEFAULT_ALPHA,
    beta: float = DEFAULT_BETA,
) -> np.ndarray:
    """Tip-Adapter logits (module docstring): unit `video` (B, E), unit class `weights` (K, E), the model's logit
    `scale`, unit example `keys` (N, E) of classes `key_class` (N,) -> (B, K) float64. No keys: s f W^T."""
    video = np.asarray(video, np.float64)
    logits = scale * video @ np.asarray(weights, np.float64).T
    if keys is not None and len(keys):
        logits += cache_logits(video, keys, np.eye(len(weights))[np.asarray(key_class)], alpha, beta)
    return logits


def cache_logits(video: np.ndarray, keys: np.ndarray, onehot: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """The cache term alpha * exp(-beta (1 - f F^T)) L: unit `video` (B, E), unit example `keys` (N, E), their
    one-hot classes `onehot` (N, K) -> (B, K) float64 (zeros without keys)."""
    if not len(keys):
        return np.zeros((len(video), onehot.shape[1]))
    affinity = np.exp(-beta * (1.0 - np.asarray(video, np.float64) @ np.asarray(keys, np.float64).T))  # (B, N)
    return alpha * affinity @ onehot


# --------------------------------------------------------------------------------------- example clips
class ClipEmbedding(NamedTuple):
    """What a bank keeps of one example clip."""

    embedding: np.ndarray  # (E,) unit video embedding
    frames: np.ndarray | None  # (T, E) frame embeddings; None from a model exported without that output


def embed_views(run: Callable[[np.ndarray], dict[str, np.ndarray]], views: np.ndarray) -> ClipEmbedding:
    """One example from its views (V, T, S, S, 3) through the graph `run`: the unit mean of the views' unit video
    embeddings, and the mean of their frame embeddings."""
    out = run(np.ascontiguousarray(views))
    frames = out.get("frame_embedding")
    return ClipEmbedding(
        _unit(_unit(out["video_embedding"]).mean(axis=0)),
        None if frames is None else np.asarray(frames, np.float32).mean(axis=0),
    )


def min_example_s(sampling) -> float:
    """Seconds an example must last to fill one clip: (T - 1) x frame interval with the interval sampler, else 0
    (the segments sampler spreads T frames over any range that holds them)."""
    return (sampling.frames - 1) * sampling.frame_interval_s if sampling.sampler == "interval" else 0.0


def check_clip_length(times: np.ndarray, sampling, what: str) -> None:
    """Raises BankError when frames at `times` (seconds, increasing) cannot fill one clip of the model, as live
    recognition needs one: fewer than T distinct frames, or, with the interval sampler, shorter than the clip's span
    (T - 1) x frame interval. A still image or a clip of a few frames would teach a class with repeated frames."""
    t = sampling.frames
    if len(times) < t:
        raise BankError(
            f"{what} holds {len(times)} frame{'' if len(times) == 1 else 's'}; one example needs at least "
            f"{t} (the model's clip length): give a longer clip or range"
        )
    span = min_example_s(sampling)
    if times[-1] - times[0] < span - 1e-6:
        raise BankError(
            f"{what} lasts {times[-1] - times[0]:.2f} s; one example needs at least {span:.2f} s (the "
            f"model's clip: {t} frames {sampling.frame_interval_s:g} s apart): give a longer clip or range"
        )


def embed_example(
    backend, path: str | Path, start_s: float | None = None, end_s: float | None = None, info=None
) -> ClipEmbedding:
    """The example (`ClipEmbedding`) of a file, or of its frames in [`start_s`, `end_s`] seconds: the metadata's eval
    views (`eval_views`), through the model. Raises BankError for a range without enough frames for one clip
    (`check_clip_length`), RecognizeError for an unreadable file. `info`: its `probe_exact` index, where known."""
    from stop_train.video.decode import VideoReadError, probe_exact
    from stop_train.video.views import eval_views, frames_in_range

    from .errors import RecognizeError

    meta = backend.metadata
    try:
        info = info or probe_exact(path)
        times = info.times()
        what = (
            f"{path}"
            if start_s is None and end_s is None
            else f"{path}@{start_s or 0:g}-{'' if end_s is None else f'{end_s:g}'}"
        )
        check_clip_length(times[frames_in_range(times, start_s, end_s)], meta.sampling, what)
        views = eval_views(path, info, meta.sampling, meta.preprocess, start_s, end_s)
    except (VideoReadError, OSError) as err:
        raise RecognizeError(f"cannot read {path}: {err}") from None
    except BankError:
        raise
    except ValueError as err:
        raise BankError(f"{path}: {err}") from None
    return embed_views(backend.run, views)


def embed_recording(backend, times: np.ndarray, frames: list[np.ndarray]) -> ClipEmbedding:
    """The example (`ClipEmbedding`) of frames recorded from a camera (RGB uint8 (H, W, 3) at `times` seconds).
    Raises BankError when they cannot fill one clip (`check_clip_length`)."""
    from stop_train.video.views import sampled_views

    if not frames:
        raise BankError("nothing was recorded")
    meta = backend.metadata
    check_clip_length(np.asarray(times), meta.sampling, "the recording")
    views = sampled_views(
        np.asarray(times), lambda idx: np.stack([frames[i] for i in idx]), meta.sampling, meta.preprocess
    )
    return embed_views(backend.run, views)


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)).astype(np.float32)
