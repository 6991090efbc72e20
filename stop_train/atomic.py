"""Writing user files so that a crash at any point leaves the previous file whole (torch-free: the edge runtime
imports it too).

A file is written to a hidden temporary name beside it (`.NAME.tmp-PID`), flushed and fsynced, then renamed over
NAME: the rename is the one moment the new content appears. A failure removes the temporary file and raises
OSError naming NAME (its errno kept: ENOSPC says the disk is full); a process killed mid-write leaves its
temporary file, which the next write of NAME removes. JSON is written without NaN or infinity (they become null:
strict JSON readers refuse them) and with file names that are not UTF-8 kept (`dumps`).
"""

from __future__ import annotations

import codecs
import contextlib
import json
import math
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from .errors import StopError

TMP_MARK = ".tmp-"


def temporary_name(path: Path) -> Path:
    """The hidden name `path` is written under before it is renamed into place (one per process)."""
    return path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")


def remove_stale(path: Path) -> None:
    """Remove temporary files of `path` left by processes that no longer run (killed mid-write), and those of the
    toolkit before 0.1.1 (`NAME.PID.tmp`, `NAME.PID.tmp.npz`)."""
    for tmp in [
        *path.parent.glob(f".{path.name}{TMP_MARK}*"),
        *path.parent.glob(f"{path.name}.*.tmp"),
        *path.parent.glob(f"{path.name}.*.tmp.npz"),
    ]:
        pid = tmp.name.rsplit(TMP_MARK, 1)[-1] if TMP_MARK in tmp.name else tmp.name[len(path.name) + 1 :].split(".")[0]
        if pid.isdigit() and not _running(int(pid)):
            with contextlib.suppress(OSError):
                tmp.unlink()


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process
        return True
    return True


def atomic_write(path: str | Path, write: Callable[[BinaryIO], Any]) -> Path:
    """Call `write(f)` on a temporary binary file, fsync it and rename it to `path` (module docstring). Raises
    OSError naming `path` (the temporary file removed)."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale(path)
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(err, OSError):
            raise OSError(err.errno, err.strerror or str(err), str(path)) from None
        raise
    sync_folder(path.parent)
    return path


@contextlib.contextmanager
def replacing_folder(folder: str | Path, files_from: Path | None = None, skip: tuple[str, ...] = ()):
    """Yield a staging folder (`NAME.partial`) that replaces `folder` as a whole when the block ends
    (`swap_folder`); it starts with hard links (else copies) of the files of `files_from` but `skip`. An exception
    removes it and leaves `folder` as it was."""
    folder = Path(folder)
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
        for f in sorted(files_from.iterdir()) if files_from is not None and files_from.is_dir() else ():
            if f.is_file() and f.name not in skip:
                try:
                    os.link(f, staging / f.name)
                except OSError:
                    shutil.copy2(f, staging / f.name)
        yield staging
        swap_folder(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def swap_folder(staging: Path, folder: Path) -> None:
    """`staging` becomes `folder` by two renames (`folder` -> `folder.old`, `staging` -> `folder`); the previous
    content (`folder`, or `folder.old` left by a crash between the renames) is removed only once the new one is in
    place; a second rename that fails puts the previous folder back."""
    old = folder.with_name(folder.name + ".old")
    if folder.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(folder, old)
    try:
        os.replace(staging, folder)
    except OSError:
        if old.exists() and not folder.exists():
            os.replace(old, folder)
        raise
    shutil.rmtree(old, ignore_errors=True)
    sync_folder(folder.parent)


def settled_folder(folder: str | Path, names: tuple[str, ...]) -> Path | None:
    """`folder`, or `folder.old` where a crash between `swap_folder`'s renames left only it; None when neither
    holds every file of `names`."""
    folder = Path(folder)
    for candidate in (folder, folder.with_name(folder.name + ".old")):
        if all((candidate / name).is_file() for name in names):
            return candidate
    return None


def sync_folder(folder: Path) -> None:
    """fsync a folder, so that a rename in it survives a power cut (best effort: not every system allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    """UTF-8 text; a name that is not UTF-8 (a lone surrogate from os.fsdecode) is kept as its original bytes."""
    return atomic_write_bytes(path, text.encode("utf-8", "surrogateescape"))


def finite(data: Any) -> Any:
    """`data` with every NaN or infinite float replaced by None (JSON null)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite(v) for v in data]
    return data


def dumps(data: Any, indent: int | None = 2) -> bytes:
    """Strict JSON as UTF-8 bytes: NaN and infinity become null (`finite`); a lone surrogate (a file name that is
    not UTF-8, as os.fsdecode gives it) becomes the JSON escape \\udcXX, which json.loads gives back unchanged."""
    text = json.dumps(finite(data), indent=indent, ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8", "backslashreplace")  # only lone surrogates cannot be encoded: "\\udcXX" in a string


def atomic_write_json(path: str | Path, data: Any, indent: int | None = 2) -> Path:
    return atomic_write_bytes(path, dumps(data, indent) + b"\n")


class Busy(StopError, RuntimeError):
    """Another process holds the lock on what this one would write."""


@contextlib.contextmanager
def exclusive(lock_path: str | Path, busy: str, wait: str | None = None):
    """Hold the lock file `lock_path` (filelock: released by the system when the process ends, however it ends)
    for the block. Another holder: raise Busy(`busy`) at once, or, with `wait`, print `wait` (one line, standard
    error) and wait for it."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if wait is None:
            raise Busy(busy) from None
        print(wait, file=sys.stderr, flush=True)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _escape_bytes(err: UnicodeError):
    """Codec error handler: a lone surrogate \\udcXX (byte XX of a name that is not UTF-8, from os.fsdecode)
    as the text \\xXX, what `ls -b` shows; anything else as Python's backslash escape."""
    bad = err.object[err.start : err.end]
    return "".join(
        f"\\x{ord(c) - 0xDC00:02x}"
        if 0xDC80 <= ord(c) <= 0xDCFF
        else c.encode("ascii", "backslashreplace").decode("ascii")
        for c in bad
    ), err.end


codecs.register_error("stop-escape-bytes", _escape_bytes)


@contextlib.contextmanager
def staging(folder: str | Path, name: str):
    """A hidden folder in `folder` (`.NAME.staging-PID`) to write a set of files that belong together before
    `publish` moves them in: a failure while writing them (a full disk) leaves the files in `folder` as they
    were. Removed afterwards; those of killed processes are removed by the next one."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f".{name}.staging-*"):
        pid = old.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    stage = folder / f".{name}.staging-{os.getpid()}"
    stage.mkdir(exist_ok=True)
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def publish(stage: Path, folder: Path, names: list[str]) -> None:
    """Move the files `names` from `stage` into `folder`, each by one rename, in this order (the file readers
    open first goes last: a process killed between two renames leaves files that name different models, which
    readers detect by their fingerprints)."""
    for name in names:
        os.replace(stage / name, Path(folder) / name)
    sync_folder(Path(folder))


def printable(path: os.PathLike | str) -> str:
    """A path as text any terminal shows, bytes that are not UTF-8 as \\xNN (what `readable_output` prints)."""
    return os.fspath(path).encode("utf-8", "stop-escape-bytes").decode("utf-8")


def readable_output() -> None:
    """Let standard output and error print file names that are not UTF-8 (a lone surrogate from os.fsdecode) as
    \\xNN escapes instead of failing with UnicodeEncodeError: for the command lines' main functions."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):
                reconfigure(errors="stop-escape-bytes")
