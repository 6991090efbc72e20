"""Everything a run reads before the first step: the dataset index, probed videos, samplers, run files."""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import printable
from ..config import ModelConfig, load_preset
from ..data import DATASETS, open_dataset
from ..data.captions import CAPTION_DATASETS, CaptionSplit, open_caption_dataset
from ..data.synthetic import write_synthetic_motion
from ..data.synthetic_captions import write_synthetic_captions
from ..data.types import parse_extensions
from ..errors import ConfigError
from ..rundir import RunDir
from ..video import PreprocessCfg, SamplingCfg
from .checkpoint import write_json
from .config import DATASET_FLAGS, GENERATED_DATASETS, RETRIEVAL_MODEL_DEFAULTS, TrainConfig
from .data import ClipDataset, ProbeCache, probe_items
from .distributed import DistInfo, barrier

log = logging.getLogger(__name__)

GENERATED = dict(zip(GENERATED_DATASETS, (write_synthetic_motion, write_synthetic_captions), strict=True))


def dataset_options(cfg: TrainConfig) -> dict:
    """The indexer options the dataset flags of `cfg` give; ValueError for a flag the dataset does not take,
    or a dataset of the other task."""
    check_task_flags(cfg)
    names = CAPTION_DATASETS if cfg.task == "retrieval" else DATASETS
    if cfg.dataset not in names:
        other = "retrieval" if cfg.task == "recognition" else "recognition"
        hint = (
            f" (it is a {other} dataset: add --task {other})"
            if cfg.dataset in (DATASETS if other == "recognition" else CAPTION_DATASETS)
            else ""
        )
        raise ConfigError(f"--task {cfg.task} takes --dataset {' | '.join(names)}; got {cfg.dataset!r}{hint}")
    options: dict = {}
    for name, (option, datasets) in DATASET_FLAGS.items():
        value = getattr(cfg, name)
        if value in ("", None):
            continue
        if cfg.dataset not in datasets:
            flag = ("--no-" if value is False else "--") + name.replace("_", "-")
            raise ConfigError(f"{flag} does not apply to --dataset {cfg.dataset} (only to {', '.join(datasets)})")
        if option == "lists":
            options.setdefault("lists", {})[name.removesuffix("_list")] = value
        elif option == "extensions":
            options[option] = parse_extensions(value)
        else:
            options[option] = value
    return options


def check_task_flags(cfg: TrainConfig) -> None:
    """ValueError for a flag that has no effect on the run's task (it would be silently ignored)."""
    from ..labels import DEFAULT_TEMPLATE

    if cfg.task == "retrieval":
        unused = [
            flag
            for flag, on in (
                ("--fold", cfg.fold != 1),
                ("--label-smoothing", cfg.label_smoothing != 0),
                ("--template", cfg.template != DEFAULT_TEMPLATE),
            )
            if on
        ]
        if unused:
            raise ConfigError(
                f"{', '.join(unused)} {'does' if len(unused) == 1 else 'do'} not apply to --task retrieval "
                "(captions are used as written; folds and label smoothing are for class labels)"
            )
    elif cfg.dual_softmax:
        raise ConfigError("--dual-softmax applies to --task retrieval")


def absolute_paths(cfg: TrainConfig) -> TrainConfig:
    """The data root, and path flags that name something relative to the current directory, made absolute, so
    a run's config.json works from any directory (names relative to the data root stay as given)."""
    import os

    changes = {"data_root": os.path.abspath(cfg.data_root)} if cfg.data_root else {}
    for name in ("split_dir", "train_list", "val_list", "test_list", "annotations", "video_dir", "probe_cache"):
        value = getattr(cfg, name)
        if (
            value
            and not os.path.isabs(value)
            and os.path.exists(value)
            and not (cfg.data_root and os.path.exists(os.path.join(cfg.data_root, value)))
        ):
            changes[name] = os.path.abspath(value)
    return dataclasses.replace(cfg, **changes)


