"""The Python API example of the docs runs as written, the README's first screen gives the two commands, the
README stays short, and the docs site builds strictly (a broken link fails it)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
DESIGN = README.parent / "docs" / "design.md"


def test_first_screen_has_both_commands():
    head = "\n".join(README.read_text(encoding="utf-8").splitlines()[:25])
    assert "make demo" in head and "make test" in head


def test_api_example_runs(capsys):
    text = DESIGN.read_text(encoding="utf-8")
    block = re.search(r"## Python API\s+```python\n(.*?)```", text, re.S)
    assert block, "docs/design.md has a Python API example"
    exec(compile(block.group(1), str(DESIGN), "exec"), {})
    printed = capsys.readouterr().out.split(maxsplit=1)
    from stop_train.labels import load_labels

    assert printed[0] in load_labels("ucf101")
    counts = eval(printed[1])  # the gap prompt counts of video 0
    assert len(counts) == 3 and max(counts) == 2  # T-1 gaps; the most-changing gets P (tiny: 2)


def test_readme_reads_in_five_minutes():
    assert len(README.read_bytes()) < 12_000


def test_docs_site_builds_strictly_and_a_broken_link_fails_it(tmp_path):
    """`mkdocs build --strict` on the docs as they are passes; on a copy with one link to a page that does not
    exist, it fails (the build `make docs` runs can fail)."""
    import os
    import shutil
    import subprocess
    import sys

    mkdocs = [sys.executable, "-m", "mkdocs", "build", "--strict"]
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    copy = tmp_path / "repo"
    shutil.copytree(README.parent / "docs", copy / "docs")
    shutil.copy(README.parent / "mkdocs.yml", copy)
    good = subprocess.run([*mkdocs, "-d", str(tmp_path / "site")], cwd=copy, env=env, capture_output=True, text=True)
    assert good.returncode == 0, good.stderr[-3000:]
    with open(copy / "docs" / "search.md", "a", encoding="utf-8") as page:
        page.write("\nSee [the missing page](missing.md).\n")
    bad = subprocess.run([*mkdocs, "-d", str(tmp_path / "site2")], cwd=copy, env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "missing.md" in bad.stderr
