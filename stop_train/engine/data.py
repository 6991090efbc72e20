"""Clips for training and evaluation: probing (cached), sampling, decoding, pre-processing."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..data.types import VideoItem
from ..video import PreprocessCfg, SamplingCfg, normalize_frames, prepare_clip, train_indices
from ..video.decode import VideoInfo, VideoReadError, read_frames
from ..video.probe_cache import ProbeCache, probe_items  # noqa: F401 - re-exported for the run setup
from ..video.views import eval_views

log = logging.getLogger(__name__)


class ClipDataset(Dataset):
    """Training clips (random sampling, optional augmentation) or evaluation views (N clips x M crops).

    Randomness comes from (seed, epoch, index), so a resumed run samples exactly what the interrupted
    one would have. A read failure returns None (dropped by `collate`) and is logged.
    """

    def __init__(
        self,
        items: Sequence[VideoItem],
        infos: Sequence[VideoInfo],
        sampling: SamplingCfg,
        pre: PreprocessCfg,
        train: bool,
        seed: int = 0,
        augment: bool = False,
        flip_safe: bool = True,
        shuffle_frames: bool = False,
    ):
        self.items, self.infos = list(items), list(infos)
        self.sampling, self.pre, self.train = sampling, pre, train
        self.seed, self.augment, self.flip_safe = seed, augment, flip_safe
        self.shuffle_frames = shuffle_frames
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        item, info = self.items[i], self.infos[i]
        try:
            if self.train:
                rng = np.random.default_rng([self.seed, self.epoch, i])
                clip = read_frames(item.path, train_indices(self.sampling, info.times(), rng), info)
                views = [self._augment(clip, rng)]
            else:
                views = list(eval_views(item.path, info, self.sampling, self.pre))
        except (VideoReadError, OSError) as err:
            log.warning("skipping %s: %s", item.path, err)
            return None
        if self.shuffle_frames:  # the same permutation for every view of a clip
            order = np.random.default_rng([self.seed, self.epoch, i, 1]).permutation(len(views[0]))
            views = [v[order] for v in views]
        x = torch.from_numpy(normalize_frames(np.stack(views), self.pre))  # (V, T, 3, S, S)
        return (x[0] if self.train else x), item.label, i

    def _augment(self, frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if not self.augment:
            return prepare_clip(frames, self.pre)  # published recipe: centre crop only
        clip = prepare_clip(frames, self.pre, crop=("start", "center", "end")[rng.integers(3)])
        if self.flip_safe and rng.random() < 0.5:
            clip = clip[:, :, ::-1]
        return np.ascontiguousarray(clip)


def collate(batch):
    """Stack samples, dropping the ones that failed to read."""
    batch = [b for b in batch if b is not None]
    if not batch:
        return None
    x, y, idx = zip(*batch)
    return torch.stack(x), torch.tensor(y), torch.tensor(idx)


def collate_views(batch):
    """Evaluation samples -> (views of the readable videos stacked (B, V, ...) or None, which entries were
    readable)."""
    present = [b is not None for b in batch]
    views = [b[0] for b in batch if b is not None]
    return (torch.stack(views) if views else None), present
