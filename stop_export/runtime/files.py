"""A document and its arrays as two files (`NAME.json` + `NAME.npz`, no pickle), written so that a crash leaves
the previous pair readable: the search index and the label bank."""
from __future__ import annotations

import errno
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np


def paired_paths(path: str | Path) -> tuple[Path, Path]:
    """(NAME.json, NAME.npz) for `path` given with or without the .json / .npz suffix."""
    path = Path(path)
    base = path.with_suffix("") if path.suffix in (".json", ".npz") else path
    return base.with_name(base.name + ".json"), base.with_name(base.name + ".npz")


def write_pair(path: str | Path, doc: dict, arrays: dict[str, np.ndarray]) -> Path:
    """Write `arrays` to NAME.npz and `doc` (with "arrays": the npz file name, for readers) to NAME.json, each to a temporary
    name first and then renamed, the arrays first. Returns NAME.json. Raises OSError."""
    meta_path, array_path = paired_paths(path)
    target, tmp = array_path, array_path.with_name(array_path.name + f".{os.getpid()}.tmp.npz")
    try:
        meta_path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(tmp, **arrays)
        tmp.replace(array_path)
        target, tmp = meta_path, meta_path.with_name(meta_path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({**doc, "arrays": array_path.name}, indent=1, ensure_ascii=False), encoding="utf-8")
        tmp.replace(meta_path)
    except OSError as err:  # name the file being written, not its temporary name
        tmp.unlink(missing_ok=True)
        raise OSError(err.errno, err.strerror or str(err), str(target)) from None
    return meta_path


def check_writable(path: str | Path) -> None:
    """Raises OSError naming the place when NAME.json + NAME.npz could not be written there: one of them is a folder,
    or a file cannot be created in their folder (or the nearest existing folder above it). For checks before long
    work whose result would be lost."""
    names = paired_paths(path)
    for name in names:
        if name.is_dir():
            raise OSError(errno.EISDIR, "a folder is in the way", str(name))
    folder = names[0].parent.absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise OSError(errno.ENOTDIR, "not a folder: nothing can be written under it", str(folder))
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise OSError(err.errno, f"cannot write there ({err.strerror})", str(folder)) from None


def read_pair(path: str | Path, kind: str, noun: str, version: int, error: type[Exception], hint: str
              ) -> tuple[dict, dict[str, np.ndarray]]:
    """(doc, arrays) of a pair whose doc has {"format": `kind`, "version": <= `version`} (`noun`: what it is called
    in messages). Raises `error` naming the problem: missing (with `hint`), not that kind, a newer format,
    unreadable arrays."""
    meta_path, array_path = paired_paths(path)
    if not meta_path.is_file():
        raise error(f"no {noun.split()[-1]} at {meta_path} ({hint})")
    try:
        doc = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise error(f"{meta_path} is not a {noun} ({err})") from None
    if not isinstance(doc, dict) or doc.get("format") != kind:
        raise error(f"{meta_path} is not a {noun}")
    if not isinstance(doc.get("version"), int) or doc["version"] > version:
        raise error(f"{meta_path} has {noun} format {doc.get('version')!r}; this toolkit reads up to {version}: "
                    "upgrade stop-toolkit")
    try:  # always the sibling NAME.npz, so that a pair copied under another name still opens
        with np.load(array_path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise error(f"{meta_path}: its arrays ({array_path.name}) cannot be read ({err})") from None
    return doc, arrays
