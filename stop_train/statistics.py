"""Class statistics of a model's frame embeddings over its training set (numpy only, read by the runtime): what
lets a label bank teach a model new actions from a few example clips.

A clip's feature x (D = T x E) is the graph's `frame_embedding` output flattened: each frame's class token after the
last block, through ln_post and proj, in frame order (`STOP.frame_embeddings`). Over the training set, one clip
per video under the eval sampling (as an example is embedded), a model's statistics are each class's mean mu_k
and count n_k and the pooled within-class covariance S, shrunk towards its mean variance by `SHRINKAGE` and
stored as its leading eigenpairs plus one variance for every other direction.

Classification is Gaussian discriminant analysis with a shared covariance (as in Wang et al., "A Hard-to-Beat
Baseline for Training-free CLIP-based Adaptation", ICLR 2024), each squared distance divided by what it is expected
to be for a clip of that class, (1 + 1/n_k) times that of a known mean (a class mean estimated from n_k clips
adds S / n_k):

    logit_k = -1/2 (x - mu_k)^T S^-1 (x - mu_k) / (1 + 1/n_k) / sqrt(2 D)

The last division is a temperature, not part of the argmax: for a clip of class k the scaled squared distance is
chi-square with D degrees of freedom under the model, whose standard deviation is sqrt(2 D), so logits differ by
about one per standard deviation between classes instead of by hundreds (softmax scores of 1.00 / 0.00 for any
clip, which leave nothing for event thresholds to filter).

S is pooled over every class's clips, as discriminant analysis pools it: when a label bank teaches classes, its
examples' deviations from their class's example mean join the training clips' (`sq_distance`'s `scatter`).
The Gaussian predictive density would also charge -D/2 log(1 + 1/n_k); it is left out, as it sinks a class taught
by five examples under classes learned from thousands (benchmarks/few_shot_check.py prints both).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import atomic_write
from .errors import StopError

STATISTICS_VERSION = 1
# chosen by benchmarks/few_shot_check.py (0.003 to 0.1 were measured): the covariance of a few hundred training
# clips in a few hundred dimensions needs a little shrinkage, and more costs the model's own classes accuracy
SHRINKAGE = 0.003
# directions kept with their own variance; the rest share one (so the file stays small at T x E = 8 x 512)
MAX_RANK = 1024
STATISTICS_FILE = "statistics.npz"  # in a checkpoint folder, beside model.safetensors: of those weights


class StatisticsError(StopError, ValueError):
    """A statistics file that cannot be read, or sums that cannot make statistics."""


@dataclass
class FrameStatistics:
    """Per-class means of frame embeddings and their pooled within-class covariance (module docstring)."""

    labels: list[str]  # the model's classes, in its label order
    mean: np.ndarray  # (C, D) float32 class means, D = T x E
    count: np.ndarray  # (C,) int64 training clips behind each mean
    basis: np.ndarray  # (D, r) float32 orthonormal eigenvectors of the shrunk covariance
    variance: np.ndarray  # (r,) float64 their eigenvalues
    residual: float  # the variance of every direction outside `basis` (unused when r = D)
    fingerprint: str = ""  # the model's (`stop_export` fingerprint) when known
    shrinkage: float = SHRINKAGE

    @property
    def dim(self) -> int:
        return int(self.mean.shape[1])

    @classmethod
    def from_sums(
        cls,
        labels: list[str],
        sums: np.ndarray,
        counts: np.ndarray,
        outer: np.ndarray,
        shrinkage: float = SHRINKAGE,
        max_rank: int = MAX_RANK,
        fingerprint: str = "",
    ) -> FrameStatistics:
        """From per-class sums of x (C, D), counts (C,) and the sum of x x^T over all clips (D, D), float64
        (what an evaluation pass accumulates, and what ranks add up). Raises StatisticsError when fewer than two
        classes have clips or there are no more clips than classes."""
        sums, counts, outer = (np.asarray(a, np.float64) for a in (sums, counts, outer))
        seen = counts > 0
        n = counts.sum()
        if seen.sum() < 2 or n <= seen.sum():
            raise StatisticsError(
                f"class statistics need clips of at least two classes and more clips than classes "
                f"(got {int(n)} clip(s) of {int(seen.sum())} class(es))"
            )
        mean = np.where(seen[:, None], sums / np.maximum(counts, 1)[:, None], 0.0)
        within = (outer - (sums[seen].T / counts[seen]) @ sums[seen]) / (n - seen.sum())
        within = (within + within.T) / 2
        average = np.trace(within) / len(within)
        values, vectors = np.linalg.eigh((1 - shrinkage) * within + shrinkage * average * np.eye(len(within)))
        values = np.maximum(values, shrinkage * average)[::-1]  # descending; eigh's round-off can dip below
        vectors = vectors[:, ::-1]
        rank = min(max_rank, len(values))
        residual = float(values[rank:].mean()) if rank < len(values) else float(values[-1])
        return cls(
            list(labels),
            mean.astype(np.float32),
            counts.astype(np.int64),
            np.ascontiguousarray(vectors[:, :rank], np.float32),
            values[:rank],
            residual,
            fingerprint,
            shrinkage,
        )

    # ------------------------------------------------------------------------------------------ scoring
    @property
    def dof(self) -> int:
        """Degrees of freedom of the pooled covariance: training clips less the classes they fall in."""
        return int(self.count.sum() - np.count_nonzero(self.count))

    def precision(self, z: np.ndarray) -> np.ndarray:
        """S^-1 z for rows z (N, D) -> (N, D) float64."""
        z = np.asarray(z, np.float64)
        basis = self.basis.astype(np.float64)
        p = z @ basis
        out = (p / self.variance) @ basis.T
        if basis.shape[1] < basis.shape[0]:  # the directions outside the basis, all of variance `residual`
            out += (z - p @ basis.T) / self.residual
        return out

    def sq_distance(
        self, x: np.ndarray, means: np.ndarray, scatter: tuple[np.ndarray, int] | None = None
    ) -> np.ndarray:
        """Squared Mahalanobis distances (B, K) float64 of features `x` (B, D) to `means` (K, D) under the shrunk
        within-class covariance S, or, with `scatter` = (residuals R (m, D), their degrees of freedom f): under
        the covariance pooled with more clips' deviations from their class means (taught examples),
        (n S + (1 - shrinkage) R^T R) / (n + f) with n = `dof` (applied by the Woodbury identity: m is small)."""
        return self.prepare(means, np.ones(len(means)), scatter).sq_distance(x)

    def logits(
        self, x: np.ndarray, means: np.ndarray, counts: np.ndarray, scatter: tuple[np.ndarray, int] | None = None
    ) -> np.ndarray:
        """The module docstring's logits (B, K) float64 of features `x` (B, D) for classes with `means` (K, D)
        estimated from `counts` (K,) clips each (`scatter`: see `sq_distance`)."""
        return self.prepare(means, counts, scatter).logits(x)

    def prepare(
        self, means: np.ndarray, counts: np.ndarray, scatter: tuple[np.ndarray, int] | None = None
    ) -> ClassScorer:
        """What scoring against fixed class means needs, computed once (a head scores every window)."""
        means = np.asarray(means, np.float64)
        sm = self.precision(means)
        scorer = ClassScorer(self, np.asarray(counts, np.float64), means, sm, np.sum(means * sm, 1))
        if scatter is not None and len(scatter[0]):
            residuals, scorer.extra = scatter
            u = np.sqrt(1.0 - self.shrinkage) * np.asarray(residuals, np.float64)  # (m, D)
            scorer.w = self.precision(u) / self.dof  # A^-1 U as rows, A = n S
            scorer.g = np.linalg.inv(np.eye(len(u)) + u @ scorer.w.T)  # (I + U^T A^-1 U)^-1
            scorer.pm = means @ scorer.w.T  # (K, m)
            scorer.pm_g_pm = np.einsum("ki,ij,kj->k", scorer.pm, scorer.g, scorer.pm)
        return scorer

    # -------------------------------------------------------------------------------------------- files
    def save(self, path: str | Path) -> Path:
        """Write one NPZ (no pickle) in one rename (`stop_train.atomic`). Raises OSError naming `path`."""
        doc = {
            "format": "stop-frame-statistics",
            "version": STATISTICS_VERSION,
            "labels": self.labels,
            "fingerprint": self.fingerprint,
            "shrinkage": self.shrinkage,
            "residual": self.residual,
        }
        return atomic_write(
            path,
            lambda f: np.savez(
                f,
                doc=np.array(json.dumps(doc, ensure_ascii=False)),
                mean=self.mean,
                count=self.count,
                basis=self.basis,
                variance=self.variance,
            ),
        )

    @classmethod
    def load(cls, path: str | Path) -> FrameStatistics:
        """Read a statistics file. Raises StatisticsError naming the problem (missing, not statistics, newer,
        damaged)."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            doc = json.loads(str(arrays.pop("doc")))
        except FileNotFoundError:
            raise StatisticsError(f"no class statistics at {path}") from None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            why = "not an NPZ of arrays" if "pickle" in str(err) else str(err)  # never advise loading pickles
            raise StatisticsError(f"{path} is not a readable class-statistics file ({why})") from None
        if not isinstance(doc, dict) or doc.get("format") != "stop-frame-statistics":
            raise StatisticsError(f"{path} is not a class-statistics file")
        if not isinstance(doc.get("version"), int) or doc["version"] > STATISTICS_VERSION:
            raise StatisticsError(
                f"{path} has class-statistics format {doc.get('version')!r}; this toolkit reads up "
                f"to {STATISTICS_VERSION}: upgrade stop-toolkit"
            )
        try:
            stats = cls(
                list(doc["labels"]),
                arrays["mean"],
                arrays["count"],
                arrays["basis"],
                arrays["variance"].astype(np.float64),
                float(doc["residual"]),
                str(doc.get("fingerprint", "")),
                float(doc.get("shrinkage", SHRINKAGE)),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise StatisticsError(f"{path}: damaged class statistics ({err})") from None
        c, d = stats.mean.shape if stats.mean.ndim == 2 else (-1, -1)
        if (
            len(stats.labels) != c
            or stats.count.shape != (c,)
            or stats.basis.ndim != 2
            or stats.basis.shape[0] != d
            or stats.variance.shape != (stats.basis.shape[1],)
            or not np.all(stats.variance > 0)
            or not stats.residual > 0
        ):
            raise StatisticsError(f"{path}: damaged class statistics (its arrays disagree)")
        return stats


@dataclass
class ClassScorer:
    """`FrameStatistics.prepare`: the class-side terms of the distances, so that a clip costs one precision product."""

    stats: FrameStatistics
    counts: np.ndarray  # (K,)
    means: np.ndarray  # (K, D)
    sm: np.ndarray  # S^-1 means (K, D)
    msm: np.ndarray  # means^T S^-1 means (K,)
    extra: int = 0  # Woodbury terms, when examples join the covariance
    w: np.ndarray | None = None
    g: np.ndarray | None = None
    pm: np.ndarray | None = None
    pm_g_pm: np.ndarray | None = None

    def sq_distance(self, x: np.ndarray) -> np.ndarray:
        """Features (B, D) -> squared distances (B, K) float64 (`FrameStatistics.sq_distance`)."""
        x = np.asarray(x, np.float64)
        d2 = np.sum(x * self.stats.precision(x), 1)[:, None] + self.msm[None] - 2 * x @ self.sm.T
        if self.w is not None:
            n = self.stats.dof
            px = x @ self.w.T  # (B, m)
            q = np.einsum("bi,ij,bj->b", px, self.g, px)[:, None] + self.pm_g_pm[None] - 2 * px @ self.g @ self.pm.T
            d2 = (n + self.extra) * (d2 / n - q)
        return np.maximum(d2, 0.0)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Features (B, D) -> the module docstring's logits (B, K) float64."""
        return -0.5 * self.sq_distance(x) / (1.0 + 1.0 / self.counts) / np.sqrt(2.0 * self.stats.dim)
