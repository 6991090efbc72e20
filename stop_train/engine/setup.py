"""Everything a run reads before the first step: the dataset index, probed videos, samplers, run files."""
from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import ModelConfig, load_preset
from ..data import open_dataset
from ..data.synthetic import write_synthetic_motion
from ..video import PreprocessCfg, SamplingCfg
from .checkpoint import write_json
from .config import TrainConfig
from .data import ClipDataset, ProbeCache, probe_items
from .distributed import DistInfo, barrier

log = logging.getLogger(__name__)

SYNTHETIC = "synthetic-motion"


# TrainConfig field -> (indexer option, the datasets that take it)
DATASET_FLAGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "split_dir": ("split_dir", ("ucf101", "hmdb51")),
    "train_list": ("lists", ("list", "kinetics400")),
    "val_list": ("lists", ("list", "kinetics400")),
    "test_list": ("lists", ("list",)),
    "classes": ("classes", ("list",)),
    "annotations": ("annotations", ("kinetics400", "ssv2")),
    "video_dir": ("videos", ("kinetics400", "ssv2")),
    "video_ext": ("ext", ("kinetics400", "ssv2")),
    "extensions": ("extensions", ("folder",)),
    "flip_safe": ("flip_safe", ("folder", "list")),
}


def dataset_options(cfg: TrainConfig) -> dict:
    """The indexer options the dataset flags of `cfg` give; ValueError for a flag the dataset does not take."""
    options: dict = {}
    for name, (option, datasets) in DATASET_FLAGS.items():
        value = getattr(cfg, name)
        if value in ("", None):
            continue
        if cfg.dataset not in datasets:
            flag = ("--no-" if value is False else "--") + name.replace("_", "-")
            raise ValueError(f"{flag} does not apply to --dataset {cfg.dataset} "
                             f"(only to {', '.join(datasets)})")
        if option == "lists":
            options.setdefault("lists", {})[name.removesuffix("_list")] = value
        elif option == "extensions":
            options[option] = tuple(e if e.startswith(".") else "." + e for e in value.lower().split(",") if e)
        else:
            options[option] = value
    return options


def new_run_config(cfg: TrainConfig) -> tuple[TrainConfig, ModelConfig]:
    """Resolve a new run once: the preset, the `--model` overrides and the activation the CLIP weights need
    give the run's ModelConfig; `pretrained` '' becomes the preset's default. Resume, eval and export read the
    result from the run's config.json, never the preset again."""
    from ..model import resolve_config

    preset_cfg, preset_weights = load_preset(cfg.preset)
    cfg = dataclasses.replace(cfg, pretrained=cfg.pretrained or preset_weights)
    pretrained = None if cfg.pretrained == "none" else cfg.pretrained
    return cfg, resolve_config(preset_cfg, pretrained, **cfg.model)


@dataclass
class RunData:
    classes: list[str]
    sampling: SamplingCfg
    preprocess: PreprocessCfg
    train: ClipDataset
    val: ClipDataset | None  # None: no validation (--val-fraction 0, or a hold-out that came out empty)
    splits: dict[str, ClipDataset]  # evaluation datasets with the test views, by split name (non-empty ones)
    skipped: list[tuple[str, str]]
    val_holdout: bool = False  # val was held out of train (it picks the checkpoint; it is no test)
    writer: object = field(default=None, repr=False)  # TensorBoard SummaryWriter on the main process

    def split(self, name: str) -> ClipDataset:
        if name not in self.splits:
            raise ValueError(f"split {name!r} has no videos here; splits with videos: {', '.join(self.splits) or 'none'}")
        return self.splits[name]

    def tensorboard(self, epoch: int, loss: float, metrics: dict[str, float] | None) -> None:
        if self.writer is None:
            return
        self.writer.add_scalar("train/loss", loss, epoch)
        for key in ("top1", "top5", "mean_class_acc") if metrics else ():
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