def new_run_config(cfg: TrainConfig) -> tuple[TrainConfig, ModelConfig]:
    """Resolve a new run once: the preset, the `--model` overrides and the activation the CLIP weights need
    give the run's ModelConfig (a retrieval run defaults to `RETRIEVAL_MODEL_DEFAULTS`, the published 12 frames
    and 32 text tokens); `pretrained` '' becomes the preset's default. Resume, eval and export read the
    result from the run's config.json, never the preset again."""
    from ..model import resolve_config

    preset_cfg, preset_weights = load_preset(cfg.preset)
    cfg = absolute_paths(dataclasses.replace(cfg, pretrained=cfg.pretrained or preset_weights))
    pretrained = None if cfg.pretrained == "none" else cfg.pretrained
    overrides = dict(cfg.model)
    if cfg.task == "retrieval":  # the published retrieval recipe unless --model says otherwise
        for key, value in RETRIEVAL_MODEL_DEFAULTS.items():
            overrides.setdefault(key, value)
    return cfg, resolve_config(preset_cfg, pretrained, **overrides)


# the validation figures a run logs per epoch, by task; the first picks the best checkpoint
VAL_COLUMNS = {"recognition": ("top1", "top5", "mean_class_acc"), "retrieval": ("t2v_R1", "t2v_R5", "v2t_R1")}


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
    # retrieval: per split (captions, video_of_caption (C,) positions in that split's dataset); for 'train' the
    # dataset holds one item per caption (the published expanded sentences), so caption i is item i's
    captions: dict[str, tuple[list[str], np.ndarray]] = field(default_factory=dict)

    def split(self, name: str) -> ClipDataset:
        if name not in self.splits:
            raise ConfigError(
                f"split {name!r} has no videos here; splits with videos: {', '.join(self.splits) or 'none'}"
            )
        return self.splits[name]

    def tensorboard(self, epoch: int, loss: float, metrics: dict[str, float] | None) -> None:
        if self.writer is None:
            return
        self.writer.add_scalar("train/loss", loss, epoch)
        for key in VAL_COLUMNS["retrieval" if self.captions else "recognition"] if metrics else ():
            self.writer.add_scalar(f"val/{key}", metrics[key], epoch)
        self.writer.flush()


def dataset_root(cfg: TrainConfig, runs_root: Path, dist: DistInfo) -> tuple[str, Path]:
    """(indexer name, root); synthetic-motion and synthetic-captions are generated on first use (by the main
    process)."""
    if cfg.dataset not in GENERATED:
        if not cfg.data_root:
            raise ConfigError(f"--data-root is required for --dataset {cfg.dataset}")
        return cfg.dataset, Path(cfg.data_root)
    root = Path(cfg.data_root) if cfg.data_root else runs_root / f".{cfg.dataset}"
    # the default root follows the current generator (rewritten when its spec changed); a set the user
    # generated under --data-root is kept as it is
    if dist.is_main and (not cfg.data_root or not (root / f"{cfg.dataset}.json").is_file()):
        GENERATED[cfg.dataset](root)
    barrier(dist)
    return cfg.dataset, root


