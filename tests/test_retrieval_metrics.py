"""Retrieval metrics equal CLIP4Clip's published functions (re-implemented here from its metrics.py, with
torch where it uses torch) on tie-free matrices, one and several captions per video; ties count for the
true item; batching changes nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stop_train.engine.retrieval_metrics import dual_softmax, rank_summary, retrieval_metrics


def clip4clip_compute_metrics(x: np.ndarray) -> dict:
    """CLIP4Clip `compute_metrics`: rows are queries, the true item on the diagonal."""
    sx = np.sort(-x, axis=1)
    d = np.diag(-x)[:, None]
    ind = np.where(sx - d == 0)[1]
    return {
        "R1": np.sum(ind == 0) * 100 / len(ind),
        "R5": np.sum(ind < 5) * 100 / len(ind),
        "R10": np.sum(ind < 10) * 100 / len(ind),
        "MdR": np.median(ind) + 1,
        "MnR": np.mean(ind) + 1,
    }


def clip4clip_t2v_multi(sim_tensor: torch.Tensor) -> dict:
    """CLIP4Clip `tensor_text_to_video_metrics` on (V, max captions, V), padded with -inf."""
    stacked = sim_tensor.permute(1, 0, 2)
    first = torch.argsort(stacked, dim=-1, descending=True)
    second = torch.argsort(first, dim=-1, descending=False)
    ranks = torch.flatten(torch.diagonal(second, dim1=1, dim2=2))
    original = torch.flatten(torch.diagonal(sim_tensor, dim1=0, dim2=2))
    valid = ranks[~torch.logical_or(torch.isinf(original), torch.isnan(original))]
    out = {f"R{k}": float(torch.sum(valid < k) * 100 / len(valid)) for k in (1, 5, 10)}
    return {**out, "MdR": float(torch.median(valid + 1)), "MnR": float(np.mean(valid.numpy() + 1))}


def clip4clip_v2t_sim(sim_tensor: torch.Tensor) -> np.ndarray:
    """CLIP4Clip `tensor_video_to_text_sim`."""
    sim_tensor = sim_tensor.clone()
    sim_tensor[sim_tensor != sim_tensor] = float("-inf")
    values, _ = torch.max(sim_tensor, dim=1, keepdim=True)
    return torch.squeeze(values).T.numpy()


def embeddings(rng, captions_per_video: list[int], dim: int = 16, noise: float = 1.5):
    video = rng.normal(size=(len(captions_per_video), dim)).astype(np.float32)
    owner = np.repeat(np.arange(len(captions_per_video)), captions_per_video)
    text = (video[owner] + rng.normal(scale=noise, size=(len(owner), dim))).astype(np.float32)  # ranks vary
    return text, video, owner


def close(ours: dict, ref: dict) -> None:
    for key in ("R1", "R5", "R10", "MdR", "MnR"):
        assert ours[key] == pytest.approx(ref[key], rel=1e-6), key  # torch divides in float32


@pytest.mark.parametrize("seed", range(3))
def test_one_caption_per_video_equals_compute_metrics(seed):
    rng = np.random.default_rng(seed)
    text, video, owner = embeddings(rng, [1] * 60)
    sim = text @ video.T
    assert len(np.unique(sim)) == sim.size  # tie-free
    got = retrieval_metrics(text, video, owner, batch=7)
    close(got["t2v"], clip4clip_compute_metrics(sim))
    close(got["v2t"], clip4clip_compute_metrics(sim.T))
    assert 0 < got["t2v"]["R1"] < 100  # not a trivial matrix


@pytest.mark.parametrize("seed", [0, 1, 25])  # 1 and 25: an even caption count whose two middle ranks differ
def test_several_captions_per_video_equal_the_multi_sentence_functions(seed):
    rng = np.random.default_rng(seed)
    counts = list(rng.integers(1, 6, size=30))
    text, video, owner = embeddings(rng, counts, noise=5.0)
    sim = text @ video.T  # (C, V)
    padded = torch.full((len(counts), max(counts), len(counts)), float("-inf"))
    start = 0
    for i, n in enumerate(counts):  # CLIP4Clip splits the caption rows by video and pads with -inf
        padded[i, :n] = torch.from_numpy(sim[start : start + n])
        start += n
    got = retrieval_metrics(text, video, owner, batch=11)
    close(got["t2v"], clip4clip_t2v_multi(padded))
    close(got["v2t"], clip4clip_compute_metrics(clip4clip_v2t_sim(padded)))
    assert got["t2v"]["count"] == sum(counts) and got["v2t"]["count"] == len(counts)


def test_ties_count_for_the_true_item_and_batches_change_nothing():
    text = np.ones((4, 3), np.float32)
    video = np.ones((4, 3), np.float32)  # every score equal
    got = retrieval_metrics(text, video, np.arange(4))
    assert got["t2v"]["R1"] == 100 and got["t2v"]["MdR"] == 1 and got["v2t"]["MnR"] == 1
    rng = np.random.default_rng(5)
    text, video, owner = embeddings(rng, [2] * 25)
    assert retrieval_metrics(text, video, owner, batch=1) == retrieval_metrics(text, video, owner, batch=10_000)
    assert rank_summary(np.array([1, 2, 3, 10]))["MdR"] == 2.5
    assert rank_summary(np.array([1, 2, 3, 10]), lower_median=True)["MdR"] == 2


def test_bad_inputs_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="expected text"):
        retrieval_metrics(np.zeros((3, 4)), np.zeros((3, 5)), np.arange(3))
    with pytest.raises(ValueError, match="at least one caption"):
        retrieval_metrics(np.zeros((2, 4)), np.zeros((3, 4)), np.array([0, 0]))


def test_dual_softmax_rescales_each_column_by_its_softmax_over_captions():
    sim = np.array([[0.9, 0.8], [0.2, 0.7]])
    out = dual_softmax(sim, temperature=1.0)
    col = np.exp(sim) / np.exp(sim).sum(axis=0)
    assert np.allclose(out, sim * col)
    rng = np.random.default_rng(0)
    text, video, owner = embeddings(rng, [1] * 40)
    sim = text @ video.T
    assert dual_softmax(sim).shape == sim.shape
