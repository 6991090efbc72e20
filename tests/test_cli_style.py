"""One CLI style: every console script is argparse with subparsers, and every subcommand it parses has the one
handler that carries it out (a subcommand added to the parser without one fails here, not by running another's
work); the parsers need no PyTorch."""

from __future__ import annotations

import subprocess
import sys


def test_stop_teach_parses_exactly_the_subcommands_it_handles():
    from stop_export.teach_cli import CHANGES, COMMANDS, HANDLERS, _parser

    _, commands = _parser()
    assert set(commands) == set(HANDLERS) == set(COMMANDS) and set(CHANGES) <= set(HANDLERS)


def test_stop_search_subcommands_each_name_their_handler():
    from stop_export.search_cli import _parser

    parser = _parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    assert set(subparsers) == {"index", "query"}
    for name, sub in subparsers.items():
        assert callable(sub.get_default("run")), f"stop-search {name} names no handler"


def test_stop_train_subcommands_come_from_one_table_and_parse_without_torch():
    code = (
        "import sys\n"
        "from stop_train.cli import COMMANDS, SUBCOMMANDS, parser\n"
        "top, subs = parser()\n"
        "assert list(subs) == list(COMMANDS) == list(SUBCOMMANDS), (list(subs), COMMANDS)\n"
        "args = top.parse_args(['eval', 'RUN', '--split', 'val'])\n"
        "assert args.command == 'eval' and args.split == 'val'\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'open_clip', 'onnx')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"
