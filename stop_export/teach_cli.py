"""`stop-teach`: teach an exported STOP model new classes from a few example clips (a label bank; no PyTorch).

    stop-teach add MODEL.onnx --bank BANK.json --label "opening a valve" VIDEO[@START-END]... [--no-text] [--tune]
    stop-teach list --bank BANK.json [--json]
    stop-teach remove "opening a valve" --bank BANK.json [--example N]
    stop-teach tune MODEL.onnx --bank BANK.json       (or: stop-teach tune --bank BANK.json --alpha A --beta B)

Then `stop-recognize MODEL.onnx --bank BANK.json --source ...` (or the app) scores the bank's classes with the
model's own (or --labels).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from stop_train.atomic import exclusive, readable_output
from stop_train.errors import StopError

from .cli_args import in_range, parse_clip, settle_stdout, stdout_closed
from .runtime.files import check_writable, pair_lock

_BACKEND_HELP = "auto, cpu, cuda, openvino, tensorrt (ONNX Runtime), torch or torch-bf16 (a run directory)"


def _backend_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", default="auto", help=_BACKEND_HELP)
    p.add_argument("--threads", type=int, default=0, help="CPU threads for ONNX Runtime (0 = its default)")
    p.add_argument("--plugin", metavar="LIB", help="libstop_tpi_plugin.so for an engine built with the plugin")


def _bank_arg(p: argparse.ArgumentParser, creates: bool = False) -> None:
    made = " (created when absent)" if creates else ""
    p.add_argument("--bank", required=True, type=Path, help=f"the bank: BANK.json + BANK.npz{made}")


def _parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The command's parser and its subcommands' parsers (each parsed on its own: `add` takes its clips
    anywhere among its options, which argparse's intermixed parsing allows only without subparsers)."""
    p = argparse.ArgumentParser(
        prog="stop-teach",
        description="Teach an exported STOP model new classes from a few "
        "example clips: a label bank that stop-recognize --bank and stop-gui use.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}")
    add = sub.add_parser("add", help="add example clips of a class (new, or one the bank has)")
    add.add_argument("model", help="exported .onnx file or TensorRT .engine the bank is for")
    add.add_argument(
        "clips",
        nargs="*",
        metavar="VIDEO[@START-END]",
        help="example clips: whole files, or time ranges in seconds or m:ss (clip.mp4@12-15.5)",
    )
    _bank_arg(add, creates=True)
    add.add_argument("--label", required=True, help="the class the clips show")
    add.add_argument(
        "--no-text",
        action="store_true",
        help="an example-only class: its name is not used as a text prompt (actions hard to name)",
    )
    add.add_argument("--tune", action="store_true", help="then tune alpha and beta (as stop-teach tune)")
    _backend_args(add)
    # every subcommand takes the model first, as add does; list and remove only check the bank against it
    ls = sub.add_parser("list", help="list the bank's classes and examples")
    ls.add_argument("model", nargs="?", help="exported model: check that the bank is for it (optional)")
    _bank_arg(ls)
    ls.add_argument("--json", action="store_true", help="JSON on stdout")
    _backend_args(ls)
    rm = sub.add_parser("remove", help="remove a class, or one of its examples")
    rm.add_argument(
        "words", nargs="+", metavar="[MODEL] LABEL", help="the class to remove, after the model to check (optional)"
    )
    _bank_arg(rm)
    rm.add_argument("--example", type=in_range(int, 1), metavar="N", help="only this example (the number list shows)")
    _backend_args(rm)
    tune = sub.add_parser(
        "tune", help="choose alpha and beta leave-one-out (every class needs >= 2 examples), or set them"
    )
    tune.add_argument("model", nargs="?", help="exported model (needed to choose; optional to set)")
    _bank_arg(tune)
    tune.add_argument(
        "--alpha",
        type=in_range(float, 0, 1e4),
        help="set the weight of the examples (default chosen by benchmarks/few_shot_check.py)",
    )
    tune.add_argument(
        "--beta", type=in_range(float, 0, 1e3, low_open=True), help="set the sharpness of the example affinity"
    )
    _backend_args(tune)
    return p, dict(sub.choices)


def _old_form(argv: list[str]) -> str | None:
    """The subcommand line that replaces a flag form of earlier versions (`--list`, `--remove`, ...), or None."""
    forms = {
        "--label": 'stop-teach add MODEL --bank BANK.json --label "LABEL" VIDEO[@START-END]...',
        "--list": "stop-teach list --bank BANK.json [--json]",
        "--remove": 'stop-teach remove "LABEL" --bank BANK.json [--example N]',
        "--tune": "stop-teach tune MODEL --bank BANK.json",
        "--alpha": "stop-teach tune --bank BANK.json --alpha A [--beta B]",
        "--beta": "stop-teach tune --bank BANK.json --alpha A [--beta B]",
    }
    return next((forms[flag] for flag in forms if flag in argv), None)


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


def _list(args) -> int:
    from .runtime.bank import LabelBank

    bank = LabelBank.load(args.bank)
    if args.model:
        _check(bank, args)
    if args.json:
        print(json.dumps(bank.document(), indent=1))
    else:
        print("\n".join(describe(bank) if bank.classes else ["the bank has no classes"]))
    return 0


def _remove(args) -> int:
    from .runtime.bank import LabelBank

    bank = LabelBank.load(args.bank)
    if args.model:
        _check(bank, args)
    name = args.label.strip()
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


