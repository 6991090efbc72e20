"""Text-video retrieval metrics (numpy, torch-free): recall at k, median and mean rank, in both directions,
from caption and video embeddings, computed in caption batches so the full similarity matrix is never held.

Definitions follow CLIP4Clip's `metrics.py`, which STOP's published code uses (Luo et al., 2022):
- text -> video: for each caption, the rank of its own video among all videos (`compute_metrics` on the
  caption x video matrix; with several captions per video, `tensor_text_to_video_metrics`);
- video -> text: for each video, the rank of its own caption set among all caption sets, a set scoring by
  its best caption (`tensor_video_to_text_sim`, then `compute_metrics`).
- R@k is a percentage; MdR and MnR are 1-based.

Ties: rank = 1 + the number of strictly higher scores, so a tie never counts against the true item.
CLIP4Clip's `compute_metrics` finds the true item's position in a sorted row, and with ties that position
(and its count of hits) is ill-defined; on tie-free matrices both give the same ranks (tested).

Median: `compute_metrics` (one caption per video, e.g. MSR-VTT 1k-A) uses numpy's median, the mean of the
two middle ranks for an even count. `tensor_text_to_video_metrics` (several captions per video) uses
`torch.median`, the lower of the two. `median` below follows the published function of each case, so the
figures compare with published tables.
"""

from __future__ import annotations

import numpy as np

RECALL_AT = (1, 5, 10)


def rank_summary(ranks: np.ndarray, lower_median: bool = False) -> dict[str, float]:
    """1-based ranks (N,) -> {R1, R5, R10 (percent), MdR, MnR, count}."""
    ranks = np.asarray(ranks)
    if ranks.size == 0:
        return {**{f"R{k}": float("nan") for k in RECALL_AT}, "MdR": float("nan"), "MnR": float("nan"), "count": 0}
    out = {f"R{k}": float(np.mean(ranks <= k) * 100) for k in RECALL_AT}
    median = float(np.sort(ranks)[(ranks.size - 1) // 2]) if lower_median else float(np.median(ranks))
    return {**out, "MdR": median, "MnR": float(ranks.mean()), "count": int(ranks.size)}


def retrieval_metrics(
    text: np.ndarray, video: np.ndarray, video_of_text: np.ndarray, batch: int = 4096
) -> dict[str, dict[str, float]]:
    """Text -> video and video -> text metrics.

    text: (C, E) caption embeddings; video: (V, E) video embeddings (both normalised, or the scores are
    plain dot products); video_of_text: (C,) the index of each caption's video, every video having >= 1.
    Similarities are computed `batch` captions at a time: memory O(batch * V + V * V).
    Returns {"t2v": {...}, "v2t": {...}} as `rank_summary`. Raises ValueError for inconsistent shapes.
    """
    text, video = np.asarray(text, dtype=np.float32), np.asarray(video, dtype=np.float32)
    owner = np.asarray(video_of_text, dtype=np.int64)
    c, v = text.shape[0], video.shape[0]
    if text.ndim != 2 or video.ndim != 2 or text.shape[1] != video.shape[1]:
        raise ValueError(
            f"expected text (C, E), video (V, E), video_of_text (C,); got {text.shape}, {video.shape}, {owner.shape}"
        )
    _check(c, v, owner)
    blocks = ((start, text[start : start + batch] @ video.T) for start in range(0, c, batch))  # (b, V) each
    return _summaries(*_ranks(blocks, owner, v), several=c > v)


def similarity_metrics(sim: np.ndarray, video_of_text: np.ndarray) -> dict[str, dict[str, float]]:
    """`retrieval_metrics` of a caption x video score matrix (C, V) held whole (e.g. after `dual_softmax`)."""
    sim = np.asarray(sim, dtype=np.float32)
    owner = np.asarray(video_of_text, dtype=np.int64)
    _check(sim.shape[0], sim.shape[1], owner)
    return _summaries(*_ranks([(0, sim)], owner, sim.shape[1]), several=sim.shape[0] > sim.shape[1])


def _check(c: int, v: int, owner: np.ndarray) -> None:
    if owner.shape != (c,):
        raise ValueError(f"video_of_text has shape {owner.shape}, expected ({c},)")
    if c and (owner.min() < 0 or owner.max() >= v):
        raise ValueError(f"video_of_text holds indices outside 0..{v - 1}")
    if np.bincount(owner, minlength=v).min(initial=1) == 0:
        raise ValueError("every video needs at least one caption")


def _ranks(blocks, owner: np.ndarray, v: int) -> tuple[np.ndarray, np.ndarray]:
    """(start, caption-block scores (b, V)) blocks -> 1-based text->video ranks (C,), video->text ranks (V,)."""
    t2v = np.empty(len(owner), dtype=np.int64)
    best = np.full((v, v), -np.inf, dtype=np.float32)  # best[i, j]: best caption of video i for video j
    for start, sim in blocks:
        rows = owner[start : start + sim.shape[0]]
        own = sim[np.arange(sim.shape[0]), rows]
        t2v[start : start + sim.shape[0]] = 1 + (sim > own[:, None]).sum(axis=1)
        np.maximum.at(best, rows, sim)
    v2t_sim = best.T  # rows: videos; columns: caption sets
    return t2v, 1 + (v2t_sim > np.diag(v2t_sim)[:, None]).sum(axis=1)


def _summaries(t2v: np.ndarray, v2t: np.ndarray, several: bool) -> dict[str, dict[str, float]]:
    # several captions per video: CLIP4Clip's multi-sentence path (torch.median) for text -> video
    return {"t2v": rank_summary(t2v, lower_median=several), "v2t": rank_summary(v2t)}


def dual_softmax(sim: np.ndarray, temperature: float = 100.0) -> np.ndarray:
    """Dual-softmax re-ranking of a caption x video similarity matrix (C, V): each score times the softmax
    over captions of its column (Cheng et al., CAMoE, 2021, "dual softmax loss" at inference). It uses every
    test caption at once (transductive), so its figures are reported apart from the default ones."""
    z = sim * temperature
    z = np.exp(z - z.max(axis=0, keepdims=True))
    return sim * (z / z.sum(axis=0, keepdims=True))