def prepare_data(
    cfg: TrainConfig, model_cfg: ModelConfig, runs_root: Path, dist: DistInfo, only: str | None = None
) -> RunData:
    """Index, probe and wrap the run's data; sampling and pre-processing derive from `model_cfg`.

    `only` names the one split an evaluation needs: the others are indexed but not probed (left empty).
    Raises ValueError when training has no readable video, or `only` has none.
    """
    if cfg.task == "retrieval":
        return _prepare_captions(cfg, model_cfg, runs_root, dist, only)
    name, root = dataset_root(cfg, runs_root, dist)
    index = open_dataset(
        name, root, fold=cfg.fold, val_fraction=cfg.val_fraction, seed=cfg.seed, **dataset_options(cfg)
    )
    flip_safe = index.flip_safe
    cache = ProbeCache(Path(cfg.probe_cache) if cfg.probe_cache else runs_root / ".probe-cache.json")
    probed, skipped = {}, [(path, f"listed in the {split} split but not on disk") for path, split in index.missing]
    for split, items in index.splits.items():
        if (only and split != only) or not items:
            probed[split] = ([], [])
            continue
        usable, infos, bad = _probe(items, cache, split, cfg, dist)
        probed[split] = (usable, infos)
        skipped += bad
    if dist.is_main:
        cache.save()
    if skipped:
        log.warning("%d videos skipped (see skipped_videos.json)", len(skipped))
    needed = only or "train"
    if not index.splits.get(needed):
        have = [s for s, items in index.splits.items() if items]
        raise ConfigError(
            f"{index.name}: this data has no {needed} split (splits with videos: {', '.join(have) or 'none'})"
        )
    if not probed[needed][0]:
        raise ConfigError(
            f"{index.name}: no video of the {needed} split is readable ({len(skipped)} skipped, "
            "listed in skipped_videos.json)"
        )
    sampling = SamplingCfg(
        sampler=cfg.sampler,
        frames=model_cfg.frames,
        frame_interval_s=cfg.frame_interval_s,
        test_clips=cfg.test_clips,
        test_crops=cfg.test_crops,
    )
    pre = PreprocessCfg.for_model(model_cfg)
    single_view = dataclasses.replace(sampling, test_clips=1, test_crops=1)  # validation each epoch: one view
    shuffle = {"shuffle_frames": cfg.shuffle_frames, "seed": cfg.seed}
    train = ClipDataset(
        *probed["train"], sampling, pre, train=True, augment=cfg.augment, flip_safe=flip_safe, **shuffle
    )
    val = ClipDataset(*probed["val"], single_view, pre, train=False, **shuffle) if probed.get("val", ((),))[0] else None
    splits = {s: ClipDataset(*probed[s], sampling, pre, train=False, **shuffle) for s in probed if probed[s][0]}
    return RunData(index.classes, sampling, pre, train, val, splits, skipped, index.val_holdout)


def _prepare_captions(
    cfg: TrainConfig, model_cfg: ModelConfig, runs_root: Path, dist: DistInfo, only: str | None
) -> RunData:
    """`prepare_data` for a caption dataset: videos are probed once per split (unreadable ones are dropped
    with their captions); training items are the (video, caption) pairs."""
    name, root = dataset_root(cfg, runs_root, dist)
    index = open_caption_dataset(name, root, val_fraction=cfg.val_fraction, seed=cfg.seed, **dataset_options(cfg))
    cache = ProbeCache(Path(cfg.probe_cache) if cfg.probe_cache else runs_root / ".probe-cache.json")
    skipped = [(vid, f"listed in the {split} split but not on disk") for vid, split in index.missing]
    splits: dict[str, tuple[CaptionSplit, list]] = {}
    for split, part in index.splits.items():
        if (only and split != only) or not part.videos:
            continue
        usable, infos, bad = _probe(part.videos, cache, split, cfg, dist)
        skipped += bad
        readable = {item.path for item in usable}
        splits[split] = (part.subset([i for i, v in enumerate(part.videos) if v.path in readable]), infos)
    if dist.is_main:
        cache.save()
    _check_caption_splits(index, splits, skipped, only)
    sampling = SamplingCfg(
        sampler=cfg.sampler,
        frames=model_cfg.frames,
        frame_interval_s=cfg.frame_interval_s,
        test_clips=cfg.test_clips,
        test_crops=cfg.test_crops,
    )
    pre = PreprocessCfg.for_model(model_cfg)
    single_view = dataclasses.replace(sampling, test_clips=1, test_crops=1)
    shuffle = {"shuffle_frames": cfg.shuffle_frames, "seed": cfg.seed}
    captions = {
        s: (part.captions, np.asarray(part.video_of_caption, dtype=np.int64)) for s, (part, _) in splits.items()
    }
    empty = ClipDataset([], [], sampling, pre, train=True)
    train = empty
    if "train" in splits:  # one item per caption; captions may mention left and right: no flips
        part, infos = splits["train"]
        train = ClipDataset(
            [part.videos[v] for v in part.video_of_caption],
            [infos[v] for v in part.video_of_caption],
            sampling,
            pre,
            train=True,
            augment=cfg.augment,
            flip_safe=False,
            **shuffle,
        )
    val = (
        ClipDataset(splits["val"][0].videos, splits["val"][1], single_view, pre, train=False, **shuffle)
        if "val" in splits
        else None
    )
    evals = {
        s: ClipDataset(part.videos, infos, sampling, pre, train=False, **shuffle) for s, (part, infos) in splits.items()
    }
    return RunData([], sampling, pre, train, val, evals, skipped, index.val_holdout, captions=captions)


