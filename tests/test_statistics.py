"""Class statistics of frame embeddings (`stop_train.statistics`, numpy only): the pooled within-class covariance
from sums, distances in its full and truncated forms against the written-out formula, the logits, the file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stop_train.statistics import FrameStatistics, StatisticsError


def sums_of(x: np.ndarray, y: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sums = np.zeros((classes, x.shape[1]))
    np.add.at(sums, y, x)
    return sums, np.bincount(y, minlength=classes), x.T @ x


def sample(rng, classes=3, per_class=40, dim=12):
    means = rng.normal(scale=3.0, size=(classes, dim))
    mix = rng.normal(size=(dim, dim)) / np.sqrt(dim)
    y = np.repeat(np.arange(classes), per_class)
    return means[y] + rng.normal(size=(len(y), dim)) @ mix, y


def test_statistics_are_the_shrunk_pooled_within_class_covariance():
    rng = np.random.default_rng(0)
    x, y = sample(rng)
    stats = FrameStatistics.from_sums(["a", "b", "c", "unseen"], *sums_of(x, y, 4), shrinkage=0.1)
    mu = np.stack([x[y == k].mean(0) for k in range(3)])
    assert np.allclose(stats.mean[:3], mu, atol=1e-5) and not stats.mean[3].any()
    assert stats.count.tolist() == [40, 40, 40, 0]
    within = sum((x[y == k] - mu[k]).T @ (x[y == k] - mu[k]) for k in range(3)) / (len(x) - 3)
    cov = 0.9 * within + 0.1 * np.trace(within) / len(within) * np.eye(len(within))
    q, means = rng.normal(size=(5, 12)), rng.normal(size=(4, 12))
    diff = q[:, None] - means[None]
    expected = np.einsum("bkd,de,bke->bk", diff, np.linalg.inv(cov), diff)
    assert np.allclose(stats.sq_distance(q, means), expected, rtol=1e-4)
    # the logits: each squared distance over its expectation's factor (1 + 1/n)
    counts = np.array([40, 40, 5, 1])
    assert np.allclose(stats.logits(q, means, counts), -0.5 * expected / (1 + 1 / counts) / np.sqrt(24), rtol=1e-4)

    # taught examples' deviations pooled into the covariance: (n S + (1 - shrinkage) R^T R) / (n + f)
    residuals = rng.normal(size=(4, 12))
    pooled = (117 * cov + 0.9 * residuals.T @ residuals) / (117 + 2)
    expected_pooled = np.einsum("bkd,de,bke->bk", diff, np.linalg.inv(pooled), diff)
    assert stats.dof == 120 - 3
    assert np.allclose(stats.sq_distance(q, means, (residuals, 2)), expected_pooled, rtol=1e-4)
    assert np.allclose(stats.sq_distance(q, means, (residuals[:0], 0)), stats.sq_distance(q, means))

    # truncated to the leading directions, every other direction sharing one variance: the same formula with that
    # covariance written out
    low = FrameStatistics.from_sums(["a", "b", "c", "unseen"], *sums_of(x, y, 4), shrinkage=0.1, max_rank=5)
    v = low.basis.astype(np.float64)
    approx = v @ np.diag(low.variance) @ v.T + low.residual * (np.eye(12) - v @ v.T)
    expected = np.einsum("bkd,de,bke->bk", diff, np.linalg.inv(approx), diff)
    assert low.basis.shape == (12, 5) and np.allclose(low.sq_distance(q, means), expected, rtol=1e-4)
    pooled = (117 * approx + 0.9 * residuals.T @ residuals) / (117 + 2)
    expected = np.einsum("bkd,de,bke->bk", diff, np.linalg.inv(pooled), diff)
    assert np.allclose(low.sq_distance(q, means, (residuals, 2)), expected, rtol=1e-4)
    eig = np.sort(np.linalg.eigvalsh(cov))[::-1]
    assert np.allclose(low.variance, eig[:5], rtol=1e-6) and np.isclose(low.residual, eig[5:].mean(), rtol=1e-6)


def test_statistics_need_two_classes_and_more_clips_than_classes():
    x = np.ones((4, 3))
    with pytest.raises(StatisticsError, match="at least two classes"):
        FrameStatistics.from_sums(["a", "b"], *sums_of(x, np.zeros(4, int), 2))
    with pytest.raises(StatisticsError, match="more clips than classes"):
        FrameStatistics.from_sums(["a", "b"], *sums_of(x[:2], np.array([0, 1]), 2))


def test_statistics_file_round_trip_and_damage(tmp_path):
    rng = np.random.default_rng(1)
    x, y = sample(rng)
    stats = FrameStatistics.from_sums(["a", "b", "c"], *sums_of(x, y, 3), fingerprint="f00d")
    path = stats.save(tmp_path / "stats.npz")
    back = FrameStatistics.load(path)
    assert back.labels == ["a", "b", "c"] and back.fingerprint == "f00d" and back.residual == stats.residual
    for name in ("mean", "count", "basis", "variance"):
        assert np.array_equal(getattr(back, name), getattr(stats, name)), name
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left

    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    doc = json.loads(str(arrays["doc"]))

    def write(**change):
        bad = tmp_path / f"bad-{len(list(tmp_path.glob('bad-*')))}.npz"
        np.savez(bad, **{**arrays, **change})
        return bad

    cases = [
        (write(doc=np.array(json.dumps(dict(doc, version=9)))), "format 9; this toolkit reads up to 1"),
        (write(doc=np.array(json.dumps(dict(doc, format="stop-label-bank")))), "not a class-statistics file"),
        (write(mean=arrays["mean"][:2]), "damaged class statistics"),
        (write(variance=-arrays["variance"]), "damaged class statistics"),
    ]
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[:200])
    cases += [(truncated, "not a readable class-statistics file"), (tmp_path / "none.npz", "no class statistics at")]
    for bad, message in cases:
        with pytest.raises(StatisticsError, match=message):
            FrameStatistics.load(bad)
