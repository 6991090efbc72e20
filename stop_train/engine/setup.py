"""Everything a run reads before the first step: the dataset index, probed videos, samplers, run files."""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import apply_overrides, load_config
from ..data import open_dataset
from ..data.synthetic import write_synthetic_motion
from ..video import PreprocessCfg, SamplingCfg
from .checkpoint import write_json
from .config import TrainConfig
from .data import ClipDataset, ProbeCache, probe_items
from .distributed import DistInfo, barrier

log = logging.getLogger(__name__)

SYNTHETIC = "synthetic-motion"


@dataclass
class RunData:
    classes: list[str]
    sampling: SamplingCfg
    preprocess: PreprocessCfg
    train: ClipDataset
    val: ClipDataset
    splits: dict[str, ClipDataset]  # evaluation datasets with the test views, by split name
    skipped: list[tuple[str, str]]
    writer: object = field(default=None, repr=False)  # TensorBoard SummaryWriter on the main process

    def split(self, name: str) -> ClipDataset:
        if name not in self.splits:
            raise ValueError(f"split {name!r} is not available; available: {', '.join(self.splits)}")
        return self.splits[name]

    def tensorboard(self, epoch: int, loss: float, metrics: dict[str, float]) -> None:
        if self.writer is None:
            return
        self.writer.add_scalar("train/loss", loss, epoch)
        for key in ("top1", "top5", "mean_class_acc"):
            self.writer.add_scalar(f"val/{key}", metrics[key], epoch)
        self.writer.flush()


def dataset_root(cfg: TrainConfig, runs_root: Path, dist: DistInfo) -> tuple[str, Path]:
    """(indexer name, root); synthetic-motion is generated on first use (by the main process)."""
    if cfg.dataset != SYNTHETIC:
        if not cfg.data_root:
            raise ValueError(f"--data-root is required for --dataset {cfg.dataset}")
        return cfg.dataset, Path(cfg.data_root)
    root = Path(cfg.data_root) if cfg.data_root else runs_root / ".synthetic-motion"
    # the default root follows the current generator (rewritten when its spec changed); a set the user
    # generated under --data-root is kept as it is
    if dist.is_main and (not cfg.data_root or not (root / "synthetic-motion.json").is_file()):
        write_synthetic_motion(root)
    barrier(dist)
    return SYNTHETIC, root


def prepare_data(cfg: TrainConfig, run_dir: Path, dist: DistInfo) -> RunData:
    model_cfg = apply_overrides(load_config(cfg.preset), cfg.model)
    name, root = dataset_root(cfg, run_dir.parent, dist)
    index = open_dataset(name, root, fold=cfg.fold, val_fraction=cfg.val_fraction, seed=cfg.seed)
    flip_safe = index.flip_safe
    cache = ProbeCache(Path(cfg.probe_cache) if cfg.probe_cache else run_dir.parent / ".probe-cache.json")
    probed, skipped = {}, [(path, f"listed in the {split} split but not on disk") for path, split in index.missing]
    for split, items in index.splits.items():
        usable, infos, bad = probe_items(items, cache, _progress_bar(f"probing {split} videos") if dist.is_main else None)
        probed[split] = (usable, infos)
        skipped += bad
    if dist.is_main:
        cache.save()
    if skipped:
        log.warning("%d videos skipped (see skipped_videos.json)", len(skipped))
    sampling = SamplingCfg(sampler=cfg.sampler, frames=model_cfg.frames, frame_interval_s=cfg.frame_interval_s,
                           test_clips=cfg.test_clips, test_crops=cfg.test_crops)
    pre = PreprocessCfg.for_model(model_cfg)
    single_view = dataclasses.replace(sampling, test_clips=1, test_crops=1)  # validation each epoch: one view
    shuffle = {"shuffle_frames": cfg.shuffle_frames, "seed": cfg.seed}
    train = ClipDataset(*probed["train"], sampling, pre, train=True, augment=cfg.augment, flip_safe=flip_safe, **shuffle)
    val = ClipDataset(*probed["val"], single_view, pre, train=False, **shuffle)
    splits = {s: ClipDataset(*probed[s], sampling, pre, train=False, **shuffle) for s in probed}
    writer = None
    if dist.is_main:
        _write_run_files(cfg, run_dir, index.classes, sampling, pre, probed["train"][1], skipped, model_cfg)
        writer = _tensorboard(run_dir)
    return RunData(index.classes, sampling, pre, train, val, splits, skipped, writer)


def _write_run_files(cfg, run_dir, classes, sampling, pre, train_infos, skipped, model_cfg) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "labels.txt").write_text("".join(c + "\n" for c in classes), encoding="utf-8")
    interval = sampling.frame_interval_s
    if sampling.sampler == "segments" and train_infos:  # the time scale the model learned, for live use
        interval = float(np.median([info.duration_s / sampling.frames for info in train_infos]))
    write_json(run_dir / "config.json", {
        "train": cfg.to_dict(), "model": model_cfg.to_dict(),
        "sampling": {**dataclasses.asdict(sampling), "frame_interval_s": interval},
        "preprocess": dataclasses.asdict(pre),
    })
    write_json(run_dir / "skipped_videos.json", [{"path": p, "reason": r} for p, r in skipped])


def _progress_bar(desc: str):
    from functools import partial

    from tqdm import tqdm

    return partial(tqdm, desc=desc, dynamic_ncols=True, leave=False)


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional: metrics.csv always has the figures
        log.info("tensorboard is not installed: metrics go to metrics.csv only")
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))
