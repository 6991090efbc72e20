"""The one owner of a run directory's layout, and of its one writer.

A run (`stop-train --run-dir RUN`) holds `config.json` (the resolved training and model config, sampling and
pre-processing, written once when it starts), `labels.txt` (one class per line; none for retrieval),
`checkpoints/{best,last}/` (each a model folder: `model.safetensors` + `config.json`, with `trainer_state.pt`
and, once computed, class statistics), `metrics.csv` and what evaluation writes. `RunDir` reads it;
`locate` tells a run, a checkpoint inside a run and a model folder apart (a checkpoint name or a model folder
whose save was cut between its two renames is found as `NAME.old`); "best, else last" is `RunDir.chosen`.

Writing: `stop-train` holds the run's lock (`LOCK`) for the whole run, and a new run does not start in a
directory that holds one unless told to (`--overwrite`: the old run is moved aside, not deleted). Its files
are written in one rename each (`stop_train.atomic`), metrics.csv too (`append_row`). Torch-free.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from .atomic import atomic_write_json, atomic_write_text, exclusive, settled_folder
from .errors import ConfigError

CONFIG_FILE = "config.json"  # a run's config; a model folder's is also config.json (the model config alone)
LABELS_FILE = "labels.txt"
CHECKPOINTS = "checkpoints"
WEIGHTS_FILE = "model.safetensors"
MODEL_FILES = (WEIGHTS_FILE, CONFIG_FILE)  # a model folder (a run's checkpoint folder is one)

LOCK = ".lock"
RUN_FILES = (CONFIG_FILE, CHECKPOINTS, "metrics.csv", LABELS_FILE)  # a folder holding any of these holds a run


def holds_run(run_dir: Path) -> bool:
    return any((run_dir / name).exists() for name in RUN_FILES)


@contextlib.contextmanager
def locked(run_dir: Path, main: bool = True):
    """Hold `run_dir`'s lock for the block (on the main process of a torchrun job; the others rely on it). Raises
    atomic.Busy naming the lock when another stop-train holds it. A folder made here that holds nothing but the
    lock when the block ends (a start that failed on its inputs) is removed: no empty runs are left behind."""
    if not main:
        yield
        return
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    with exclusive(
        run_dir / LOCK,
        f"another stop-train is using {run_dir} (lock {run_dir / LOCK}); wait for it or choose another --run-dir",
    ):
        try:
            yield
        finally:
            if created and os.listdir(run_dir) == [LOCK]:
                with contextlib.suppress(OSError):
                    (run_dir / LOCK).unlink()
                    run_dir.rmdir()


def start_fresh(run_dir: Path, overwrite: bool, main: bool = True) -> Path | None:
    """Make `run_dir` ready for a new run: refuse (ValueError) one that holds a run unless `overwrite`, which moves
    its content into a sibling `NAME.replaced-TIME` (returned). Call it holding the lock."""
    if not holds_run(run_dir):
        return None
    if not overwrite:
        raise ConfigError(
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


def read_labels(path: str | Path) -> list[str]:
    """A labels file: one class per line, surrounding whitespace stripped, blank lines skipped (UTF-8, with or
    without a BOM; undecodable bytes kept as surrogates so that a name round-trips)."""
    text = Path(path).read_text(encoding="utf-8-sig", errors="surrogateescape")
    return [line.strip() for line in text.splitlines() if line.strip()]


class RunDir:
    """A training run's directory (see the module): its config, labels and checkpoints, read on demand."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @staticmethod
    def holds(path: str | Path) -> bool:
        """Whether `path` is a run that can be read: config.json and checkpoints/."""
        path = Path(path)
        return (path / CONFIG_FILE).is_file() and (path / CHECKPOINTS).is_dir()

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS

    @property
    def labels_file(self) -> Path:
        return self.path / LABELS_FILE

    @cached_property
    def config(self) -> dict[str, Any]:
        """config.json as written when the run started ({'train', 'model', 'sampling', 'preprocess'}).
        Raises FileNotFoundError (no config.json), ValueError (not a run's config)."""
        path = self.path / CONFIG_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{self.path} is not a run directory (no {CONFIG_FILE})")
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ConfigError(f"{path} is damaged ({err})") from None
        if not isinstance(data, dict) or not {"train", "model"} <= set(data):
            raise ConfigError(f"{path} is not a run's {CONFIG_FILE} (no 'train' and 'model' sections)")
        return data

    @property
    def train(self) -> dict[str, Any]:
        return self.config.get("train", {})

    @property
    def task(self) -> str:
        return self.train.get("task", "recognition")

    def labels(self) -> list[str] | None:
        """The run's classes (labels.txt), None when it has none (a retrieval run)."""
        return read_labels(self.labels_file) if self.labels_file.is_file() else None

    def checkpoint(self, name: str) -> Path | None:
        """The model folder of checkpoint `name` (or `name.old`, where a save was cut between its renames);
        None when neither holds a model."""
        return settled_folder(self.checkpoints / name, MODEL_FILES)

    def chosen(self) -> str:
        """'best' when validation picked a checkpoint, else 'last': the one the run's results come from."""
        return "best" if self.checkpoint("best") is not None else "last"

    def checkpoint_names(self) -> list[str]:
        return sorted(p.name for p in self.checkpoints.iterdir() if p.is_dir()) if self.checkpoints.is_dir() else []

    def write_labels(self, classes: list[str]) -> None:
        atomic_write_text(self.labels_file, "".join(c + "\n" for c in classes))

    def write_config(self, doc: dict[str, Any]) -> None:
        """config.json, once, when the run starts (`config` reads it back)."""
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.path / CONFIG_FILE, doc)
        self.__dict__.pop("config", None)


@dataclass(frozen=True)
class Location:
    """What a path names: a model folder (`folder`), inside a run (`run`) or not, and the checkpoint's name."""

    folder: Path
    run: RunDir | None = None
    checkpoint: str | None = None


def locate(path: str | Path, checkpoint: str | None = None) -> Location | None:
    """A run (its checkpoint `checkpoint`, default `RunDir.chosen`), a checkpoint folder inside a run, or a model
    folder; None when `path` is none of them. Raises FileNotFoundError naming the checkpoints a run has when it
    lacks `checkpoint`."""
    path = Path(path)
    if RunDir.holds(path):
        run = RunDir(path)
        name = checkpoint or run.chosen()
        folder = run.checkpoint(name)
        if folder is None:
            found = ", ".join(run.checkpoint_names()) or "none"
            raise FileNotFoundError(f"{path} has no checkpoint {name!r} (found: {found})")
        return Location(folder, run, name)
    folder = settled_folder(path, MODEL_FILES)
    if folder is None:
        return None
    parent = path.parent
    if parent.name == CHECKPOINTS and RunDir.holds(parent.parent):
        return Location(folder, RunDir(parent.parent), path.name)
    return Location(folder)
