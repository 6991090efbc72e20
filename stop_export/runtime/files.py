"""A document and its arrays (`NAME.json` + `NAME.npz`, no pickle), written so that a crash at any point leaves
the previous state readable: the search index and the label bank.

The npz holds the arrays and a copy of the document (`DOC_KEY`: its JSON as UTF-8 bytes) and is written by one
rename (`stop_train.atomic`): that rename is the write. NAME.json is written after it. Both carry the same random
"generation"; readers take NAME.json (which people may edit) when its generation is the npz's, and the npz's copy
when it is not (a crash between the two renames left an older NAME.json) or when NAME.json is missing (a crash
after the first npz). Pairs written before the document went into the npz are read from NAME.json.
"""

from __future__ import annotations

import errno
import json
import logging
import tempfile
import uuid
import zipfile
from pathlib import Path

import numpy as np

from stop_train.atomic import atomic_write, atomic_write_bytes, dumps

DOC_KEY = "__document__"
log = logging.getLogger(__name__)


def paired_paths(path: str | Path) -> tuple[Path, Path]:
    """(NAME.json, NAME.npz) for `path` given with or without the .json / .npz suffix."""
    path = Path(path)
    base = path.with_suffix("") if path.suffix in (".json", ".npz") else path
    return base.with_name(base.name + ".json"), base.with_name(base.name + ".npz")


def pair_exists(path: str | Path) -> bool:
    """Whether a pair was written at `path` (its document is in NAME.json, or in NAME.npz alone after a crash
    between the two writes)."""
    return any(p.exists() for p in paired_paths(path))


def pair_lock(path: str | Path) -> Path:
    """The lock file that writers of the pair at `path` hold while they change it: `.NAME.json.lock` beside it."""
    meta_path = paired_paths(path)[0]
    return meta_path.with_name(f".{meta_path.name.lstrip('.')}.lock")


def write_pair(path: str | Path, doc: dict, arrays: dict[str, np.ndarray]) -> Path:
    """Write `arrays` and `doc` to NAME.npz in one rename, then `doc` (with "arrays": the npz file name, for
    readers) to NAME.json. Returns NAME.json. Raises OSError naming the file when NAME.npz could not be written
    (nothing changed: NAME.json is not touched either); a NAME.json that cannot be written after it is logged,
    not raised (the pair is written: readers take the npz's document)."""
    meta_path, array_path = paired_paths(path)
    if meta_path.is_dir():  # before the npz: the refresh of NAME.json below cannot fail for it
        raise OSError(errno.EISDIR, "a folder is in the way", str(meta_path))
    text = dumps({**doc, "arrays": array_path.name, "generation": uuid.uuid4().hex}, indent=1)
    atomic_write(array_path, lambda f: np.savez(f, **arrays, **{DOC_KEY: np.frombuffer(text, np.uint8)}))
    try:
        atomic_write_bytes(meta_path, text)
    except OSError as err:
        log.warning(
            "%s holds the new %s, but its copy %s could not be refreshed (%s)",
            array_path,
            doc.get("format", "document"),
            meta_path.name,
            err.strerror or err,
        )
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


def read_pair(
    path: str | Path, kind: str, noun: str, version: int, error: type[Exception], hint: str
) -> tuple[dict, dict[str, np.ndarray]]:
    """(doc, arrays) of a pair whose doc has {"format": `kind`, "version": <= `version`} (`noun`: what it is called
    in messages). Raises `error` naming the problem: missing (with `hint`), not that kind, a newer format,
    unreadable arrays."""
    meta_path, array_path = paired_paths(path)
    if not pair_exists(path):
        raise error(f"no {noun.split()[-1]} at {meta_path} ({hint})")
    arrays, doc = {}, None
    if array_path.is_file() or not meta_path.is_file():
        try:  # always the sibling NAME.npz, so that a pair copied under another name still opens
            with np.load(array_path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            raise error(f"{meta_path}: its arrays ({array_path.name}) cannot be read ({err})") from None
    where, doc = meta_path, None
    try:
        inner = json.loads(arrays.pop(DOC_KEY).tobytes().decode("utf-8")) if DOC_KEY in arrays else None
        if meta_path.is_file():
            doc = json.loads(meta_path.read_text(encoding="utf-8-sig"))
        if inner is not None and not (isinstance(doc, dict) and doc.get("generation") == inner.get("generation")):
            where, doc = array_path, inner  # NAME.json is missing or older than the npz (module docstring)
    except (OSError, UnicodeDecodeError, ValueError, AttributeError) as err:
        raise error(f"{where} is not a {noun} ({err})") from None
    if not isinstance(doc, dict) or doc.get("format") != kind:
        raise error(f"{where} is not a {noun}")
    if not isinstance(doc.get("version"), int) or doc["version"] > version:
        raise error(
            f"{where} has {noun} format {doc.get('version')!r}; this toolkit reads up to {version}: "
            "upgrade stop-toolkit"
        )
    if not array_path.is_file():
        raise error(f"{meta_path}: its arrays ({array_path.name}) are missing")
    return doc, arrays
