"""`stop-export` (ONNX export, with `--check`) and `stop-recognize` (run an exported model on a video,
a camera or a stream).

    stop-export RUN_DIR | MODEL_FOLDER | PRESET [-o model.onnx] [--labels FILE|SET] [--check]
    stop-recognize MODEL.onnx --source FILE|CAMERA_INDEX|RTSP_URL [--json] [--events out.jsonl]
                   [--protocol live|eval] [--backend auto|cpu|cuda|openvino|tensorrt|torch]
"""

from __future__ import annotations

import argparse
import errno
import logging
import sys
import time
from pathlib import Path

from stop_train.atomic import atomic_write_bytes, publish, readable_output, staging
from stop_train.errors import StopError
from stop_train.rundir import RunDir

from .cli_args import add_event_arguments, event_cfg, in_range, non_negative, settle_stdout, stdout_closed

log = logging.getLogger("stop_export")
TOKENIZER_FILE = "clip_bpe_simple_vocab_16e6.txt.gz"


def _export_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stop-export", description="Export a STOP model to ONNX.")
    p.add_argument("source", help="run directory, model folder (model.safetensors + config.json) or preset name")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="ONNX file (default: RUN/export/model.onnx, FOLDER/model.onnx, or ./PRESET.onnx)",
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


def _default_output(source: str) -> Path:
    path = Path(source)
    if RunDir.holds(path):
        return path / "export" / "model.onnx"
    if (path / "model.safetensors").is_file():
        return path / "model.onnx"
    return Path(f"{path.stem}.onnx")


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


def _export(argv: list[str] | None) -> int:
    args = _export_parser().parse_args(argv)
    readable_output()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("onnxscript", "onnx_ir", "torch.onnx"):  # the exporter's pass-by-pass chatter
        logging.getLogger(noisy).setLevel(logging.ERROR)
    if args.build_plugin:
        from .trt.plugin_build import PluginBuildError, build_plugin

        out_dir = Path(args.output).parent if args.output else Path("build") / "plugin"
        try:
            args.plugin = str(build_plugin(out_dir / "tpi-plugin", args.plugin_target, args.tensorrt_root))
        except PluginBuildError as err:
            print(f"stop-export: {err}", file=sys.stderr)
            return 2
        print(f"plugin: {args.plugin}")
    try:
        import onnx  # noqa: F401
        import torch  # noqa: F401
    except ImportError as err:
        print(f"stop-export needs PyTorch and onnx: pip install 'stop-toolkit[train,export]' ({err})", file=sys.stderr)
        return 2
    from stop_train.model.deploy import build_metadata, resolve_source

    out = args.output or _default_output(args.source)
    if out.suffix != ".onnx":
        print(f"stop-export: the output must end in .onnx, got {out}", file=sys.stderr)
        return 2
    try:
        src = resolve_source(
            args.source, labels=args.labels, template=args.template, checkpoint=args.checkpoint, task=args.task
        )
    except (StopError, FileNotFoundError, ValueError) as err:
        print(f"stop-export: {err}", file=sys.stderr)
        return 2
    text_name = tok_name = ""
    start = time.time()
    if args.no_text_encoder and src.task == "retrieval":
        print(
            "stop-export: a retrieval model needs its text encoder (queries are text): drop --no-text-encoder",
            file=sys.stderr,
        )
        return 2
    if not args.no_text_encoder:
        text_name, tok_name = out.stem + ".text.onnx", TOKENIZER_FILE
    stats, stats_name = _statistics(src, out)
    meta = build_metadata(src, text_encoder=text_name, tokenizer=tok_name, statistics=stats_name)
    what = (
        "retrieval (no labels: video embeddings for stop-search)"
        if src.task == "retrieval"
        else f"{len(src.labels)} labels"
    )
    print(
        f"exporting {src.description}: {meta.mode} mode, {what}, "
        f"input (B, {meta.frames}, {meta.size}, {meta.size}, 3) uint8 -> {out}",
        flush=True,
    )
    with staging(out.parent, out.name) as stage:  # every file first, then renamed in: a failure changes nothing
        _write_outputs(src, meta, stage, out.name, stats)
        publish(stage, out.parent, [n for n in (tok_name, stats_name, text_name, out.name) if n])
    print(f"done in {time.time() - start:.0f} s", flush=True)
    if args.check and not _check(src, out, args.check_clips, out.parent / text_name if text_name else None):
        return 1
    return _engines(args, out)


def _write_outputs(src, meta, stage: Path, name: str, stats) -> None:
    """The model, its text encoder and BPE file, and its class statistics, into the folder `stage`."""
    from .onnx.export import export_text, export_video

    export_video(src, stage / name, meta)
    if meta.text_encoder:
        from open_clip.tokenizer import default_bpe

        print(f"exporting the text encoder -> {meta.text_encoder}", flush=True)
        export_text(src.model, stage / meta.text_encoder, meta)
        atomic_write_bytes(stage / meta.tokenizer, Path(default_bpe()).read_bytes())
    if stats is not None:
        stats.fingerprint = meta.fingerprint
        stats.save(stage / meta.statistics)
        print(
            f"class statistics of {int(stats.count.sum())} training clips (teaching new classes from a few "
            f"examples) -> {meta.statistics}",
            flush=True,
        )


