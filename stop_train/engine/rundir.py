"""A run directory has one writer: `stop-train` holds its lock (`LOCK`) for the whole run, and a new run does not
start in a directory that holds one unless told to (`--overwrite`: the old run is moved aside, not deleted).
Its files are written in one rename each (`stop_train.atomic`), metrics.csv too (`append_row`)."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import time
from pathlib import Path

from ..atomic import atomic_write_text, exclusive

LOCK = ".lock"
RUN_FILES = ("config.json", "checkpoints", "metrics.csv", "labels.txt")  # what makes a folder a run


def holds_run(run_dir: Path) -> bool:
    return any((run_dir / name).exists() for name in RUN_FILES)


@contextlib.contextmanager
def locked(run_dir: Path, main: bool = True):
    """Hold `run_dir`'s lock for the block (on the main process of a torchrun job; the others rely on it). Raises
    atomic.Busy naming the lock when another stop-train holds it."""
    if not main:
        yield
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    with exclusive(
        run_dir / LOCK,
        f"another stop-train is using {run_dir} (lock {run_dir / LOCK}); wait for it or choose another --run-dir",
    ):
        yield


def start_fresh(run_dir: Path, overwrite: bool, main: bool = True) -> Path | None:
    """Make `run_dir` ready for a new run: refuse (ValueError) one that holds a run unless `overwrite`, which moves
    its content into a sibling `NAME.replaced-TIME` (returned). Call it holding the lock."""
    if not holds_run(run_dir):
        return None
    if not overwrite:
        raise ValueError(
            f"{run_dir} already holds a run: continue it with --resume {run_dir}, choose another "
            "--run-dir, or start it again with --overwrite (the old run is moved aside)"
        )
    aside = run_dir.with_name(f"{run_dir.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
    if main:
        aside.mkdir()
        for entry in sorted(os.listdir(run_dir)):
            if entry != LOCK:
                os.replace(run_dir / entry, aside / entry)
    return aside


def append_row(path: Path, fields: list[str], row: dict) -> None:
    """Add `row` to the CSV file `path` (with a header line when new), rewriting it in one rename: a failed write
    leaves the rows before it, never half a row."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields)
    old = path.read_text(encoding="utf-8-sig") if path.is_file() else ""
    if not old:
        writer.writeheader()
    elif not old.endswith("\n"):
        old += "\n"
    writer.writerow(row)
    atomic_write_text(path, old + buffer.getvalue())
