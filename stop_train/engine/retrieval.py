"""Text-video retrieval training and evaluation: the symmetric contrastive loss over the global batch, and
the full caption x video evaluation (metrics in `retrieval_metrics`)."""

from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import DataLoader

from ..errors import TrainingError
from .data import ClipDataset, collate_views
from .distributed import DistInfo, all_gather_arrays, shard
from .retrieval_metrics import dual_softmax, retrieval_metrics, similarity_metrics


class _GatherBatch(torch.autograd.Function):
    """All ranks' rows (sizes may differ) in rank order; the backward sums the gradient over ranks and keeps
    this rank's rows, so a loss over the gathered rows has the gradient one process would compute on the
    global batch (DDP then averages over ranks)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        world, rank = dist.get_world_size(), dist.get_rank()
        sizes = torch.tensor([x.shape[0]], device=x.device)
        all_sizes = [torch.zeros_like(sizes) for _ in range(world)]
        dist.all_gather(all_sizes, sizes)
        sizes_list = [int(s.item()) for s in all_sizes]
        most = max(sizes_list)
        padded = torch.cat([x, x.new_zeros(most - x.shape[0], *x.shape[1:])]) if x.shape[0] < most else x
        parts = [torch.empty_like(padded) for _ in range(world)]
        dist.all_gather(parts, padded.contiguous())
        ctx.start, ctx.size = sum(sizes_list[:rank]), x.shape[0]
        return torch.cat([p[:n] for p, n in zip(parts, sizes_list)])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad[ctx.start : ctx.start + ctx.size]


def gather_batch(x: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """(b_rank, E) on each rank -> (sum of b, E), differentiable; the identity on one process.

    The published code (CLIP4Clip's `AllGather`) returns only this rank's slice of the gradient without
    summing over ranks, which scales the gradient by 1/world under DDP's averaging; here two processes with
    batch B each step exactly as one process with batch 2B (tested)."""
    return x if info.world == 1 else _GatherBatch.apply(x)


def symmetric_ce(video: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over matched pairs (STOP / CLIP4Clip `CrossEn` both ways, averaged).

    video (B, E), text (B, E), L2-normalised, row i of each a matched pair; logits = scale * text @ video^T,
    targets the diagonal. A video that appears twice in a batch (two of its captions) is a negative for the
    other caption, as in the published training with expanded sentences.
    """
    logits = logit_scale * text.float() @ video.float().t()
    target = torch.arange(len(logits), device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


@torch.no_grad()
def embed_videos(
    model, dataset: ClipDataset, device, autocast, info: DistInfo, batch_size: int, workers: int, progress=None
) -> tuple[np.ndarray, np.ndarray]:
    """Video embeddings (N, E) float32, views averaged then L2-normalised, on every rank, with a mask (N,) of the
    videos that could be read (unreadable rows are zero)."""
    if len(dataset) == 0:
        raise TrainingError("nothing to evaluate: the split has no videos")
    indices, valid = shard(list(range(len(dataset))), info)
    batches = [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]
    loader = DataLoader(
        dataset, batch_sampler=batches, num_workers=workers, collate_fn=collate_views, generator=torch.Generator()
    )
    out = torch.zeros(len(indices), model.cfg.embed_dim, dtype=torch.float32)
    read = torch.zeros(len(indices), dtype=torch.bool)
    pos = 0
    for x, present in progress(loader) if progress else loader:
        if x is not None:  # (B, V, T, 3, S, S): every view of the batch in one forward
            b, v = x.shape[:2]
            with autocast():
                emb = model.encode_video(x.flatten(0, 1).to(device))
            rows = torch.arange(pos, pos + len(present))[torch.tensor(present)]
            out[rows] = F.normalize(emb.float().view(b, v, -1).mean(1), dim=-1).cpu()
            read[rows] = True
        pos += len(present)
    keep = torch.tensor(valid)
    out, read, keep = (all_gather_arrays(t.to(device), info).cpu() for t in (out, read, keep))
    return out[keep].numpy(), read[keep].numpy()


@torch.no_grad()
def embed_texts(model, ids: torch.Tensor, device, autocast, batch_size: int = 1024) -> np.ndarray:
    """Token ids (C, n) -> L2-normalised caption embeddings (C, E) float32."""
    parts = []
    for i in range(0, len(ids), batch_size):
        with autocast():
            parts.append(F.normalize(model.encode_text(ids[i : i + batch_size].to(device)).float(), dim=-1).cpu())
    return torch.cat(parts).numpy() if parts else np.zeros((0, model.cfg.embed_dim), np.float32)


def evaluate_retrieval(
    model,
    dataset: ClipDataset,
    caption_ids: torch.Tensor,
    video_of_caption: np.ndarray,
    device,
    autocast,
    info: DistInfo,
    batch_size: int,
    workers: int,
    progress=None,
    with_dual_softmax: bool = False,
) -> dict[str, float]:
    """Caption x video retrieval on a split -> flat metrics {t2v_R1, ..., v2t_MnR, videos, captions}
    (R@k in percent), plus dsl_* figures when `with_dual_softmax` (reported apart, never mixed in).

    Videos that cannot be read are dropped with their captions (counted in `unreadable_videos`): the
    figures are then over fewer candidates than the split lists."""
    was_training = model.training
    model.eval()
    try:
        video, read = embed_videos(model, dataset, device, autocast, info, batch_size, workers, progress)
        text = embed_texts(model, caption_ids, device, autocast)
    finally:
        model.train(was_training)
    video_of_caption = np.asarray(video_of_caption)
    if not read.all():  # re-number the readable videos; their captions follow them
        new = np.cumsum(read) - 1
        kept = read[video_of_caption]
        video, text, video_of_caption = video[read], text[kept], new[video_of_caption[kept]]
    if len(video) == 0:
        raise TrainingError("no video of the split could be read")
    out = {"videos": int(len(video)), "captions": int(len(text)), "unreadable_videos": int((~read).sum())}
    for direction, figures in retrieval_metrics(text, video, video_of_caption).items():
        out.update({f"{direction}_{k}": v for k, v in figures.items() if k != "count"})
    if with_dual_softmax:
        for direction, figures in similarity_metrics(dual_softmax(text @ video.T), video_of_caption).items():
            out.update({f"dsl_{direction}_{k}": v for k, v in figures.items() if k != "count"})
    return out
