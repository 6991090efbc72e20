"""`stop-export` (ONNX export, with `--check`) and `stop-recognize` (run an exported model on a video,
a camera or a stream).

    stop-export RUN_DIR | MODEL_FOLDER | PRESET [-o model.onnx] [--labels FILE|SET] [--check]
    stop-recognize MODEL.onnx --source FILE|CAMERA_INDEX|RTSP_URL [--json] [--events out.jsonl]
                   [--protocol live|eval] [--backend auto|cpu|cuda|openvino|tensorrt|torch|torch-bf16]
"""

from __future__ import annotations

import argparse
import errno
import logging
import sys
from pathlib import Path

from stop_train.atomic import readable_output
from stop_train.errors import StopError

from .cli_args import add_event_arguments, event_cfg, in_range, non_negative, settle_stdout, stdout_closed

log = logging.getLogger("stop_export")


def _export_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stop-export", description="Export a STOP model to ONNX.")
    p.add_argument("source", help="run directory, model folder (model.safetensors + config.json) or preset name")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="ONNX file (default: RUN/export/model.onnx for a run's chosen checkpoint, RUN/export/model-NAME.onnx "
        "for its checkpoint NAME, FOLDER/model.onnx for a model folder, ./PRESET.onnx for a preset)",
    )
    p.add_argument(
        "--labels",
        help="label file (one class key per line) or bundled set: ucf101, hmdb51, "
        "kinetics400, ssv2 (required when the source has none)",
    )
    p.add_argument("--template", help="prompt template, e.g. 'a video of a person {label}.'")
    p.add_argument(
        "--task",
        choices=("recognition", "retrieval"),
        default=None,
        help="retrieval: no labels and no logits, video embeddings for stop-search (default: the run's "
        "task; recognition for a model folder or preset)",
    )
    p.add_argument(
        "--checkpoint",
        default=None,
        help="checkpoint of a run directory (default: best, or last before any validation)",
    )
    p.add_argument("--no-text-encoder", action="store_true", help="skip the text encoder and tokenizer files")
    p.add_argument("--check", action="store_true", help="compare PyTorch and ONNX Runtime on generated clips")
    p.add_argument("--check-clips", type=int, default=6, help="clips for --check (default 6)")
    trt = p.add_argument_group("TensorRT (full TensorRT 10/11, or TensorRT for RTX from pip)")
    trt.add_argument("--engine", action="store_true", help="also build an FP32 TensorRT engine")
    trt.add_argument("--fp16", action="store_true", help="also build an FP16 TensorRT engine")
    trt.add_argument(
        "--plugin",
        metavar="LIB",
        help="libstop_tpi_plugin.so: TemporalPromptInsert runs as the plugin (default: its standard-op function body)",
    )
    trt.add_argument("--build-plugin", action="store_true", help="build the plugin library with CMake (then use it)")
    trt.add_argument(
        "--plugin-target",
        default="auto",
        choices=("auto", "jetson", "desktop", "hopper", "all"),
        help="CUDA architectures of the plugin build (auto: jetson on a Jetson, else desktop)",
    )
    trt.add_argument(
        "--tensorrt-root", help="TensorRT install with C++ headers (default: $TENSORRT_ROOT, JetPack paths)"
    )
    trt.add_argument("--min-batch", type=int, default=1)
    trt.add_argument("--opt-batch", type=int, default=1)
    trt.add_argument("--max-batch", type=int, default=8)
    trt.add_argument("--workspace", type=int, default=0, metavar="MB", help="builder workspace limit (0: default)")
    trt.add_argument("--timing-cache", metavar="FILE", help="TensorRT timing cache, reused across builds")
    return p


def export_main(argv: list[str] | None = None) -> int:
    try:
        return _export(argv)
    except OSError as err:  # each output is replaced in one rename (stop_train.atomic): what was there stays
        full = err.errno in (errno.ENOSPC, errno.EDQUOT)
        name = Path(err.filename) if err.filename else None
        if name is not None and ".staging-" in name.parent.name:  # written there first: name where it goes
            name = name.parent.parent / name.name
        print(
            f"stop-export: {f'{name}: ' if name else ''}"
            f"{'the disk is full' if full else err.strerror or err}; the files exported before are unchanged",
            file=sys.stderr,
        )
        return 2


def _say(text: str) -> None:
    print(text, flush=True)


def _note(text: str) -> None:
    print(f"stop-export: note: {text}", file=sys.stderr)


