"""What each `stop-train` subcommand does, given its parsed arguments (the parsers are in `stop_train.cli`).
Imports of training code are inside the functions: the command's help and its errors for bad arguments need no
PyTorch."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

from .atomic import finite
from .config import flatten_overrides
from .engine.config import DATASET_FLAGS
from .errors import ConfigError
from .rundir import CONFIG_FILE, RunDir, locate

RUNS_ROOT = Path("runs")

# the data flags `stop-train eval` takes (default: the run's)
EVAL_DATA_FLAGS = (
    "task",
    "dataset",
    "data_root",
    "fold",
    "val_fraction",
    "template",
    *DATASET_FLAGS,
    "test_clips",
    "test_crops",
    "workers",
    "batch_size",
    "device",
    "probe_cache",
    "probe",
    "dual_softmax",
)


def _parse_value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_model_items(items: list[str]) -> dict:
    """`--model KEY=VALUE` items -> overrides by dotted field name (values are JSON, else strings);
    one field given twice with different values is a ValueError naming both."""
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--model takes KEY=VALUE, got {item!r}")
        pairs.append((key.strip(), _parse_value(value)))
    return flatten_overrides(pairs)


# flags a resumed run may change: where things are and how far to go, never what is trained
RESUME_FLAGS = ("resume", "max_steps", "workers", "device", "save_every", "probe_cache", "probe", "data_root")


def train(args: argparse.Namespace, parser: argparse.ArgumentParser, argv: list[str]) -> int:
    """`stop-train train`: a new run, or `--resume RUN` (argv: the words after `train`, to tell which flags
    were written)."""
    from .engine.config import TrainConfig
    from .engine.loop import Trainer
    from .engine.setup import new_run_config, read_run_config
    from .rundir import holds_run, locked, start_fresh

    args = {k: v for k, v in vars(args).items() if k != "command"}
    overwrite = args.pop("overwrite")
    cfg = TrainConfig.from_dict({**args, "model": parse_model_items(args.pop("model"))})
    if cfg.resume and overwrite:
        raise ConfigError("--resume continues a run; --overwrite starts one again: give one of them")
    main = int(os.environ.get("RANK", "0")) == 0  # torchrun: the first process holds the run's lock
    if cfg.resume:
        run_dir = Path(cfg.resume)
        saved, model_cfg = read_run_config(run_dir)
        given = _given_flags(parser, argv)
        changed = [f"--{k.replace('_', '-')}" for k in args if k in given and k not in RESUME_FLAGS]
        if cfg.model:
            changed.append("--model")
        if changed:
            raise ConfigError(
                f"--resume continues {run_dir} with the settings in its config.json; "
                f"{', '.join(changed)} would change the run (start a new run instead)"
            )
        cfg = dataclasses.replace(
            saved, **{k: getattr(cfg, k) for k in RESUME_FLAGS if k in ("resume", "max_steps") or k in given}
        )
        with locked(run_dir, main):
            trainer = Trainer(cfg, model_cfg, run_dir, start="resume")
            _resume(trainer, run_dir)
            return _fit(trainer, cfg, run_dir)
    cfg, model_cfg = new_run_config(cfg)
    stem = Path(cfg.preset).stem
    run_dir = Path(cfg.run_dir)
    if not cfg.run_dir:  # two runs started in one second: the second gets a name of its own
        base = RUNS_ROOT / f"{cfg.dataset}-{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
        run_dir = next(
            d
            for d in (base.with_name(f"{base.name}-{n}" if n > 1 else base.name) for n in range(1, 1000))
            if not holds_run(d)
        )
    with locked(run_dir, main):
        aside = start_fresh(run_dir, overwrite, main)
        if aside and main:
            print(f"--overwrite: the previous run in {run_dir} was moved to {aside}", file=sys.stderr)
        return _fit(Trainer(cfg, model_cfg, run_dir, start="new"), cfg, run_dir)


def _fit(trainer, cfg, run_dir: Path) -> int:
    """Train, then test the chosen checkpoint and write its class statistics; prints the result."""
    try:
        trainer.fit()
    except KeyboardInterrupt:
        if trainer.main:
            print(
                f"\ninterrupted: checkpoints/last holds epoch {trainer.state['epoch']} "
                f"(the epoch in progress is not saved); continue with stop-train --resume {run_dir}",
                file=sys.stderr,
            )
        return 130
    if cfg.max_steps and trainer.state["step"] >= cfg.max_steps:
        print(f"stopped after {trainer.state['step']} steps (--max-steps); continue with --resume {run_dir}")
        return 0
    chosen = trainer.chosen
    measure = "text->video R@1" if trainer.retrieval else "top-1"
    picked = (
        f"best val {measure} {trainer.state['best_score']:.3f} (epoch {trainer.state['best_epoch'] + 1})"
        if chosen == "best"
        else f"no validation: checkpoint 'last' (epoch {trainer.state['epoch']})"
    )
    split = _final_split(trainer)
    if split is None:
        if trainer.main:
            print(
                f"run {run_dir}: {picked}; no test split, so no test ran "
                f"(evaluate later: stop-train eval {run_dir} --split SPLIT)"
            )
        _statistics(trainer)
        return 0
    metrics = trainer.test(split)
    _statistics(trainer)
    if trainer.main and trainer.retrieval:
        print(
            f"run {run_dir}: {picked}; {split} ({metrics['videos']} videos, {metrics['captions']} captions): "
            f"text->video R@1 {metrics['t2v_R1']:.1f} R@5 {metrics['t2v_R5']:.1f} R@10 {metrics['t2v_R10']:.1f} "
            f"MdR {metrics['t2v_MdR']:g}; video->text R@1 {metrics['v2t_R1']:.1f}"
        )
    elif trainer.main:
        print(
            f"run {run_dir}: {picked}; {split} top-1 {metrics['top1']:.3f}, top-5 {metrics['top5']:.3f}, "
            f"mean class {metrics['mean_class_acc']:.3f}"
        )
    return 0


def _statistics(trainer, checkpoint: str | None = None) -> bool:
    """Write the chosen checkpoint's class statistics (what label banks teach new classes with); a run they cannot
    be made for (retrieval, one class) says why and goes on."""
    from .statistics import StatisticsError

    if trainer.retrieval:
        return False
    try:
        path, stats = trainer.write_statistics(checkpoint)
    except StatisticsError as err:
        if trainer.main:
            print(f"no class statistics: {err}", file=sys.stderr)
        return False
    if trainer.main:
        print(
            f"class statistics of {int(stats.count.sum())} training videos -> {path} (stop-export carries them: "
            "label banks teach new classes with them)"
        )
    return True


def _given_flags(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """Destinations of the options written on the command line (whatever their value)."""
    words = {w.split("=", 1)[0] for w in argv if w.startswith("--")}
    return {a.dest for a in parser._actions if words & set(a.option_strings)}


def _final_split(trainer) -> str | None:
    """The split a run reports: test, else an official validation split (Kinetics-400, SSv2 report there);
    never a hold-out of train, which chose the checkpoint."""
    if "test" in trainer.data.splits:
        return "test"
    if "val" in trainer.data.splits and not trainer.data.val_holdout:
        return "val"
    return None


def _resume(trainer, run_dir: Path) -> None:
    """Restore the newest readable checkpoint: last, else (a damaged file is named in one line) last.old (a crash
    between a save's renames), best or best.old (an earlier epoch)."""
    from .engine.checkpoint import STATE, WEIGHTS
    from .model.weights import CheckpointError

    folders = [RunDir(run_dir).checkpoints / name for name in ("last", "last.old", "best", "best.old")]
    problems = []
    for folder in (f for f in folders if (f / WEIGHTS).is_file() and (f / STATE).is_file()):
        try:
            trainer.restore(folder)
        except CheckpointError as err:
            problems.append(str(err))
            continue
        if problems and trainer.main:
            print(
                f"stop-train: {problems[0]}; resuming from {folder} instead (epoch {trainer.state['epoch']})",
                file=sys.stderr,
            )
        return
    if problems:
        raise CheckpointError("; ".join(problems) + ": no readable checkpoint to resume from")
    raise FileNotFoundError(f"{run_dir} has no checkpoint to resume from")


def evaluate(args: argparse.Namespace) -> int:
    """`stop-train eval`: a run's checkpoint, or a model folder, on one split; prints the metrics as JSON and
    says where they were written."""
    from .engine.loop import Trainer
    from .rundir import locked

    given = {k: getattr(args, k) for k in EVAL_DATA_FLAGS if getattr(args, k) is not None}
    cfg, model_cfg, run_dir, checkpoint = _eval_target(args, given)
    out = args.output or run_dir
    out.mkdir(parents=True, exist_ok=True)
    writes_run = out == run_dir and run_dir != checkpoint  # metrics into a run a stop-train may be writing
    tag = _metrics_tag(RunDir(run_dir), args.split, checkpoint, given) if writes_run else ""
    with locked(run_dir, int(os.environ.get("RANK", "0")) == 0) if writes_run else contextlib.nullcontext():
        trainer = Trainer(cfg, model_cfg, run_dir, start="eval", eval_split=args.split)
        metrics = trainer.test(args.split, checkpoint, out_dir=out, tag=tag)
    if trainer.main:
        kept = f" (the run's own {args.split}_metrics.json, of its chosen checkpoint with its settings, is kept)"
        print(f"wrote {out / f'{args.split}_metrics{tag}.json'}{kept if tag else ''}", file=sys.stderr)
        print(
            json.dumps(
                finite({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}), allow_nan=False
            )
        )
    return 0


def _eval_target(args: argparse.Namespace, given: dict):
    """(training config, model config, run directory or model folder, checkpoint) of what `stop-train eval`
    evaluates: a run (its settings, `given` over them), a checkpoint folder inside a run, or a model folder (the
    data from `given`). Raises ConfigError for a checkpoint the run lacks or a model folder without its data,
    FileNotFoundError for anything else."""
    from .config import ModelConfig
    from .engine.config import GENERATED_DATASETS, TrainConfig
    from .engine.setup import read_run_config

    target = args.target
    where = locate(target) if not RunDir.holds(target) else None
    if where is not None and where.run is not None and not args.checkpoint:
        target, args.checkpoint = where.run.path, where.checkpoint  # a checkpoint folder inside a run
    if RunDir.holds(target):
        run = RunDir(target)
        if args.checkpoint and run.checkpoint(args.checkpoint) is None:  # before the data is read
            found = ", ".join(run.checkpoint_names()) or "none"
            raise ConfigError(f"{target} has no checkpoint {args.checkpoint!r} (found: {found})")
        saved, model_cfg = read_run_config(target)
        return dataclasses.replace(saved, **given), model_cfg, target, args.checkpoint
    if where is None:
        raise FileNotFoundError(
            f"{target} is neither a run directory (config.json + checkpoints/) nor a model "
            "folder (model.safetensors + config.json)"
        )
    if "dataset" not in given or ("data_root" not in given and given["dataset"] not in GENERATED_DATASETS):
        raise ConfigError(f"{target} is a model folder: give the data with --dataset and --data-root")
    if args.checkpoint:
        raise ConfigError("--checkpoint names a checkpoint of a run; a model folder is one checkpoint")
    model_cfg = ModelConfig.from_dict(json.loads((where.folder / CONFIG_FILE).read_text(encoding="utf-8-sig")))
    return TrainConfig.from_dict({**given, "pretrained": "none"}), model_cfg, target, target


# eval flags that say how to compute, not what: the metrics are the run's own with any of them
HOW_FLAGS = ("workers", "batch_size", "device", "probe_cache", "probe")


def _metrics_tag(run: RunDir, split: str, checkpoint: str | None, given: dict) -> str:
    """'' when the run has no `<split>_metrics.json` yet, or for the run's own evaluation (its chosen checkpoint,
    its settings); else a tag that keeps the run's metrics file: '.last', '.eval-20261207-101500' (settings
    changed), or both."""
    if not (run.path / f"{split}_metrics.json").is_file():
        return ""
    parts = [checkpoint] if checkpoint and checkpoint != run.chosen() else []
    if set(given) - set(HOW_FLAGS):
        parts.append("eval-" + time.strftime("%Y%m%d-%H%M%S"))
    return "".join("." + p for p in parts)


def stats(args: argparse.Namespace) -> int:
    """`stop-train stats`: write a run checkpoint's class statistics; 1 when they cannot be made."""
    from .engine.loop import Trainer
    from .engine.setup import read_run_config
    from .rundir import locked

    if not RunDir.holds(args.run):
        raise FileNotFoundError(f"{args.run} is not a run directory (config.json + checkpoints/)")
    saved, model_cfg = read_run_config(args.run)
    if saved.task == "retrieval":
        raise ConfigError(f"{args.run} is a retrieval run: class statistics need classes")
    given = {
        k: v
        for k in ("data_root", "workers", "batch_size", "device", "probe_cache", "probe")
        if (v := getattr(args, k)) is not None
    }
    with locked(args.run, int(os.environ.get("RANK", "0")) == 0):  # it writes into the run's checkpoint
        trainer = Trainer(dataclasses.replace(saved, **given), model_cfg, args.run, start="eval", eval_split="train")
        return 0 if _statistics(trainer, args.checkpoint) else 1


def folds(args: argparse.Namespace) -> int:
    """`stop-train folds`: the mean of the runs' test metrics, as JSON."""
    from .engine.folds import average_folds

    print(json.dumps(finite(average_folds(args.runs, args.split)), indent=2, allow_nan=False))
    return 0


def convert(args: argparse.Namespace) -> int:
    """`stop-train convert`: a published STOP checkpoint -> a model folder."""
    from .model.convert import convert_checkpoint
    from .model.factory import save_model

    model = convert_checkpoint(args.checkpoint, frames=args.frames, text_prompts=args.text_prompts)
    folder = save_model(model, args.output)
    cfg = model.cfg
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(
        f"wrote {folder}: official mode, T={cfg.frames}, {cfg.prompt_generator} prompt generator, "
        f"ViT {cfg.vision.width}w/{cfg.vision.layers}L/{cfg.vision.patch_size}px @ {cfg.vision.image_size}, "
        f"{trainable:,} trainable parameters"
    )
    return 0


def check(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """`stop-train check`: how each video of a folder will be read."""
    from .video.survey import check as survey_check

    return survey_check(args, parser)
