"""What `stop-export` does, as one library call: resolve the source, write the ONNX model with its text encoder,
tokenizer and class statistics (all renamed in together), check it against PyTorch, build TensorRT engines.

    from stop_export.pipeline import ExportOptions, export
    result = export("runs/ucf101-stop-b32-...", ExportOptions(check_clips=6, engines=("fp16",)))
    result.onnx, result.files, result.check.ok, result.engines

Export-time code: needs PyTorch and onnx (`pip install 'stop-toolkit[train,export]'`); the runtime never imports it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from stop_train.atomic import atomic_write_bytes, publish, staging
from stop_train.errors import ConfigError
from stop_train.model.deploy import ExportError
from stop_train.rundir import RunDir, locate

log = logging.getLogger("stop_export")
TOKENIZER_FILE = "clip_bpe_simple_vocab_16e6.txt.gz"
PRECISIONS = ("fp32", "fp16")


@dataclass(frozen=True)
class ExportOptions:
    """What to export and build. `output`: the ONNX file (None: `default_output(source)`); `labels`, `template`,
    `task`, `checkpoint`: as `stop_train.model.deploy.resolve_source` takes them; `check_clips`: generated clips
    PyTorch and ONNX Runtime are compared on (0: no check); `engines`: TensorRT precisions to build ("fp32",
    "fp16"), with `build` (a `stop_export.trt.builder.BuildOptions` without `fp16`, which each precision sets)."""

    output: Path | None = None
    labels: str | None = None
    template: str | None = None
    task: str | None = None
    checkpoint: str | None = None
    text_encoder: bool = True
    check_clips: int = 0
    engines: tuple[str, ...] = ()
    build: object | None = None


@dataclass
class ExportResult:
    """What `export` wrote. `files`: every file beside the model (model, text encoder, tokenizer, statistics);
    `check`: the comparison report (`.ok`, `.lines()`), None without a check; `engines`: (engine path, its
    sidecar section: flavour, version, implementation, build_seconds) per precision built."""

    onnx: Path
    metadata: object
    files: list[Path] = field(default_factory=list)
    check: object | None = None
    engines: list[tuple[Path, dict]] = field(default_factory=list)
    seconds: float = 0.0


def default_output(source: str | Path, checkpoint: str | None = None) -> Path:
    """Where the ONNX file goes by default: RUN/export/model.onnx for a run's chosen checkpoint,
    RUN/export/model-NAME.onnx for another (`checkpoint` NAME, or the run's checkpoint folder NAME given as the
    source: an export of `last` never replaces the chosen one's, which banks and indexes are tied to),
    FOLDER/model.onnx for a model folder, ./PRESET.onnx for a preset."""
    path = Path(source)
    if RunDir.holds(path):
        name = "model" if checkpoint in (None, RunDir(path).chosen()) else f"model-{checkpoint}"
        return path / "export" / f"{name}.onnx"
    where = locate(path)
    if where is not None and where.run is not None:  # never into the checkpoint folder itself
        return where.run.path / "export" / f"model-{where.checkpoint}.onnx"
    if where is not None:
        return path / "model.onnx"
    return Path(f"{path.stem}.onnx")


def export(
    source: str,
    options: ExportOptions = ExportOptions(),  # noqa: B008 (frozen)
    say: Callable[[str], None] = log.info,
    note: Callable[[str], None] = log.warning,
) -> ExportResult:
    """Export `source` (a run directory, a checkpoint folder in one, a model folder or a preset name): the ONNX
    model and the files beside it are written to a staging folder and renamed in together, so a failure leaves
    what was there. `say` gets progress lines, `note` what the user should know (exported without statistics, ...).

    Raises ExportError (a source that is none of those, an output not ending in .onnx, a retrieval model without
    its text encoder), EngineError / PluginBuildError from TensorRT, OSError from writing (nothing replaced)."""
    from stop_train.model.deploy import build_metadata, resolve_source

    out = Path(options.output) if options.output else default_output(source, options.checkpoint)
    if out.suffix != ".onnx":
        raise ExportError(f"the output must end in .onnx, got {out}")
    src = resolve_source(
        source, labels=options.labels, template=options.template, checkpoint=options.checkpoint, task=options.task
    )
    if not options.text_encoder and src.task == "retrieval":
        raise ExportError("a retrieval model needs its text encoder (queries are text): drop --no-text-encoder")
    start = time.time()
    text_name, tok_name = (out.stem + ".text.onnx", TOKENIZER_FILE) if options.text_encoder else ("", "")
    stats, stats_name = _statistics(src, out, note)
    meta = build_metadata(src, text_encoder=text_name, tokenizer=tok_name, statistics=stats_name)
    what = f"{len(src.labels)} labels" if src.task != "retrieval" else "retrieval (no labels: video embeddings)"
    say(
        f"exporting {src.description}: {meta.mode} mode, {what}, "
        f"input (B, {meta.frames}, {meta.size}, {meta.size}, 3) uint8 -> {out}"
    )
    names = [n for n in (tok_name, stats_name, text_name, out.name) if n]
    with staging(out.parent, out.name) as stage:  # every file first, then renamed in: a failure changes nothing
        _write_outputs(src, meta, stage, out.name, stats, say)
        publish(stage, out.parent, names)
    result = ExportResult(out, meta, [out.parent / n for n in names], seconds=time.time() - start)
    say(f"done in {result.seconds:.0f} s")
    if options.check_clips:
        result.check = check_export(src, out, options.check_clips, out.parent / text_name if text_name else None)
        n = options.check_clips
        say(f"check: PyTorch vs ONNX Runtime (CPU) on {n} generated clips, batch {n}")
        for line in result.check.lines():
            say("  " + line)
        if not result.check.ok:
            return result  # no engine from a model that does not match PyTorch
    for precision in options.engines:
        result.engines.append(build_engine_for(out, precision, options.build, say))
    return result


def build_engine_for(onnx_path: Path, precision: str, build, say: Callable[[str], None]) -> tuple[Path, dict]:
    """One TensorRT engine MODEL-PRECISION.engine beside the ONNX file, with its JSON sidecar; `build` a BuildOptions
    (None: the defaults). Raises EngineError, ValueError for an unknown precision."""
    from .trt.builder import BuildOptions, build_engine

    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    engine = onnx_path.with_name(f"{onnx_path.stem}-{precision}.engine")
    options = dataclasses.replace(build or BuildOptions(), fp16=precision == "fp16")
    say(f"building the {precision} TensorRT engine -> {engine}")
    section = build_engine(onnx_path, engine, options)
    say(
        f"  {section['flavour']} {section['version']}, TemporalPromptInsert: {section['implementation']}, "
        f"{section['build_seconds']} s"
    )
    return engine, section


def _write_outputs(src, meta, stage: Path, name: str, stats, say: Callable[[str], None]) -> None:
    """The model, its text encoder and BPE file, and its class statistics, into the folder `stage`."""
    from .onnx.export import export_text, export_video

    export_video(src, stage / name, meta)
    if meta.text_encoder:
        from open_clip.tokenizer import default_bpe

        say(f"exporting the text encoder -> {meta.text_encoder}")
        export_text(src.model, stage / meta.text_encoder, meta)
        atomic_write_bytes(stage / meta.tokenizer, Path(default_bpe()).read_bytes())
    if stats is not None:
        stats.fingerprint = meta.fingerprint
        stats.save(stage / meta.statistics)
        say(
            f"class statistics of {int(stats.count.sum())} training clips (teaching new classes from a few "
            f"examples) -> {meta.statistics}"
        )


def _statistics(src, out: Path, note: Callable[[str], None]):
    """(the checkpoint's class statistics, their file name beside `out`), or (None, '') when it has none or they
    do not fit the model (a note says so)."""
    from stop_train.model.factory import model_fingerprint
    from stop_train.statistics import FrameStatistics, StatisticsError

    if src.statistics is None or src.task != "recognition":
        return None, ""
    try:
        stats = FrameStatistics.load(src.statistics)
    except StatisticsError as err:
        note(f"exporting without class statistics: {err}")
        return None, ""
    cfg = src.model.cfg
    if stats.fingerprint and stats.fingerprint != model_fingerprint(src.model):
        note(
            f"exporting without class statistics: {src.statistics} belongs to other weights "
            "(rewrite them with stop-train stats)"
        )
        return None, ""
    if list(src.labels) != stats.labels:
        note(
            "the labels exported are not the classes the statistics were made of "
            f"({', '.join(stats.labels[:6])}{', ...' if len(stats.labels) > 6 else ''}): label banks use the "
            "statistics only for labels with those names"
        )
    if stats.dim != cfg.frames * cfg.embed_dim:
        note(
            f"exporting without class statistics: {src.statistics} holds {stats.dim}-wide "
            f"features, the model gives {cfg.frames} x {cfg.embed_dim}"
        )
        return None, ""
    return stats, out.stem + ".stats.npz"


def check_export(src, path: Path, count: int, text_path: Path | None = None):
    """PyTorch against ONNX Runtime (CPU) on `count` generated clips in one batch, and the text encoder on the
    label prompts (captions for a retrieval model); returns the comparison report (`.ok`, `.lines()`)."""
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
    report = compare(reference, OrtBackend(path, "cpu").run(clips))
    if text_path is not None:
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
    return report
