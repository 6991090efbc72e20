"""`stop-train` command line.

stop-train [train] --dataset ucf101 --data-root /data/UCF101 [--preset stop-b32] [...]
stop-train eval RUN_DIR [--split test] [--checkpoint best] [--test-clips N] [--test-crops M]
stop-train eval MODEL_DIR --dataset ucf101 --data-root /data/UCF101 [--fold 1]   # converted checkpoints
stop-train folds RUN_DIR [RUN_DIR ...]        # mean of the folds' test metrics
stop-train stats RUN_DIR [--checkpoint best]  # class statistics for label banks (new runs write them)
stop-train convert CHECKPOINT OUT_DIR         # published STOP checkpoint -> model folder
stop-train check FOLDER                       # how each video will be read: exactly, by decoding, unreadable
torchrun --nproc_per_node 4 -m stop_train.cli train ...   # several GPUs or nodes
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import sys
import time
from pathlib import Path

from .atomic import finite, readable_output
from .errors import StopError
from .rundir import CONFIG_FILE, RunDir, locate

COMMANDS = ("train", "eval", "stats", "folds", "convert", "check")
RUNS_ROOT = Path("runs")


def _parse_value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def _train_parser() -> argparse.ArgumentParser:
    from .engine.config import TrainConfig

    parser = argparse.ArgumentParser(
        prog="stop-train",
        description="Train STOP for action recognition "
        "(class labels) or text-video retrieval (captions: --task retrieval).",
    )
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if f.name == "model":
            parser.add_argument(
                flag,
                action="append",
                default=[],
                metavar="KEY=VALUE",
                help="model config field, e.g. --model mode=official --model vision.image_size=288 "
                "(repeatable; applied once over the preset)",
            )
        elif isinstance(default, bool) or default is None:  # None: a yes/no whose default depends on the data
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        elif isinstance(default, tuple):
            parser.add_argument(
                flag,
                type=lambda s: tuple(float(v) for v in s.split(",")),
                default=default,
                help=f"comma-separated (default {','.join(map(str, default))})",
            )
        else:
            parser.add_argument(flag, type=type(default), default=default, help=f"(default {default!r})")
    return parser


def parse_model_items(items: list[str]) -> dict:
    """`--model KEY=VALUE` items -> overrides by dotted field name (values are JSON, else strings);
    one field given twice with different values is a ValueError naming both."""
    from .config import flatten_overrides

    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--model takes KEY=VALUE, got {item!r}")
        pairs.append((key.strip(), _parse_value(value)))
    return flatten_overrides(pairs)


# flags a resumed run may change: where things are and how far to go, never what is trained
RESUME_FLAGS = ("resume", "max_steps", "workers", "device", "save_every", "probe_cache", "probe", "data_root")


def _train(argv: list[str]) -> int:
    from .engine.config import TrainConfig
    from .engine.loop import Trainer
    from .engine.setup import new_run_config, read_run_config
    from .rundir import holds_run, locked, start_fresh

    parser = _train_parser()
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="start a new run in a --run-dir that holds one (the old run is moved to RUN_DIR.replaced-TIME)",
    )
    args = vars(parser.parse_args(argv))
    overwrite = args.pop("overwrite")
    cfg = TrainConfig.from_dict({**args, "model": parse_model_items(args.pop("model"))})
    if cfg.resume and overwrite:
        raise ValueError("--resume continues a run; --overwrite starts one again: give one of them")
    main = int(os.environ.get("RANK", "0")) == 0  # torchrun: the first process holds the run's lock
    if cfg.resume:
        run_dir = Path(cfg.resume)
        saved, model_cfg = read_run_config(run_dir)
        given = _given_flags(parser, argv)
        changed = [f"--{k.replace('_', '-')}" for k in args if k in given and k not in RESUME_FLAGS]
        if cfg.model:
            changed.append("--model")
        if changed:
            raise ValueError(
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


def _eval(argv: list[str]) -> int:
    from .engine.config import TrainConfig
    from .engine.loop import Trainer
    from .engine.setup import DATASET_FLAGS, GENERATED, read_run_config
    from .rundir import locked

    parser = argparse.ArgumentParser(
        prog="stop-train eval",
        description="Evaluate a run's checkpoint, or a model folder (converted or saved checkpoint), on a split. "
        "A run brings its data settings; a model folder needs --dataset and --data-root.",
    )
    parser.add_argument("target", type=Path, help="run directory, or model folder (model.safetensors + config.json)")
    parser.add_argument("--split", choices=("train", "val", "test"), default="test")
    parser.add_argument(
        "--checkpoint", default=None, help="checkpoint of a run (best, last; default: the run's chosen one)"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="folder for <split>_metrics.json (default: the run, or the model folder)",
    )
    defaults = TrainConfig()
    data_flags = (
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
    for name in data_flags:
        default = getattr(defaults, name)
        flag = "--" + name.replace("_", "-")
        if isinstance(default, bool) or default is None:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        else:
            parser.add_argument(flag, type=type(default), default=None, help=f"(default: the run's, else {default!r})")
    args = parser.parse_args(argv)
    given = {k: getattr(args, k) for k in data_flags if getattr(args, k) is not None}
    target = args.target
    where = locate(target) if not RunDir.holds(target) else None
    if where is not None and where.run is not None and not args.checkpoint:
        target, args.checkpoint = where.run.path, where.checkpoint  # a checkpoint folder inside a run
    if RunDir.holds(target):  # a run
        saved, model_cfg = read_run_config(target)
        cfg = dataclasses.replace(saved, **given)
        run_dir, checkpoint, out = target, args.checkpoint, args.output or target
    elif where is not None:  # a model folder
        from .config import ModelConfig

        if "dataset" not in given or ("data_root" not in given and given["dataset"] not in GENERATED):
            raise ValueError(f"{target} is a model folder: give the data with --dataset and --data-root")
        if args.checkpoint:
            raise ValueError("--checkpoint names a checkpoint of a run; a model folder is one checkpoint")
        model_cfg = ModelConfig.from_dict(json.loads((where.folder / CONFIG_FILE).read_text(encoding="utf-8-sig")))
        cfg = TrainConfig.from_dict({**given, "pretrained": "none"})
        run_dir, checkpoint, out = target, target, args.output or target
    else:
        raise FileNotFoundError(
            f"{target} is neither a run directory (config.json + checkpoints/) nor a model "
            "folder (model.safetensors + config.json)"
        )
    out.mkdir(parents=True, exist_ok=True)
    writes_run = out == run_dir and run_dir != checkpoint  # metrics into a run a stop-train may be writing
    with locked(run_dir, int(os.environ.get("RANK", "0")) == 0) if writes_run else contextlib.nullcontext():
        trainer = Trainer(cfg, model_cfg, run_dir, start="eval", eval_split=args.split)
        metrics = trainer.test(args.split, checkpoint, out_dir=out)
    if trainer.main:
        print(
            json.dumps(
                finite({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}), allow_nan=False
            )
        )
    return 0


def _stats(argv: list[str]) -> int:
    from .engine.loop import Trainer
    from .engine.setup import read_run_config
    from .rundir import locked

    parser = argparse.ArgumentParser(
        prog="stop-train stats",
        description="Write a run checkpoint's class statistics (its frame embeddings over the training videos), which "
        "stop-export carries so that label banks can teach the model new classes from a few examples. "
        "Runs trained with this version write them at the end; this is for older runs.",
    )
    parser.add_argument("run", type=Path, help="run directory")
    parser.add_argument("--checkpoint", default=None, help="best, last (default: the run's chosen one)")

    def count(low: int):
        def parse(text: str) -> int:
            value = int(text)
            if value < low:
                raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
            return value

        return parse

    for flag, kind in (
        ("--data-root", str),
        ("--workers", count(0)),
        ("--batch-size", count(1)),
        ("--device", str),
        ("--probe-cache", str),
        ("--probe", str),
    ):
        parser.add_argument(flag, type=kind, default=None, help="(default: the run's)")
    args = parser.parse_args(argv)
    if not RunDir.holds(args.run):
        raise FileNotFoundError(f"{args.run} is not a run directory (config.json + checkpoints/)")
    saved, model_cfg = read_run_config(args.run)
    if saved.task == "retrieval":
        raise ValueError(f"{args.run} is a retrieval run: class statistics need classes")
    given = {
        k: v
        for k in ("data_root", "workers", "batch_size", "device", "probe_cache", "probe")
        if (v := getattr(args, k)) is not None
    }
    with locked(args.run, int(os.environ.get("RANK", "0")) == 0):  # it writes into the run's checkpoint
        trainer = Trainer(dataclasses.replace(saved, **given), model_cfg, args.run, start="eval", eval_split="train")
        return 0 if _statistics(trainer, args.checkpoint) else 1


def _folds(argv: list[str]) -> int:
    from .engine.folds import average_folds

    parser = argparse.ArgumentParser(prog="stop-train folds", description="Average test metrics over runs (folds).")
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--split", default="test")
    args = parser.parse_args(argv)
    print(json.dumps(finite(average_folds(args.runs, args.split)), indent=2, allow_nan=False))
    return 0


def _convert(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="stop-train convert",
        description="Convert a checkpoint of the published STOP code into a model folder "
        "(model.safetensors + config.json, official mode).",
    )
    parser.add_argument(
        "checkpoint", help="published checkpoint (.pth/.bin via torch.load(weights_only=True), or .safetensors)"
    )
    parser.add_argument("output", help="folder to write")
    parser.add_argument(
        "--frames",
        type=int,
        default=None,
        help="frames T the checkpoint was trained with (required for the linear prompt generator)",
    )
    parser.add_argument("--text-prompts", type=int, default=8, help="published text_prompt_length (default 8)")
    args = parser.parse_args(argv)
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


def _check(argv: list[str]) -> int:
    from .video.survey import main as check_main

    return check_main(argv, RUNS_ROOT)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    readable_output()  # file names that are not UTF-8
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    command = argv[0] if argv and argv[0] in COMMANDS else "train"
    rest = argv[1:] if argv and argv[0] in COMMANDS else argv
    run = {"train": _train, "eval": _eval, "stats": _stats, "folds": _folds, "convert": _convert, "check": _check}[
        command
    ]
    try:
        return run(rest)
    except ModuleNotFoundError as err:
        if err.name and err.name.split(".")[0] in ("torch", "torchvision", "open_clip", "safetensors", "tqdm"):
            print(
                f"stop-train: needs the training extra ({err.name} is not installed): "
                "pip install 'stop-toolkit[train]'",
                file=sys.stderr,
            )
            return 2
        raise
    except (StopError, OSError, ValueError, KeyError, RuntimeError) as err:  # StopError: ours, one line
        print(f"stop-train {command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # before training started (indexing, probing): what was probed is in the probe cache
        print(
            f"\nstop-train {command}: interrupted before training started; videos probed so far are kept in the "
            "probe cache, so running the same command again goes on from there",
            file=sys.stderr,
        )
        return 130
    finally:
        if command in ("train", "eval", "stats"):
            try:
                from .engine.distributed import finalize
            except ImportError:  # the training extra is missing: nothing was started
                pass
            else:
                finalize()


if __name__ == "__main__":
    sys.exit(main())
