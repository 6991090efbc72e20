"""Evaluation over a split (views averaged, sharded across ranks) and the class statistics of a split's videos."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..errors import TrainingError
from ..model import STOP
from ..statistics import FrameStatistics
from .data import ClipDataset, collate_views
from .distributed import DistInfo, all_gather_arrays, shard
from .metrics import classification_metrics


@torch.no_grad()
def evaluate(
    model: STOP,
    dataset: ClipDataset,
    text_ids: torch.Tensor,
    device,
    autocast,
    info: DistInfo,
    batch_size: int,
    workers: int,
    progress: bool = False,
) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """Scores every video of `dataset` (views averaged) -> (metrics, scores (N, K), labels (N,)) on every rank."""
    if len(dataset) == 0:
        raise TrainingError("nothing to evaluate: the split has no videos")
    was_training = model.training
    model.eval()
    indices, valid, loader = _view_loader(dataset, info, batch_size, workers)
    with autocast():
        text = model.encode_text(text_ids.to(device))
    scores = torch.full((len(indices), text.shape[0]), float("nan"), dtype=torch.float64)
    pos = 0
    for x, present in progress_bar(loader, progress, "eval"):
        if x is not None:  # (B, V, T, 3, S, S): all views of the batch in one forward
            b, v = x.shape[:2]
            with autocast():
                logits = model.get_logits(model.encode_video(x.flatten(0, 1).to(device)), text)
            rows = torch.arange(pos, pos + len(present))[torch.tensor(present)]
            scores[rows] = logits.float().softmax(-1).view(b, v, -1).mean(1).cpu().double()
        pos += len(present)
    model.train(was_training)
    labels = torch.tensor([dataset.items[i].label for i in indices])
    keep = torch.tensor(valid)
    scores, labels, keep = (all_gather_arrays(t.to(device), info).cpu() for t in (scores, labels, keep))
    ok = keep & ~torch.isnan(scores).any(-1)  # padding repeats and unreadable videos are not counted
    s, y = scores[ok].numpy(), labels[ok].numpy()
    return classification_metrics(s, y), s, y


@torch.no_grad()
def frame_statistics(
    model: STOP,
    dataset: ClipDataset,
    classes: list[str],
    device,
    autocast,
    info: DistInfo,
    batch_size: int,
    workers: int,
    progress: bool = False,
) -> FrameStatistics:
    """Class statistics (`stop_train.statistics`) of every video of `dataset` (evaluation views): each video's
    frame embeddings (T, E), averaged over its views and flattened, as one example clip is embedded; on every rank.
    Raises StatisticsError when the videos cannot make statistics (fewer than two classes)."""
    was_training = model.training
    model.eval()
    indices, valid, loader = _view_loader(dataset, info, batch_size, workers)
    dim = model.cfg.frames * model.cfg.embed_dim
    sums = torch.zeros(len(classes), dim, dtype=torch.float64, device=device)
    counts = torch.zeros(len(classes), dtype=torch.float64, device=device)
    outer = torch.zeros(dim, dim, dtype=torch.float64, device=device)
    pos = 0
    for x, present in progress_bar(loader, progress, "class statistics"):
        if x is not None:
            b, v = x.shape[:2]
            with autocast():
                hidden, _ = model.forward_visual(x.flatten(0, 1).to(device), all_tokens=True)
                frames = model.frame_embeddings(hidden)
            feats = frames.float().view(b, v, -1).mean(1).double()
            rows = [pos + j for j, ok in enumerate(present) if ok]
            keep = torch.tensor([valid[r] for r in rows], device=device)  # padding repeats are not counted
            feats = feats[keep]
            labels = torch.tensor(
                [dataset.items[indices[r]].label for r, k in zip(rows, keep.tolist()) if k],
                device=device,
                dtype=torch.long,
            )
            sums.index_add_(0, labels, feats)
            counts += torch.bincount(labels, minlength=len(classes)).double()
            outer += feats.T @ feats
        pos += len(present)
    model.train(was_training)
    if info.world > 1:
        for t in (sums, counts, outer):
            torch.distributed.all_reduce(t)
    return FrameStatistics.from_sums(classes, sums.cpu().numpy(), counts.cpu().numpy(), outer.cpu().numpy())


def progress_bar(iterable, enabled: bool, desc: str, total: int | None = None):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, dynamic_ncols=True, leave=False)


def _view_loader(dataset: ClipDataset, info: DistInfo, batch_size: int, workers: int):
    """(this rank's dataset indices, which of them are real rather than padding repeats, a loader of their
    evaluation views in batches of `batch_size`). The loader has its own generator: the global RNG stream stays
    untouched."""
    indices, valid = shard(list(range(len(dataset))), info)
    batches = [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]
    loader = DataLoader(
        dataset, batch_sampler=batches, num_workers=workers, collate_fn=collate_views, generator=torch.Generator()
    )
    return indices, valid, loader