def _export(argv: list[str] | None) -> int:
    """Parse, then `stop_export.pipeline.export`; prints what it does. 1 when the check fails, 2 for an error."""
    args = _export_parser().parse_args(argv)
    readable_output()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("onnxscript", "onnx_ir", "torch.onnx"):  # the exporter's pass-by-pass chatter
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        import onnx  # noqa: F401
        import torch  # noqa: F401
    except ImportError as err:
        print(f"stop-export needs PyTorch and onnx: pip install 'stop-toolkit[train,export]' ({err})", file=sys.stderr)
        return 2
    from .pipeline import ExportOptions, export
    from .trt.builder import BuildOptions

    try:
        if args.build_plugin:
            args.plugin = str(_build_plugin(args))
        build = BuildOptions(
            plugin=args.plugin,
            min_batch=args.min_batch,
            opt_batch=args.opt_batch,
            max_batch=args.max_batch,
            workspace_mb=args.workspace,
            timing_cache=args.timing_cache,
        )
        options = ExportOptions(
            output=args.output,
            labels=args.labels,
            template=args.template,
            task=args.task,
            checkpoint=args.checkpoint,
            text_encoder=not args.no_text_encoder,
            check_clips=args.check_clips if args.check else 0,
            engines=tuple(p for p, on in (("fp32", args.engine), ("fp16", args.fp16)) if on),
            build=build,
        )
        result = export(args.source, options, say=_say, note=_note)
    except StopError as err:
        print(f"stop-export: {err}", file=sys.stderr)
        return 2
    return 1 if result.check is not None and not result.check.ok else 0


def _build_plugin(args) -> Path:
    from .trt.plugin_build import build_plugin

    out_dir = Path(args.output).parent if args.output else Path("build") / "plugin"
    plugin = build_plugin(out_dir / "tpi-plugin", args.plugin_target, args.tensorrt_root)
    print(f"plugin: {plugin}")
    return plugin


# ------------------------------------------------------------------------------------------ recognize
def _recognize_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stop-recognize", description="Recognise actions with an exported STOP model.")
    p.add_argument(
        "model",
        help="exported .onnx file, TensorRT .engine (with its .json sidecar), or a run directory / "
        "model folder with --backend torch",
    )
    p.add_argument(
        "--source",
        required=True,
        help="video file, camera index (0, 1, ...) or device (/dev/video0), or stream URL (rtsp://, http://); "
        "a file named like a number: ./7",
    )
    p.add_argument(
        "--protocol",
        choices=("live", "eval"),
        default="live",
        help="live: sliding windows over time; eval: the test views of the metadata (files only)",
    )
    p.add_argument(
        "--backend",
        default="auto",
        help="auto, cpu, cuda, openvino, tensorrt (ONNX Runtime), torch or torch-bf16 (PyTorch)",
    )
    p.add_argument("--threads", type=int, default=0, help="CPU threads for ONNX Runtime (0 = its default)")
    p.add_argument(
        "--plugin",
        metavar="LIB",
        help="libstop_tpi_plugin.so for an engine built with the plugin (default: $STOP_TPI_PLUGIN)",
    )
    p.add_argument("--labels", help="re-label: label file or bundled set (uses the exported text encoder)")
    p.add_argument(
        "--bank",
        type=Path,
        metavar="BANK.json",
        help="a label bank from stop-teach: its classes join the "
        "model's own (or --labels); a class in both gets the bank's examples",
    )
    _live_arguments(p)
    return p


def _live_arguments(p: argparse.ArgumentParser) -> None:
    """What is shown and when: top-k, the live windows, events, time limits and reconnects, the output."""
    p.add_argument("--top-k", type=in_range(int, 1), default=3)
    p.add_argument(
        "--predict-every",
        type=in_range(float, 0, low_open=True),
        default=0.5,
        metavar="SECONDS",
        help="live: seconds between predictions (default %(default)s)",
    )
    p.add_argument(
        "--frame-interval",
        type=in_range(float, 0, low_open=True),
        default=None,
        metavar="SECONDS",
        help="live: seconds between sampled frames (default: the metadata's, as trained)",
    )
    add_event_arguments(p)
    p.add_argument(
        "--max-seconds", type=non_negative(float), default=0.0, help="stop a live source after this long (0 = never)"
    )
    p.add_argument(
        "--reconnect",
        type=non_negative(int),
        default=None,
        metavar="N",
        help="reopen a lost camera or stream at most N times in a row, waiting 1, 2, 4 ... 16 s "
        "(0 = give up at once; default: retry indefinitely); giving up exits with code 3",
    )
    p.add_argument("--json", action="store_true", help="JSON lines on stdout instead of text")
    p.add_argument("--events", type=Path, help="append events to this JSON-lines file")


def recognize_main(argv: list[str] | None = None) -> int:
    parser = _recognize_parser()
    args = parser.parse_args(argv)
    readable_output()  # file names that are not UTF-8
    event_cfg(parser, args)  # --off <= --on, as a usage error
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from .recognize_cli import run_recognize

    try:
        return run_recognize(args)
    except StopError as err:  # RecognizeError (exit 2, 3 when a source gave up) and every other error of ours
        print(f"stop-recognize: {err}", file=sys.stderr)
        return err.exit_code
    except BrokenPipeError:
        return stdout_closed()
    except OSError as err:  # stdout or the events file cannot take more (a full disk)
        print(f"stop-recognize: {err.filename or 'cannot write the output'}: {err.strerror or err}", file=sys.stderr)
        settle_stdout()
        return 2
    except KeyboardInterrupt:
        return 130


def main(argv: list[str] | None = None) -> int:
    return export_main(argv)


if __name__ == "__main__":
    sys.exit(main())