def _check_caption_splits(index, splits: dict, skipped: list, only: str | None) -> None:
    """Raises ValueError when the split needed (`only`, else train) has no readable video; warns of skipped videos
    and of a validation split too small to pick a checkpoint by."""
    if skipped:
        log.warning("%d videos skipped with their captions (see skipped_videos.json)", len(skipped))
    needed = only or "train"
    have = [s for s, part in index.splits.items() if part.videos]
    if needed not in have:
        raise ConfigError(
            f"{index.name}: this data has no {needed} split (splits with videos: {', '.join(have) or 'none'})"
        )
    if not splits[needed][0].videos:
        raise ConfigError(
            f"{index.name}: no readable video in the {needed} split ({len(skipped)} skipped, listed in "
            "skipped_videos.json)"
        )
    if "val" in splits and len(splits["val"][0].videos) < 20 and not only:
        log.warning(
            "%s: the validation split has only %d videos: its R@1, which picks the checkpoint, is coarse "
            "(raise --val-fraction)",
            index.name,
            len(splits["val"][0].videos),
        )


def write_run_files(cfg: TrainConfig, model_cfg: ModelConfig, run_dir: Path, data: RunData) -> None:
    """config.json (the run's resolved training and model config, sampling, pre-processing) and labels.txt:
    written once, when a run starts."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if data.classes:  # a retrieval run has captions, no labels
        RunDir(run_dir).write_labels(data.classes)
    sampling = data.sampling
    interval = sampling.frame_interval_s
    if sampling.sampler == "segments" and data.train.infos:  # the time scale the model learned, for live use
        interval = float(np.median([info.duration_s / sampling.frames for info in data.train.infos]))
    RunDir(run_dir).write_config(
        {
            "train": cfg.to_dict(),
            "model": model_cfg.to_dict(),
            "sampling": {**dataclasses.asdict(sampling), "frame_interval_s": interval},
            "preprocess": dataclasses.asdict(data.preprocess),
        },
    )


def write_skipped(run_dir: Path, data: RunData) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "skipped_videos.json", [{"path": p, "reason": r} for p, r in data.skipped])


def read_run_config(run_dir: Path) -> tuple[TrainConfig, ModelConfig]:
    """The training and model config a run recorded when it started (its config.json)."""
    data = RunDir(run_dir).config
    return TrainConfig.from_dict(data["train"]), ModelConfig.from_dict(data["model"])


def _probe(items: list, cache: ProbeCache, split: str, cfg: TrainConfig, dist: DistInfo):
    """`probe_items` for one split (`cfg.probe`: exact or fast). Under torchrun each rank first probes its share of
    the videos and saves it; after a barrier every rank finds the others' in the shared cache."""
    exact = cfg.probe == "exact"
    desc = f"probing {split} videos" + (" (each decoded once, cached)" if exact else "")
    if dist.world > 1:
        probe_items(items[dist.rank :: dist.world], cache, _progress_bar(desc) if dist.is_main else None, exact)
        try:
            cache.save()
        except OSError as err:
            log.warning("could not save the probe cache (%s): other processes probe these videos again", err)
        barrier(dist)
        cache.refresh()
    return probe_items(items, cache, _progress_bar(desc) if dist.is_main else None, exact)


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
    folder = os.fspath(run_dir / "tensorboard")
    try:
        folder.encode("utf-8")
    except UnicodeEncodeError:  # TensorBoard's writer encodes its path as UTF-8 and fails on other names
        log.warning(
            "no TensorBoard logs: %s is not a UTF-8 name, which TensorBoard cannot write to; "
            "metrics.csv has every epoch",
            printable(folder),
        )
        return None
    return SummaryWriter(folder)
