"""`stop-teach`: teach an exported STOP model new classes from a few example clips (a label bank; no PyTorch).

    stop-teach MODEL.onnx --bank BANK.json --label "opening a valve" VIDEO[@START-END]... [--no-text]
    stop-teach --bank BANK.json --list [--json]
    stop-teach --bank BANK.json --remove "opening a valve" [--example N]
    stop-teach MODEL.onnx --bank BANK.json --tune

Then `stop-recognize MODEL.onnx --bank BANK.json --source ...` (or the app) scores the bank's classes with the
model's own (or --labels).
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from pathlib import Path

from stop_train.atomic import exclusive, readable_output
from stop_train.errors import StopError

from .cli_args import in_range, settle_stdout, stdout_closed
from .runtime.files import check_writable, pair_lock

_TIME = r"(?:\d+:[0-5]?\d(?:\.\d*)?|\d+(?:\.\d*)?)"  # seconds, or m:ss with ss < 60
_RANGE = re.compile(rf"^(?P<start>{_TIME})?-(?P<end>{_TIME})?$")


def seconds(text: str) -> float:
    """'12.5', '1:05' or '1:02:03.5' -> seconds."""
    value = 0.0
    for part in text.split(":"):
        value = value * 60 + float(part)
    return value


def parse_clip(item: str) -> tuple[Path, float | None, float | None]:
    """VIDEO, VIDEO@START-END, VIDEO@START- or VIDEO@-END (seconds or m:ss) -> (path, start, end). A path that
    exists as given is a whole file, even with an @ in its name. Raises ValueError for a bad range."""
    path, at, tail = item.rpartition("@")
    if not at or Path(item).expanduser().exists():
        return Path(item).expanduser(), None, None
    m = _RANGE.match(tail.strip())
    if not m or not (m["start"] or m["end"]):
        raise ValueError(
            f"{item}: the time range must be START-END, START- or -END in seconds or m:ss, "
            f"e.g. {path}@12-15.5 or {path}@1:02-1:06"
        )
    start = seconds(m["start"]) if m["start"] else None
    end = seconds(m["end"]) if m["end"] else None
    if start is not None and end is not None and end <= start:
        raise ValueError(
            f"{item}: the range is empty (it ends where it starts)"
            if end == start
            else f"{item}: the range ends ({end:g} s) before it starts ({start:g} s)"
        )
    return Path(path).expanduser(), start, end


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="stop-teach",
        description="Teach an exported STOP model new classes from a few "
        "example clips: a label bank that stop-recognize --bank and stop-gui use.",
    )
    p.add_argument("model", nargs="?", help="exported .onnx file or TensorRT .engine (needed to add examples or tune)")
    p.add_argument(
        "clips",
        nargs="*",
        metavar="VIDEO[@START-END]",
        help="example clips: whole files, or time ranges in seconds or m:ss (clip.mp4@12-15.5)",
    )
    p.add_argument("--bank", required=True, type=Path, help="the bank: BANK.json + BANK.npz (created when absent)")
    p.add_argument("--label", help="the class the clips show (new, or one the bank has: examples are added)")
    p.add_argument(
        "--no-text",
        action="store_true",
        help="an example-only class: its name is not used as a text prompt (actions hard to name)",
    )
    p.add_argument("--list", action="store_true", help="list the bank's classes and examples")
    p.add_argument("--json", action="store_true", help="with --list: JSON on stdout")
    p.add_argument(
        "--remove", metavar="LABEL", action="append", help="remove a class (or, with --example N, one of its examples)"
    )
    p.add_argument(
        "--example", type=in_range(int, 1), metavar="N", help="with --remove: the example number --list shows"
    )
    p.add_argument(
        "--tune", action="store_true", help="choose alpha and beta leave-one-out (every class needs >= 2 examples)"
    )
    p.add_argument(
        "--alpha",
        type=in_range(float, 0, 1e4),
        help="set the weight of the examples (default chosen by benchmarks/few_shot_check.py)",
    )
    p.add_argument(
        "--beta", type=in_range(float, 0, 1e3, low_open=True), help="set the sharpness of the example affinity"
    )
    p.add_argument("--backend", default="auto", help="auto, cpu, cuda, openvino, tensorrt (ONNX Runtime)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for ONNX Runtime (0 = its default)")
    p.add_argument("--plugin", metavar="LIB", help="libstop_tpi_plugin.so for an engine built with the plugin")
    return p


def describe(bank) -> list[str]:
    """Human-readable lines: one per class, then one per example."""
    lines = [
        f"alpha {bank.alpha:g}, beta {bank.beta:g}"
        + (
            f" (tuned leave-one-out: {100 * bank.tuned['loo_top1']:.1f} % of {bank.tuned['examples']} examples)"
            if bank.tuned
            else ""
        )
    ]
    for cls in bank.classes:
        kind = f"text {cls.text!r}" if cls.text else "example-only"
        lines.append(f"{cls.name}: {len(cls.examples)} example{'' if len(cls.examples) == 1 else 's'}, {kind}")
        for i, ex in enumerate(cls.examples, 1):
            lines.append(f"  {i}. {ex.source} {ex.start_s:.2f}-{ex.end_s:.2f} s")
    return lines


def run(args, parser: argparse.ArgumentParser) -> int:
    from .runtime.bank import CLIP_SUFFIXES, BankError, LabelBank, check_bank_path, class_name

    adding = bool(args.label or args.clips)
    setting = args.alpha is not None or args.beta is not None
    if sum([adding, args.list, bool(args.remove)]) > 1:
        parser.error("give one of: --label with clips, --list, --remove")
    if args.remove and len(args.remove) > 1:
        parser.error("one --remove at a time (with --example N, the example number refers to that class)")
    args.remove = args.remove[0] if args.remove else None
    if args.example and not args.remove:
        parser.error("--example goes with --remove")
    if args.tune and (args.alpha is not None or args.beta is not None):
        parser.error("--tune chooses alpha and beta: give either --tune or --alpha/--beta")
    if args.json and not args.list:
        parser.error("--json goes with --list")
    if adding and not args.label:
        parser.error("name the class the clips show with --label")
    if args.model:  # a clip (maybe with a range) where the model goes
        try:
            clip = parse_clip(args.model)[0]
        except ValueError:
            clip = Path(args.model)
        if clip.suffix.lower() in CLIP_SUFFIXES:
            parser.error(f"{args.model} is a clip: give the model (.onnx or .engine) first, then the clips")
    if args.label and not args.clips:
        parser.error(f"give the clips that show {args.label!r} (VIDEO or VIDEO@START-END, after the model)")
    if not (adding or args.list or args.remove or args.tune or setting):
        parser.error("nothing to do: add clips with --label, or --list, --remove, --tune, --alpha/--beta")
    try:
        check_bank_path(args.bank)
        if args.label is not None:
            args.label = class_name(args.label)  # before any clip is embedded
    except BankError as err:
        parser.error(str(err))
    if args.list:
        bank = LabelBank.load(args.bank)
        if args.model:
            _check(bank, args)
        if args.json:
            print(json.dumps(bank.document(), indent=1))
        else:
            print("\n".join(describe(bank) if bank.classes else ["the bank has no classes"]))
        return 0
    if not (args.remove or (setting and not (adding or args.tune)) or args.model):
        parser.error("give the model (.onnx or .engine) the bank is for")
    check_writable(args.bank)  # before the clips are embedded
    # one stop-teach at a time changes a bank (load, change, save): another waits, and both changes are kept
    lock = pair_lock(args.bank)
    lock.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(lock, "", wait=f"waiting for another stop-teach to finish with {args.bank} (lock {lock})"):
        return _change(args, adding, setting)


def _change(args, adding: bool, setting: bool) -> int:
    """Remove, set alpha / beta, or add clips and tune: load the bank, change it, save it."""
    from .runtime.bank import DEFAULT_ALPHA, LabelBank

    if args.remove:
        bank = LabelBank.load(args.bank)
        if args.model:
            _check(bank, args)
        name = args.remove.strip()
        bank.remove(name, None if args.example is None else args.example - 1)
        bank.tuned = None  # tuned for the classes it had
        bank.save(args.bank)
        gone = args.example and bank.find(name) is None  # its last example, and it had no text
        print(
            f"removed {'example ' + str(args.example) + ' of ' if args.example else ''}{name!r}"
            f"{' (its last example: the example-only class is gone)' if gone else ''}; "
            f"the bank has {len(bank.classes)} class(es)"
        )
        return 0

    if setting and not (adding or args.tune):  # only alpha / beta: no model needed
        bank = LabelBank.load(args.bank)
        if args.model:
            _check(bank, args)
        _set_alpha_beta(bank, args)
        path = bank.save(args.bank)
        print(f"saved {path}: alpha {bank.alpha:g}, beta {bank.beta:g}")
        return 0

    from .runtime.backends import open_backend
    from .runtime.recognizer import Recognizer

    backend = open_backend(args.model, args.backend, args.threads, plugin=args.plugin)
    meta = backend.metadata
    bank = LabelBank.open(args.bank, meta, str(Path(args.model).resolve()), create=adding)
    taught = _teach(bank, backend, args) if adding else None
    changed = taught is not None or args.tune or setting
    if not changed:
        print(f"nothing new for {args.label!r}: {args.bank} is unchanged")
        return 0
    _set_alpha_beta(bank, args)
    tuned = bank.tune(meta.logit_scale, *_own_labels(Recognizer(backend))) if args.tune else None
    path = bank.save(args.bank)  # before anything is printed: a reader that went away must not cost the work
    rec = Recognizer(backend)
    rec.set_bank(bank)
    if taught:
        print(taught)
    if tuned:
        print(
            f"tuned leave-one-out: alpha {tuned['alpha']:g}, beta {tuned['beta']:g} "
            f"({100 * tuned['loo_top1']:.1f} % of {tuned['examples']} examples right by the example cache)"
        )
        if tuned["alpha"] > DEFAULT_ALPHA and not rec.bank_head_uses_means:
            print(
                f"note: alpha {tuned['alpha']:g} is above the default {DEFAULT_ALPHA:g}: the taught classes may take "
                "clips of the model's own classes too (the examples cannot show it); check with stop-recognize, "
                f"and --alpha {DEFAULT_ALPHA:g} goes back",
                file=sys.stderr,
            )
    print(f"saved {path}: {len(bank.classes)} class(es), {len(bank.example)} example(s)")
    for note in rec.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"with the model's own labels, scored by {rec.scoring}")
    if (tuned or setting) and rec.bank_head_uses_means:
        print(
            "note: alpha and beta only weigh the example cache, which scores the bank when a class has no clips "
            "behind it (labels of your own, --labels); here the model's class statistics score it",
            file=sys.stderr,
        )
    return 0


def _set_alpha_beta(bank, args) -> None:
    if args.alpha is not None:
        bank.alpha, bank.tuned = args.alpha, None
    if args.beta is not None:
        bank.beta, bank.tuned = args.beta, None


def _own_labels(rec):
    """The model's own labels and their text embeddings (competitors when tuning), or (None, None) for a model
    without labels or without a text encoder beside it."""
    from .runtime.errors import BackendError

    if not rec.meta.labels:
        return None, None
    try:
        return list(rec.meta.labels), rec.embed_labels(list(rec.meta.labels))
    except BackendError:
        return None, None


def _check(bank, args) -> None:
    from .runtime.backends import open_backend

    bank.check_model(open_backend(args.model, args.backend, args.threads, plugin=args.plugin).metadata, args.model)


def _teach(bank, backend, args) -> str | None:
    """Embed the clips and add them to class --label; returns what was taught, None when every clip was already
    there."""
    from stop_train.video.decode import VideoReadError, probe_exact

    from .runtime.bank import BankError, Example, embed_example, now
    from .runtime.errors import RecognizeError
    from .runtime.recognizer import Recognizer

    clips = [parse_clip(c) for c in args.clips]
    for path, _, _ in clips:
        if not path.is_file():
            raise FileNotFoundError(f"no video at {path}")
    k = bank.find(args.label)
    same = [
        n for n in [*bank.names, *backend.metadata.labels] if n != args.label and n.casefold() == args.label.casefold()
    ]
    if k is None and same:
        print(
            f"note: {args.label!r} is a new class; {same[0]!r} differs only in case (names are matched exactly)",
            file=sys.stderr,
        )
    if k is not None and args.no_text and bank.classes[k].text:
        raise BankError(
            f"{args.label!r} already has a text prompt ({bank.classes[k].text!r}): --no-text only makes a "
            f"new class example-only (stop-teach --bank {args.bank} --remove {shlex.quote(args.label)} "
            "first, to start it again without text)"
        )
    text, text_embedding = "", None
    if k is None and not args.no_text:
        rec = Recognizer(backend)
        text, text_embedding = rec.prompts([args.label])[0], rec.embed_labels([args.label])[0]
    embeddings, examples = [], []
    known = {(e.source, e.start_s, e.end_s) for c in bank.classes if c.name == args.label for e in c.examples}
    for i, (path, start, end) in enumerate(clips, 1):
        source = str(path.resolve())
        try:
            info = probe_exact(path)
        except (VideoReadError, OSError) as err:
            raise RecognizeError(f"cannot read {path}: {err}") from None
        lo = max(start or 0.0, float(info.times()[0]))
        hi = min(end if end is not None else float(info.times()[-1]), float(info.times()[-1]))
        if (source, round(lo, 3), round(hi, 3)) in known:
            print(
                f"  {path.name} {lo:.2f}-{hi:.2f} s is already an example of {args.label!r}: skipped", file=sys.stderr
            )
            continue
        embeddings.append(embed_example(backend, path, start, end, info))
        examples.append(Example(source, round(lo, 3), round(hi, 3), now()))
        known.add((source, round(lo, 3), round(hi, 3)))  # the same clip twice in one command, too
        print(f"  [{i}/{len(clips)}] {path.name} {lo:.2f}-{hi:.2f} s", file=sys.stderr, flush=True)
    if not examples and bank.find(args.label) is not None:
        return None
    bank.add_clips(args.label, embeddings, examples, text, text_embedding)
    bank.tuned = None
    cls = bank.classes[bank.find(args.label)]
    kind = "" if cls.text else ", example-only"
    if not cls.text and cls.name in backend.metadata.labels:
        kind = f", example-only in the bank (the model's own label {cls.name!r} keeps its text)"
    return f"{args.label!r}: {len(cls.examples)} example(s){kind}"


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_intermixed_args(argv)  # clips may follow --label
    readable_output()  # file names that are not UTF-8

    try:
        return run(args, parser)
    except (StopError, ValueError) as err:
        print(f"stop-teach: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return stdout_closed()
    except OSError as err:  # a bank that cannot be written, or a full standard output
        print(f"stop-teach: {err.filename + ': ' if err.filename else ''}{err.strerror or err}", file=sys.stderr)
        settle_stdout()
        return 2
    except KeyboardInterrupt:
        print("stop-teach: interrupted; the bank was not changed", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