def prepare_data(cfg: TrainConfig, model_cfg: ModelConfig, runs_root: Path, dist: DistInfo,
                 only: str | None = None) -> RunData:
    """Index, probe and wrap the run's data; sampling and pre-processing derive from `model_cfg`.

    `only` names the one split an evaluation needs: the others are indexed but not probed (left empty).
    Raises ValueError when training has no readable video, or `only` has none.
    """
    name, root = dataset_root(cfg, runs_root, dist)
    index = open_dataset(name, root, fold=cfg.fold, val_fraction=cfg.val_fraction, seed=cfg.seed,
                         **dataset_options(cfg))
    flip_safe = index.flip_safe
    cache = ProbeCache(Path(cfg.probe_cache) if cfg.probe_cache else runs_root / ".probe-cache.json")
    probed, skipped = {}, [(path, f"listed in the {split} split but not on disk") for path, split in index.missing]
    for split, items in index.splits.items():
        if (only and split != only) or not items:
            probed[split] = ([], [])
            continue
        usable, infos, bad = probe_items(items, cache, _progress_bar(f"probing {split} videos") if dist.is_main else None)
        probed[split] = (usable, infos)
        skipped += bad
    if dist.is_main:
        cache.save()
    if skipped:
        log.warning("%d videos skipped (see skipped_videos.json)", len(skipped))
    needed = only or "train"
    if not index.splits.get(needed):
        have = [s for s, items in index.splits.items() if items]
        raise ValueError(f"{index.name}: this data has no {needed} split (splits with videos: {', '.join(have) or 'none'})")
    if not probed[needed][0]:
        raise ValueError(f"{index.name}: no video of the {needed} split is readable ({len(skipped)} skipped, "
                         "listed in skipped_videos.json)")
    sampling = SamplingCfg(sampler=cfg.sampler, frames=model_cfg.frames, frame_interval_s=cfg.frame_interval_s,
                           test_clips=cfg.test_clips, test_crops=cfg.test_crops)
    pre = PreprocessCfg.for_model(model_cfg)
    single_view = dataclasses.replace(sampling, test_clips=1, test_crops=1)  # validation each epoch: one view
    shuffle = {"shuffle_frames": cfg.shuffle_frames, "seed": cfg.seed}
    train = ClipDataset(*probed["train"], sampling, pre, train=True, augment=cfg.augment, flip_safe=flip_safe, **shuffle)
    val = ClipDataset(*probed["val"], single_view, pre, train=False, **shuffle) if probed.get("val", ((),))[0] else None
    splits = {s: ClipDataset(*probed[s], sampling, pre, train=False, **shuffle) for s in probed if probed[s][0]}
    return RunData(index.classes, sampling, pre, train, val, splits, skipped, index.val_holdout)


def write_run_files(cfg: TrainConfig, model_cfg: ModelConfig, run_dir: Path, data: RunData) -> None:
    """config.json (the run's resolved training and model config, sampling, pre-processing) and labels.txt:
    written once, when a run starts."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "labels.txt").write_text("".join(c + "\n" for c in data.classes), encoding="utf-8")
    sampling = data.sampling
    interval = sampling.frame_interval_s
    if sampling.sampler == "segments" and data.train.infos:  # the time scale the model learned, for live use
        interval = float(np.median([info.duration_s / sampling.frames for info in data.train.infos]))
    write_json(run_dir / "config.json", {
        "train": cfg.to_dict(), "model": model_cfg.to_dict(),
        "sampling": {**dataclasses.asdict(sampling), "frame_interval_s": interval},
        "preprocess": dataclasses.asdict(data.preprocess),
    })


def write_skipped(run_dir: Path, data: RunData) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "skipped_videos.json", [{"path": p, "reason": r} for p, r in data.skipped])


def read_run_config(run_dir: Path) -> tuple[TrainConfig, ModelConfig]:
    """The training and model config a run recorded when it started (its config.json)."""
    saved = run_dir / "config.json"
    if not saved.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no config.json)")
    data = json.loads(saved.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not {"train", "model"} <= set(data):
        raise ValueError(f"{saved} is not a run's config.json (no 'train' and 'model' sections)")
    return TrainConfig.from_dict(data["train"]), ModelConfig.from_dict(data["model"])


def _progress_bar(desc: str):
    from functools import partial

    from tqdm import tqdm

    return partial(tqdm, desc=desc, dynamic_ncols=True, leave=False)


def tensorboard_writer(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional: metrics.csv always has the figures
        log.info("tensorboard is not installed: metrics go to metrics.csv only")
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))
