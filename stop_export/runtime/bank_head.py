"""How a label bank scores clips (torch-free): the head over the model's labels and the bank's classes.

When the model carries its class statistics (`stop_train.statistics`) and every class scored has clips behind it
(the model's training videos, or examples), every class is the mean frame embedding of those clips and a clip is
scored by Gaussian discriminant analysis (`ClassMeans`; the formula is in `stop_train.statistics`). Otherwise
(labels of the user's own, a model without statistics or frame embeddings, a version-1 bank) classification is
Tip-Adapter's training-free cache (Zhang et al., "Tip-Adapter: Training-free Adaption of CLIP for Few-shot
Classification", ECCV 2022, eq. 6), with the model's own logit scale s in place of CLIP's 100:

    logits = s * f W^T + alpha * exp(-beta * (1 - f F^T)) L

f (B, E) unit video embeddings, W (K, E) the classes' unit text embeddings, F (N, E) the unit example
embeddings, L (N, K) their one-hot classes. A class without examples keeps its text logit alone, so a bank
without examples gives today's text-only logits. An example-only class has no text to compare: its first term
is the clip's mean text logit over the classes that have text (neutral, so that only its examples lift it: a
video lies closer to other videos than to any text, and the cosine to its examples' mean would win
everywhere), or, when no class has text, s times the cosine to the unit mean of its examples (its prototype).

The functions here take the bank (`stop_export.runtime.bank.LabelBank`) as their first argument; its `head`,
`without_means` and `tune` methods call them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stop_train.statistics import FrameStatistics

from .errors import BankError

# chosen by benchmarks/few_shot_check.py --epochs 18 (issue 15): the best mean held-out top-1 with 5 examples per
# class among the settings that keep every model's trained classes within 2 points of text only (three held-out
# pairs); a sharp beta: only clips close to an example are lifted (docs/teaching.md, learning check)
DEFAULT_ALPHA = 2.0
DEFAULT_BETA = 12.0
ALPHA_GRID = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)  # leave-one-out tuning
BETA_GRID = (1.0, 3.0, 5.5, 8.0, 12.0)


def build_head(
    bank,
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
        np.zeros((graph, bank.width), np.float32) if label_text is None else np.asarray(label_text, np.float32)
    )
    has_text = [True] * len(labels)
    slot = {name: i for i, name in enumerate(labels)}
    for c, cls in enumerate(bank.classes):
        if cls.name not in slot:
            slot[cls.name] = len(labels)
            labels.append(cls.name)
            weights.append(bank.text[c])
            has_text.append(bool(cls.text))
    key_class = np.array([slot[bank.classes[c].name] for c in bank.example_class], np.int64)
    return Head(
        labels,
        np.stack(weights) if weights else np.zeros((0, bank.width), np.float32),
        np.array(has_text, bool),
        bank.example,
        key_class,
        bank.alpha,
        bank.beta,
        graph,
        _class_means(bank, labels, key_class, statistics),
    )


def without_means(bank, labels: list[str], stats: FrameStatistics | None) -> str:
    """Why a head over `labels` (all of its classes) with `stats` is scored by the cache, for a note; '' when
    it is not (or when there are no statistics or examples to speak of)."""
    if stats is None or not len(bank.example):
        return ""
    if len(bank.frames) != len(bank.example):
        return (
            f"the bank's {len(bank.example)} example(s) have no frame embeddings (taught with a model exported "
            "before them, or a version-1 bank): remove them and teach them again to score by the model's class "
            "statistics; until then the example cache scores the bank"
        )
    behind = {n for n, c in zip(stats.labels, stats.count) if c > 0}
    behind |= {bank.classes[c].name for c in np.unique(bank.example_class)}
    missing = [n for n in labels if n not in behind]
    if not missing:
        return ""
    return (
        f"no clips behind {', '.join(repr(n) for n in missing[:4])}{', ...' if len(missing) > 4 else ''} "
        "(neither one of the model's training classes nor taught): the example cache scores the labels; "
        "teach them examples to score by the model's class statistics"
    )


def _class_means(bank, labels: list[str], key_class: np.ndarray, stats: FrameStatistics | None) -> ClassMeans | None:
    """The classes' means in frame-embedding space and the clips behind each, from the model's training videos
    (`stats`, by class name) and the examples together; None when a class has neither, an example has no frame
    embeddings, or there are no examples (the model's own scores are then unchanged)."""
    if (
        stats is None
        or not len(bank.example)
        or len(bank.frames) != len(bank.example)
        or bank.frames.shape[1] != stats.dim
    ):
        return None
    sums = np.zeros((len(labels), stats.dim))
    counts = np.zeros(len(labels))
    trained = {name: i for i, name in enumerate(stats.labels) if stats.count[i] > 0}
    for k, name in enumerate(labels):
        if name in trained:
            i = trained[name]
            counts[k], sums[k] = stats.count[i], stats.count[i] * stats.mean[i].astype(np.float64)
    frames = bank.frames.astype(np.float64)
    np.add.at(sums, key_class, frames)
    counts += np.bincount(key_class, minlength=len(labels))
    if not np.all(counts > 0):
        return None
    # the examples' deviations from their own class's example mean join the covariance (pooled over classes)
    residuals = [frames[key_class == k] - frames[key_class == k].mean(0) for k in np.unique(key_class)]
    return ClassMeans(sums / counts[:, None], counts, stats, (np.concatenate(residuals), len(frames) - len(residuals)))


def tune(
    bank,
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
    counts = np.bincount(bank.example_class, minlength=len(bank.classes))
    taught = [n for c, n in zip(bank.classes, counts) if n or not c.text]  # a text class without examples competes
    if len(taught) < 2 or min(taught) < 2:
        few = [f"{c.name} ({n})" for c, n in zip(bank.classes, counts) if (n or not c.text) and n < 2]
        raise BankError(
            "leave-one-out tuning needs at least two classes with examples, at least two each"
            + (f"; too few: {', '.join(few)}" if few else "")
        )
    head = build_head(bank, labels, label_text)
    best = None
    for a in sorted(alphas):
        for b in betas:
            hits, loglik = head.leave_one_out(a, b, scale)
            # the most examples right with the smallest alpha (the least change to the other classes' scores,
            # which the examples alone cannot measure), then the likelier
            score = (hits, -a, loglik)
            if best is None or score > best[0]:
                best = (score, a, b, hits)
    _, bank.alpha, bank.beta, hits = best
    bank.tuned = {
        "alpha": bank.alpha,
        "beta": bank.beta,
        "loo_top1": round(hits / len(bank.example), 4),
        "examples": int(len(bank.example)),
    }
    return bank.tuned


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
            self.weights[k] = unit(self.keys[self.key_class == k].sum(axis=0)) if self.prototypes else 0.0

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


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)).astype(np.float32)
