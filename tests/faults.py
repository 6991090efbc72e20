"""Fault injection for writers of user data (issue 24): every file operation a write makes can fail."""

from __future__ import annotations

import builtins
import errno
import io
import os
from pathlib import Path


class Faults:
    """Counts the files opened for writing, fsyncs and renames (Path.replace and Path.rename go through os) made
    while installed, and raises `error` at the `at`-th (1-based;
    0: never), or, `full` (a full disk), at every one from the `at`-th on."""

    def __init__(self, monkeypatch, at: int = 0, error: OSError | None = None, full: bool = False):
        self.at, self.calls, self.full = at, 0, full
        self.error = error or OSError(errno.EIO, "injected fault")
        real_open, real_fsync, real_replace, real_rename = builtins.open, os.fsync, os.replace, os.rename

        def hit():
            self.calls += 1
            if self.calls == self.at or (self.full and self.calls > self.at > 0):
                raise self.error

        def fake_open(file, mode="r", *args, **kwargs):
            if any(c in mode for c in "wax+"):
                hit()
            return real_open(file, mode, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", fake_open)
        monkeypatch.setattr(io, "open", fake_open)  # Path.open, Path.write_text
        monkeypatch.setattr(os, "fsync", lambda fd: (hit(), real_fsync(fd))[1])
        monkeypatch.setattr(os, "replace", lambda a, b, **kw: (hit(), real_replace(a, b, **kw))[1])
        monkeypatch.setattr(os, "rename", lambda a, b, **kw: (hit(), real_rename(a, b, **kw))[1])


def each_fault(monkeypatch, write, limit: int = 200):
    """Run `write()` with a fault at every operation in turn, until one run makes it through; yields (k, error or
    None) after each run, with the patches removed."""
    for k in range(1, limit):
        with monkeypatch.context() as m:
            faults = Faults(m, k)
            try:
                write()
                error = None
            except OSError as err:
                error = err
        yield k, error
        if faults.calls < k:  # the fault was never reached: every operation has been tried
            return
    raise AssertionError(f"more than {limit} file operations")


def leftovers(folder: Path) -> list[str]:
    """Temporary files under `folder`."""
    return sorted(
        str(p.relative_to(folder)) for p in folder.rglob("*") if ".tmp" in p.name or p.name.endswith(".partial")
    )


def interrupt_probing_at(monkeypatch, n: int) -> list:
    """Ctrl-C at the `n`-th video probe (`probe_cache.probe_entry` raises KeyboardInterrupt there, as a signal
    would in the main thread); returns the list of videos probed so far, which grows as probes run."""
    from stop_train.video import probe_cache

    real, calls = probe_cache.probe_entry, []

    def interrupted(video, exact=True):
        calls.append(video)
        if len(calls) == n:
            raise KeyboardInterrupt
        return real(video, exact)

    monkeypatch.setattr(probe_cache, "probe_entry", interrupted)
    return calls
