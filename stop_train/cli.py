"""`stop-train` command line: one argparse subparser per subcommand; `stop_train.commands` carries them out.

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
import dataclasses
import logging
import sys
from pathlib import Path

from . import commands
from .atomic import readable_output
from .errors import StopError

_HELP = ("-h", "--help")


def _count(low: int):
    """An argparse type: an int of at least `low`."""

    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    return parse


def _train_args(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, with its default; --model KEY=VALUE for the model config."""
    from .engine.config import TrainConfig

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
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="start a new run in a --run-dir that holds one (the old run is moved to RUN_DIR.replaced-TIME)",
    )


def _eval_args(parser: argparse.ArgumentParser) -> None:
    from .engine.config import TrainConfig

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
    for name in commands.EVAL_DATA_FLAGS:
        default = getattr(defaults, name)
        flag = "--" + name.replace("_", "-")
        if isinstance(default, bool) or default is None:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        else:
            parser.add_argument(flag, type=type(default), default=None, help=f"(default: the run's, else {default!r})")


def _stats_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="run directory")
    parser.add_argument("--checkpoint", default=None, help="best, last (default: the run's chosen one)")
    for flag, kind in (
        ("--data-root", str),
        ("--workers", _count(0)),
        ("--batch-size", _count(1)),
        ("--device", str),
        ("--probe-cache", str),
        ("--probe", str),
    ):
        parser.add_argument(flag, type=kind, default=None, help="(default: the run's)")


def _convert_args(parser: argparse.ArgumentParser) -> None:
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


def parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """`stop-train`'s parser and its subcommands' parsers, by name."""
    top = argparse.ArgumentParser(
        prog="stop-train",
        description="Train STOP for action recognition (class labels) or text-video retrieval (captions: --task "
        "retrieval), and evaluate, convert and check what training reads. Without a subcommand: train.",
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}")
    for name, (add, _, text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        add(p)
    return top, dict(sub.choices)


def _folds_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--split", default="test")


def _check_args(parser: argparse.ArgumentParser) -> None:
    from .video.survey import add_arguments

    add_arguments(parser, commands.RUNS_ROOT)


# name -> (adds its arguments to its parser, does it: handler(args, its parser, the words after the name), help)
SUBCOMMANDS = {
    "train": (_train_args, commands.train, "train a new run, or continue one (--resume RUN)"),
    "eval": (_eval_args, lambda args, *_: commands.evaluate(args), "evaluate a run's checkpoint, or a model folder, "
             "on a split (a model folder needs --dataset and --data-root; a run brings its data settings)"),
    "stats": (_stats_args, lambda args, *_: commands.stats(args), "write a run checkpoint's class statistics (its "
              "frame embeddings over the training videos), which label banks teach new classes with; runs of this "
              "version write them at the end"),
    "folds": (_folds_args, lambda args, *_: commands.folds(args), "average test metrics over runs (folds)"),
    "convert": (_convert_args, lambda args, *_: commands.convert(args), "convert a checkpoint of the published STOP "
                "code into a model folder (model.safetensors + config.json, official mode)"),
    "check": (_check_args, lambda args, parser, _: commands.check(args, parser), "how each video of a folder will "
              "be read: exactly, by decoding, or not at all"),
}  # fmt: skip
COMMANDS = tuple(SUBCOMMANDS)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    readable_output()  # file names that are not UTF-8
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not argv or (argv[0] not in COMMANDS and argv[0] not in _HELP):
        argv.insert(0, "train")  # the default subcommand
    top, parsers = parser()
    args = top.parse_args(argv)
    command = args.command
    try:
        return SUBCOMMANDS[command][1](args, parsers[command], argv[1:])
    except ModuleNotFoundError as err:
        if err.name and err.name.split(".")[0] in ("torch", "torchvision", "open_clip", "safetensors", "tqdm"):
            print(
                f"stop-train: needs the training extra ({err.name} is not installed): "
                "pip install 'stop-toolkit[train]'",
                file=sys.stderr,
            )
            return 2
        raise
    except (StopError, OSError) as err:  # ours, and the system's (a full disk, a permission): one line each
        print(f"stop-train {command}: error: {err}", file=sys.stderr)
        return 1
    except RuntimeError as err:  # PyTorch's own: out of memory is the user's to fix; anything else is a bug
        if type(err).__name__ != "OutOfMemoryError":
            raise
        print(
            f"stop-train {command}: error: the device ran out of memory ({str(err).splitlines()[0]}); "
            "lower --batch-size",
            file=sys.stderr,
        )
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