def _statistics(src, out: Path):
    """(the checkpoint's class statistics, their file name beside `out`), or (None, '') when it has none or they
    do not fit the model (a note says so)."""
    from stop_train.statistics import FrameStatistics, StatisticsError

    if src.statistics is None or src.task != "recognition":
        return None, ""
    try:
        stats = FrameStatistics.load(src.statistics)
    except StatisticsError as err:
        print(f"stop-export: note: exporting without class statistics: {err}", file=sys.stderr)
        return None, ""
    cfg = src.model.cfg
    from stop_train.model.factory import model_fingerprint

    if stats.fingerprint and stats.fingerprint != model_fingerprint(src.model):
        print(
            f"stop-export: note: exporting without class statistics: {src.statistics} belongs to other weights "
            f"(rewrite them with stop-train stats)",
            file=sys.stderr,
        )
        return None, ""
    if list(src.labels) != stats.labels:
        print(
            "stop-export: note: the labels exported are not the classes the statistics were made of "
            f"({', '.join(stats.labels[:6])}{', ...' if len(stats.labels) > 6 else ''}): label banks use the "
            "statistics only for labels with those names",
            file=sys.stderr,
        )
    if stats.dim != cfg.frames * cfg.embed_dim:
        print(
            f"stop-export: note: exporting without class statistics: {src.statistics} holds {stats.dim}-wide "
            f"features, the model gives {cfg.frames} x {cfg.embed_dim}",
            file=sys.stderr,
        )
        return None, ""
    return stats, out.stem + ".stats.npz"


def _engines(args, onnx_path: Path) -> int:
    """--engine / --fp16: TensorRT engines beside the ONNX file, each with its JSON sidecar."""
    wanted = [p for p, on in (("fp32", args.engine), ("fp16", args.fp16)) if on]
    if not wanted:
        return 0
    from .trt.builder import BuildOptions, EngineError, build_engine

    for precision in wanted:
        engine = onnx_path.with_name(f"{onnx_path.stem}-{precision}.engine")
        options = BuildOptions(
            fp16=precision == "fp16",
            plugin=args.plugin,
            min_batch=args.min_batch,
            opt_batch=args.opt_batch,
            max_batch=args.max_batch,
            workspace_mb=args.workspace,
            timing_cache=args.timing_cache,
        )
        print(f"building the {precision} TensorRT engine -> {engine}", flush=True)
        try:
            section = build_engine(onnx_path, engine, options)
        except EngineError as err:
            print(f"stop-export: {err}", file=sys.stderr)
            return 2
        print(
            f"  {section['flavour']} {section['version']}, TemporalPromptInsert: {section['implementation']}, "
            f"{section['build_seconds']} s",
            flush=True,
        )
    return 0


def _check(src, path: Path, count: int, text_path: Path | None = None) -> bool:
    import torch

    from stop_train.model.deploy import VideoClassifier, build_metadata, label_embeddings

    from .onnx.check import check_clips, compare
    from .runtime.backends import OrtBackend

    cfg = src.model.cfg
    clips = check_clips(cfg.frames, src.preprocess.size, count)
    module = VideoClassifier(src.model.eval(), label_embeddings(src), src.preprocess).eval()
    with torch.no_grad():
        outs = module(torch.from_numpy(clips))
    reference = {n: o.numpy() for n, o in zip(build_metadata(src).outputs, outs)}
    backend = OrtBackend(path, "cpu")
    actual = backend.run(clips)
    report = compare(reference, actual)
    if text_path is not None:  # the text encoder, on the label prompts (or captions for a retrieval model)
        from stop_train.labels import label_texts
        from stop_train.tolerances import relative_error

        from .runtime.text import TextEncoder

        texts = (
            label_texts(src.labels, src.template)
            if src.labels
            else ["a person jumping into a pool", "a red circle moving left", "cooking, with oil", "x"]
        )
        with torch.no_grad():
            expected = src.model.encode_text(src.model.tokenize(texts)).float().numpy()
        report.errors["text_embedding"] = relative_error(TextEncoder(text_path).encode(texts), expected)
    print(f"check: PyTorch vs ONNX Runtime (CPU) on {len(clips)} generated clips, batch {len(clips)}")
    for line in report.lines():
        print("  " + line)
    return report.ok


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
    p.add_argument("--top-k", type=in_range(int, 1), default=3)
    p.add_argument(
        "--predict-every",
        type=in_range(float, 0, low_open=True),
        default=0.5,
        metavar="SECONDS",
        help="live: seconds between predictions",
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
    return p


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
