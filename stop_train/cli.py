"""`stop-train` command line.

    stop-train [train] --dataset ucf101 --data-root /data/UCF101 [--preset stop-b32] [...]
    stop-train eval RUN_DIR [--split test] [--checkpoint best] [--test-clips N] [--test-crops M]
    stop-train folds RUN_DIR [RUN_DIR ...]        # mean of the folds' test metrics
    stop-train convert CHECKPOINT OUT_DIR         # published STOP checkpoint -> model folder
    torchrun --nproc_per_node 4 -m stop_train.cli train ...   # several GPUs or nodes
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path

COMMANDS = ("train", "eval", "folds", "convert")
RUNS_ROOT = Path("runs")


def _parse_value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def _train_parser() -> argparse.ArgumentParser:
    from .engine.config import TrainConfig

    parser = argparse.ArgumentParser(prog="stop-train", description="Train STOP for action recognition.")
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if f.name == "model":
            parser.add_argument(flag, action="append", default=[], metavar="KEY=VALUE",
                                help="model config override, e.g. --model mode=official (repeatable)")
        elif isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        elif isinstance(default, tuple):
            parser.add_argument(flag, type=lambda s: tuple(float(v) for v in s.split(",")), default=default,
                                help=f"comma-separated (default {','.join(map(str, default))})")
        else:
            parser.add_argument(flag, type=type(default), default=default, help=f"(default {default!r})")
    return parser


def _train(argv: list[str]) -> int:
    from .engine.config import TrainConfig
    from .engine.loop import Trainer

    args = vars(_train_parser().parse_args(argv))
    overrides = {}
    for item in args.pop("model"):
        if "=" not in item:
            raise ValueError(f"--model takes KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        overrides[key] = _parse_value(value)
    cfg = TrainConfig.from_dict({**args, "model": overrides})
    if cfg.resume:
        run_dir = Path(cfg.resume)
        saved = run_dir / "config.json"
        if not saved.is_file():
            raise FileNotFoundError(f"{run_dir} is not a run directory (no config.json)")
        cfg = TrainConfig.from_dict({**json.loads(saved.read_text())["train"], "resume": str(run_dir),
                                     "max_steps": cfg.max_steps, "workers": cfg.workers})
    else:
        run_dir = Path(cfg.run_dir) if cfg.run_dir else RUNS_ROOT / f"{cfg.dataset}-{Path(cfg.preset).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    trainer = Trainer(cfg, run_dir)
    if cfg.resume:
        trainer.restore(_last_checkpoint(run_dir))
    trainer.fit()
    if cfg.max_steps and trainer.state["step"] >= cfg.max_steps:
        print(f"stopped after {trainer.state['step']} steps (--max-steps); continue with --resume {run_dir}")
        return 0
    metrics = trainer.test("test" if "test" in trainer.data.splits else "val")
    if trainer.main:
        print(f"run {run_dir}: best val top-1 {trainer.state['best_top1']:.3f} (epoch {trainer.state['best_epoch'] + 1}); "
              f"test top-1 {metrics['top1']:.3f}, top-5 {metrics['top5']:.3f}, mean class {metrics['mean_class_acc']:.3f}")
    return 0


def _last_checkpoint(run_dir: Path) -> Path:
    folder = run_dir / "checkpoints" / "last"
    for candidate in (folder, folder.with_name("last.old")):  # .old: a crash between the two renames
        if (candidate / "trainer_state.pt").is_file():
            return candidate
    raise FileNotFoundError(f"{run_dir} has no checkpoint to resume from")


def _eval(argv: list[str]) -> int:
    from .engine.config import TrainConfig
    from .engine.loop import Trainer

    parser = argparse.ArgumentParser(prog="stop-train eval", description="Evaluate a run's checkpoint on a split.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--split", choices=("train", "val", "test"), default="test")
    parser.add_argument("--checkpoint", default="best", help="checkpoint folder name (best, last)")
    parser.add_argument("--test-clips", type=int, default=None)
    parser.add_argument("--test-crops", type=int, choices=(1, 3), default=None)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)
    saved = args.run_dir / "config.json"
    if not saved.is_file():
        raise FileNotFoundError(f"{args.run_dir} is not a run directory (no config.json)")
    data = json.loads(saved.read_text())["train"]
    for key in ("test_clips", "test_crops", "workers"):
        if getattr(args, key) is not None:
            data[key] = getattr(args, key)
    data["pretrained"] = "none"  # the checkpoint holds every weight
    trainer = Trainer(TrainConfig.from_dict(data), args.run_dir)
    metrics = trainer.test(args.split, args.checkpoint)
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}))
    return 0


def _folds(argv: list[str]) -> int:
    from .engine.folds import average_folds

    parser = argparse.ArgumentParser(prog="stop-train folds", description="Average test metrics over runs (folds).")
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--split", default="test")
    args = parser.parse_args(argv)
    print(json.dumps(average_folds(args.runs, args.split), indent=2))
    return 0


def _convert(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="stop-train convert",
        description="Convert a checkpoint of the published STOP code into a model folder "
        "(model.safetensors + config.json, official mode).",
    )
    parser.add_argument("checkpoint", help="published checkpoint (.pth/.bin via torch.load(weights_only=True), or .safetensors)")
    parser.add_argument("output", help="folder to write")
    parser.add_argument("--frames", type=int, default=None,
                        help="frames T the checkpoint was trained with (required for the linear prompt generator)")
    parser.add_argument("--text-prompts", type=int, default=8, help="published text_prompt_length (default 8)")
    args = parser.parse_args(argv)
    from .model.convert import convert_checkpoint
    from .model.factory import save_model

    model = convert_checkpoint(args.checkpoint, frames=args.frames, text_prompts=args.text_prompts)
    folder = save_model(model, args.output)
    cfg = model.cfg
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"wrote {folder}: official mode, T={cfg.frames}, {cfg.prompt_generator} prompt generator, "
          f"ViT {cfg.vision.width}w/{cfg.vision.layers}L/{cfg.vision.patch_size}px @ {cfg.vision.image_size}, "
          f"{trainable:,} trainable parameters")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    command = argv[0] if argv and argv[0] in COMMANDS else "train"
    rest = argv[1:] if argv and argv[0] in COMMANDS else argv
    run = {"train": _train, "eval": _eval, "folds": _folds, "convert": _convert}[command]
    try:
        return run(rest)
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        print(f"stop-train {command}: error: {err}", file=sys.stderr)
        return 1
    finally:
        if command in ("train", "eval"):
            from .engine.distributed import finalize

            finalize()


if __name__ == "__main__":
    sys.exit(main())
