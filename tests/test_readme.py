"""The README's Python API example runs as written, and the README's first screen gives the two commands."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_first_screen_has_both_commands():
    head = "\n".join(README.read_text(encoding="utf-8").splitlines()[:25])
    assert "make demo" in head and "make test" in head


def test_api_example_runs(capsys):
    text = README.read_text(encoding="utf-8")
    block = re.search(r"## Python API\s+```python\n(.*?)```", text, re.S)
    assert block, "the README has a Python API example"
    exec(compile(block.group(1), str(README), "exec"), {})
    printed = capsys.readouterr().out.split(maxsplit=1)
    from stop_train.labels import load_labels

    assert printed[0] in load_labels("ucf101")
    counts = eval(printed[1])  # the gap prompt counts of video 0
    assert len(counts) == 3 and max(counts) == 2  # T-1 gaps; the most-changing gets P (tiny: 2)
