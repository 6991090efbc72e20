"""`stop-search`: find moments in videos by text, with an exported STOP model (no PyTorch).

stop-search index MODEL.onnx VIDEO|FOLDER... -o INDEX [--stride 1.0] [--ann]
stop-search query INDEX "a person jumping into a pool" [--top 10] [--json] [--model MODEL.onnx] [--exact]
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
import time
from pathlib import Path

from stop_train.atomic import exclusive, finite, readable_output
from stop_train.data.types import VIDEO_EXTENSIONS
from stop_train.errors import StopError

from .cli_args import in_range, stdout_closed


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stop-search", description="Search videos by text with an exported STOP model.")
    sub = p.add_subparsers(dest="command", required=True)
    idx = sub.add_parser("index", help="embed videos in windows and write (or update) an index")
    idx.add_argument("model", help="exported .onnx file or TensorRT .engine (a retrieval model, or any STOP model)")
    idx.add_argument(
        "videos", nargs="+", help="video files, or folders searched recursively for " + " ".join(VIDEO_EXTENSIONS)
    )
    idx.add_argument(
        "-o",
        "--output",
        required=True,
        type=Path,
        help="the index: INDEX.json + INDEX.npz (updated in place "
        "when it exists: new and changed videos are embedded, unchanged ones kept)",
    )
    idx.add_argument(
        "--stride",
        type=in_range(float, 0, low_open=True),
        default=None,
        metavar="SECONDS",
        help="seconds between window starts (default: an existing index's; else 1, or half a window "
        "when windows are shorter than 2 s)",
    )
    idx.add_argument(
        "--frame-interval",
        type=in_range(float, 0, low_open=True),
        default=None,
        metavar="SECONDS",
        help="seconds between a window's frames (default: the model's, as trained)",
    )
    idx.add_argument("--batch", type=in_range(int, 1), default=8, help="windows per model call (default 8)")
    idx.add_argument(
        "--backend",
        default="auto",
        help="auto, cpu, cuda, openvino, tensorrt (ONNX Runtime), torch or torch-bf16 (a run directory)",
    )
    idx.add_argument("--threads", type=int, default=0, help="CPU threads for ONNX Runtime (0 = its default)")
    idx.add_argument("--plugin", metavar="LIB", help="libstop_tpi_plugin.so for an engine built with the plugin")
    idx.add_argument("--ann", action="store_true", help="also write an HNSW graph (FAISS) for approximate search")
    q = sub.add_parser("query", help="rank the indexed videos and moments for a text")
    q.add_argument("index", type=Path, help="INDEX (.json) written by stop-search index")
    q.add_argument("text", nargs="+", help="what to find, e.g. 'a person jumping into a pool'")
    q.add_argument("--top", type=in_range(int, 1), default=10, help="videos to list (default 10)")
    q.add_argument("--moments", type=in_range(int, 1), default=3, help="moments per video (default 3)")
    q.add_argument(
        "--model",
        help="model to embed the text with (default: the one the index was built with); it must be that model",
    )
    q.add_argument("--exact", action="store_true", help="exact search even when the index has an HNSW graph")
    q.add_argument(
        "--candidates",
        type=in_range(int, 1),
        default=None,
        metavar="N",
        help="windows the HNSW graph returns before videos are ranked (default max(1000, 50 x --top); "
        "more: higher recall, slower; see benchmarks/search_ann.py)",
    )
    q.add_argument("--json", action="store_true", help="one JSON object per video on stdout")
    idx.set_defaults(run=_index)  # each subcommand names what does it
    q.set_defaults(run=_query)
    return p


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _video_files(items: list[str]) -> list[Path]:
    """Files as given, folders expanded (sorted, hidden entries skipped); absolute, without duplicates."""
    found: list[Path] = []
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                found += [
                    Path(dirpath) / f
                    for f in sorted(filenames)
                    if not f.startswith(".") and f.lower().endswith(VIDEO_EXTENSIONS)
                ]
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"no video or folder at {item}")
    unique = dict.fromkeys(Path(os.path.abspath(p)) for p in found)
    return list(unique)


def _index(args) -> int:
    from .runtime.files import check_writable, pair_lock
    from .runtime.search import SearchIndexError

    if args.output.is_dir():
        raise SearchIndexError(
            f"-o {args.output} is a folder: give the index a file name, e.g. {args.output / 'index'}"
        )
    check_writable(args.output)  # before the videos are embedded
    videos = _video_files(args.videos)
    if not videos:
        raise FileNotFoundError("no video files found in " + ", ".join(args.videos))
    # one stop-search index at a time updates an index (load, embed, save): another waits, and both add their videos
    lock = pair_lock(args.output)
    lock.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(lock, "", wait=f"waiting for another stop-search index to finish with {args.output} (lock {lock})"):
        return _update(args, videos)


def _update(args, videos: list[Path]) -> int:
    """Embed the new and changed `videos` into the index (created when absent), saving every 20 videos (or a
    minute's work) and on Ctrl-C."""
    from .runtime.backends import open_backend
    from .runtime.search import SearchIndex, ann_path, build_ann

    backend = open_backend(args.model, args.backend, args.threads, plugin=args.plugin)
    index = _open_index(args, backend.metadata)
    windows = index.windows
    meta_path, _ = SearchIndex.paths(args.output)
    print(
        f"model {args.model} ({backend.name}): windows of {windows.frames} frames {windows.frame_interval_s:.3g} s apart "
        f"({windows.span_s:.3g} s), one every {windows.stride_s:.3g} s",
        file=sys.stderr,
    )
    gone = index.prune()
    for path in gone:
        print(f"removed {path}: the file is gone", file=sys.stderr)
    start = time.perf_counter()
    try:
        done, kept, failed = _embed_all(index, backend, videos, args)
    except KeyboardInterrupt as stop:
        index.save(args.output)
        print(
            f"interrupted: {stop.args[0] if stop.args else 0} videos saved to {meta_path}; run the same command to "
            "continue",
            file=sys.stderr,
        )
        return 130
    if not index.videos:
        print(f"stop-search index: no video could be read ({failed} unreadable): no index written", file=sys.stderr)
        return 1
    index.save(args.output)
    if (args.ann or ann_path(args.output).is_file()) and len(index.embedding):  # an existing graph is kept current
        print(f"HNSW graph: {build_ann(index, args.output)}", file=sys.stderr)
    print(
        f"{meta_path}: {plural(len(index.videos), 'video')}, {plural(len(index.embedding), 'window')} ({done} embedded, "
        f"{kept} unchanged, {failed} unreadable, {len(gone)} removed) in {time.perf_counter() - start:.0f} s"
    )
    return 0


def _open_index(args, meta):
    """The index at args.output, checked against the model and the window settings, or a new one. Raises
    SearchIndexError for a model without a fingerprint, another model, or other windows."""
    from .runtime.files import pair_exists
    from .runtime.search import SearchIndex, SearchIndexError, WindowCfg, default_stride

    if not meta.fingerprint:
        raise SearchIndexError(f"{args.model} was exported before models carried a fingerprint: re-export it")
    interval = args.frame_interval or meta.sampling.frame_interval_s
    index = SearchIndex.load(args.output) if pair_exists(args.output) else None
    stride = args.stride or (index.windows.stride_s if index else default_stride((meta.frames - 1) * interval))
    windows = WindowCfg(meta.frames, interval, stride)
    if index is None:
        return SearchIndex(meta.fingerprint, str(Path(args.model).resolve()), windows)
    index.check_model(meta, args.model, use="update it with that model, or write a new index (-o)")
    if index.windows != windows:
        raise SearchIndexError(
            f"{SearchIndex.paths(args.output)[0]} cuts windows as {index.windows}; these settings give {windows}: "
            "use the same --stride / --frame-interval, or write a new index"
        )
    return index


def _embed_all(index, backend, videos: list[Path], args) -> tuple[int, int, int]:
    """Embed every video not up to date into `index`, saving it every 20 videos or a minute; returns (embedded,
    unchanged, unreadable). A Ctrl-C is raised again as KeyboardInterrupt(embedded)."""
    from .runtime.errors import RecognizeError
    from .runtime.search import embed_video

    done = failed = kept = 0
    saved = time.perf_counter()
    try:
        for n, path in enumerate(videos, start=1):
            if index.up_to_date(path):
                kept += 1
                continue
            t0 = time.perf_counter()
            try:
                emb, begin, end, duration = embed_video(backend, path, index.windows, args.batch)
            except RecognizeError as err:
                print(f"[{n}/{len(videos)}] skipped {path}: {err}", file=sys.stderr)
                failed += 1
                continue
            index.replace(path, duration, emb, begin, end)
            done += 1
            print(
                f"[{n}/{len(videos)}] {path}: {plural(len(emb), 'window')} over {duration:.1f} s "
                f"({time.perf_counter() - t0:.1f} s)",
                file=sys.stderr,
                flush=True,
            )
            if done % 20 == 0 or time.perf_counter() - saved > 60:  # a crash loses at most 20 videos or a minute
                index.save(args.output)
                saved = time.perf_counter()
    except KeyboardInterrupt:
        raise KeyboardInterrupt(done) from None
    return done, kept, failed


def _query(args) -> int:
    from .runtime.errors import BackendError
    from .runtime.search import SearchIndex, SearchIndexError, ann_path, ann_scores, fmt_time, load_ann
    from .runtime.text import TextEncoder, text_encoder_beside

    index = SearchIndex.load(args.index)
    model = args.model or index.model
    if Path(model).is_dir():  # a run directory or model folder: its own text tower, by PyTorch
        from .runtime.backends import open_backend

        backend = open_backend(model, "torch")
        meta, encode = backend.metadata, backend.encode_text
    elif Path(model).is_file():
        try:
            encoder = TextEncoder(text_encoder_beside(model))
        except BackendError as err:
            raise SearchIndexError(f"{err}; give the model with --model") from None
        meta, encode = encoder.metadata, encoder.encode
    else:
        raise SearchIndexError(
            f"the model {'given' if args.model else 'the index was built with'} is not at {model}: give it with --model"
        )
    index.check_model(meta, model)
    text = " ".join(args.text).strip()
    if not text:
        raise SearchIndexError("the query is empty: say what to find, e.g. 'a person opening a valve'")
    query = encode([text])[0]
    scores = None
    if not args.exact and ann_path(args.index).is_file():
        scores = ann_scores(
            load_ann(args.index, index), index, query, windows=args.candidates or max(1000, 50 * args.top)
        )
    hits = index.search(query, args.top, args.moments, scores=scores)
    for rank, hit in enumerate(hits, start=1):
        if args.json:
            print(json.dumps(finite({"rank": rank, **hit}), allow_nan=False))
        else:
            where = ", ".join(f"{fmt_time(m['start'])}-{fmt_time(m['end'])} ({m['score']:.3f})" for m in hit["moments"])
            print(f"{rank:3d}. {hit['score']:.3f}  {hit['video']}  {where}")
    if not hits and not args.json:
        print("the index holds no videos")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    readable_output()  # file names that are not UTF-8

    try:
        return args.run(args)
    except (StopError, FileNotFoundError) as err:
        print(f"stop-search {args.command}: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return stdout_closed()
    except OSError as err:  # one line; an index that cannot be written leaves the one written before
        what = f"{err.filename}: " if err.filename else ""
        if args.command == "index":
            full = "the disk is full" if err.errno in (errno.ENOSPC, errno.EDQUOT) else err.strerror or str(err)
            print(
                f"stop-search index: cannot write {what}{full}; the index written before (if any) is unchanged",
                file=sys.stderr,
            )
        else:
            print(f"stop-search {args.command}: {what}{err.strerror or err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