def _set(args) -> int:
    """`tune --alpha/--beta`: set them; no model needed."""
    from .runtime.bank import LabelBank

    bank = LabelBank.load(args.bank)
    if args.model:
        _check(bank, args)
    _set_alpha_beta(bank, args)
    path = bank.save(args.bank)
    print(f"saved {path}: alpha {bank.alpha:g}, beta {bank.beta:g}")
    return 0


def _add_or_tune(args) -> int:
    """`add` (clips to class --label, then tuned with --tune) or `tune` leave-one-out: load the bank, change it,
    save it, say what the recognizer will score."""
    from .runtime.backends import open_backend
    from .runtime.bank import LabelBank
    from .runtime.recognizer import Recognizer

    adding = args.command == "add"
    backend = open_backend(args.model, args.backend, args.threads, plugin=args.plugin)
    meta = backend.metadata
    bank = LabelBank.open(args.bank, meta, str(Path(args.model).resolve()), create=adding)
    taught = _teach(bank, backend, args) if adding else None
    if adding and taught is None and not args.tune:
        print(f"nothing new for {args.label!r}: {args.bank} is unchanged")
        return 0
    tuned = bank.tune(meta.logit_scale, *_own_labels(Recognizer(backend))) if args.tune else None
    path = bank.save(args.bank)  # before anything is printed: a reader that went away must not cost the work
    rec = Recognizer(backend)
    rec.set_bank(bank)
    if taught:
        print(taught)
    if tuned:
        _say_tuned(tuned, rec)
    print(f"saved {path}: {len(bank.classes)} class(es), {len(bank.example)} example(s)")
    for note in rec.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"with the model's own labels, scored by {rec.scoring}")
    if tuned and rec.bank_head_uses_means:
        print(
            "note: alpha and beta only weigh the example cache, which scores the bank when a class has no clips "
            "behind it (labels of your own, --labels); here the model's class statistics score it",
            file=sys.stderr,
        )
    return 0


def _say_tuned(tuned: dict, rec) -> None:
    from .runtime.bank_head import DEFAULT_ALPHA

    print(
        f"tuned leave-one-out: alpha {tuned['alpha']:g}, beta {tuned['beta']:g} "
        f"({100 * tuned['loo_top1']:.1f} % of {tuned['examples']} examples right by the example cache)"
    )
    if tuned["alpha"] > DEFAULT_ALPHA and not rec.bank_head_uses_means:
        print(
            f"note: alpha {tuned['alpha']:g} is above the default {DEFAULT_ALPHA:g}: the taught classes may take "
            "clips of the model's own classes too (the examples cannot show it); check with stop-recognize, "
            f"and stop-teach tune --alpha {DEFAULT_ALPHA:g} goes back",
            file=sys.stderr,
        )


def run(args, parser: argparse.ArgumentParser) -> int:
    """Check what argparse cannot, then carry out the subcommand; a change holds the bank's lock (one stop-teach at
    a time changes a bank: another waits, and both changes are kept)."""
    from .runtime.bank import CLIP_SUFFIXES, BankError, check_bank_path, class_name

    if args.command == "add":
        try:
            clip = parse_clip(args.model)[0]
        except ValueError:
            clip = Path(args.model)
        if clip.suffix.lower() in CLIP_SUFFIXES:
            parser.error(f"{args.model} is a clip: give the model (.onnx or .engine) first, then the clips")
        if not args.clips:
            parser.error(f"give the clips that show {args.label!r} (VIDEO or VIDEO@START-END, after the model)")
    if args.command == "remove":
        if len(args.words) > 2:
            parser.error("give the class to remove as one argument (quote a name with spaces), after the model")
        args.model, args.label = (None, *args.words) if len(args.words) == 1 else args.words
    setting = args.command == "tune" and (args.alpha is not None or args.beta is not None)
    if args.command == "tune":
        if not setting and not args.model:
            parser.error("give the model (.onnx or .engine) to tune for, or set --alpha / --beta")
        args.tune = not setting
    try:
        check_bank_path(args.bank)
        if args.command == "add":
            args.label = class_name(args.label)  # before any clip is embedded
    except BankError as err:
        parser.error(str(err))
    handler, changes = _set if setting else HANDLERS[args.command], args.command in CHANGES
    if not changes:
        return handler(args)
    check_writable(args.bank)  # before the clips are embedded
    lock = pair_lock(args.bank)
    lock.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(lock, "", wait=f"waiting for another stop-teach to finish with {args.bank} (lock {lock})"):
        return handler(args)


# subcommand -> what does it (tune with --alpha/--beta: `_set`); those in CHANGES hold the bank's lock
HANDLERS = {"add": _add_or_tune, "list": _list, "remove": _remove, "tune": _add_or_tune}
CHANGES = ("add", "remove", "tune")
COMMANDS = tuple(HANDLERS)


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

    from .runtime.bank import BankError, Example
    from .runtime.errors import RecognizeError
    from .runtime.examples import embed_example, now
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
            f"new class example-only (stop-teach remove {shlex.quote(args.label)} --bank {args.bank} "
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
    argv = sys.argv[1:] if argv is None else argv
    parser, commands = _parser()
    if argv and argv[0] not in commands and (form := _old_form(argv)):
        print(f"stop-teach: the flag forms are gone; now: {form}", file=sys.stderr)
        return 2
    if argv and argv[0] in commands:  # clips may follow --label: intermixed, which subparsers do not allow
        args = commands[argv[0]].parse_intermixed_args(argv[1:])
        args.command = argv[0]
        command_parser = commands[argv[0]]
    else:
        args, command_parser = parser.parse_args(argv), parser  # help, or the error naming the subcommands
    readable_output()  # file names that are not UTF-8

    try:
        return run(args, command_parser)
    except StopError as err:
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
