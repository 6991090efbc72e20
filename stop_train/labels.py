"""Class-label sets and the single label -> prompt-text conversion used by the project.

Label files live in ``models/labels/<name>.txt``: one canonical class key per line, in
dataset index order. Stdlib only (no torch), so it can be imported anywhere.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from .errors import ConfigError

LABEL_SETS = ("ucf101", "hmdb51", "kinetics400", "ssv2")

STYLES = ("auto", "camel", "underscore", "parentheses", "plain")

_DATASET_STYLES = {
    "ucf101": "camel",
    "hmdb51": "underscore",
    "kinetics400": "parentheses",
    "ssv2": "plain",
}

DEFAULT_TEMPLATE = "a video of a person {label}."

_WS = re.compile(r"\s+")
_CAMEL_SPLIT = re.compile(r"([a-z])([A-Z])")
_CAMEL_TOKEN = re.compile(r"[A-Za-z0-9]+")
_TRAILING_PARENS = re.compile(r"\([^()]*\)\s*$")


def labels_dir() -> Path:
    """Return the folder holding the bundled label files.

    Looks first inside the package (installed wheel: ``stop_train/models/labels``), then
    next to the package (source checkout / editable install: ``<repo>/models/labels``).
    """
    here = Path(__file__).resolve().parent
    candidates = (here / "models" / "labels", here.parent / "models" / "labels")
    for cand in candidates:
        if cand.is_dir():
            return cand
    raise FileNotFoundError("label folder not found; looked in {} and {}".format(*map(str, candidates)))


def _read_label_file(path: Path) -> list[str]:
    labels: list[str] = []
    seen = {}
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:  # a run's labels.txt
        text = fh.read()  # holds folder names as the file system has them, UTF-8 or not
    for lineno, raw in enumerate(text.splitlines(), start=1):
        label = raw.strip()
        if not label:
            continue
        if label in seen:
            raise ConfigError(f"{path}: duplicate label {label!r} on line {lineno} (first seen on line {seen[label]})")
        seen[label] = lineno
        labels.append(label)
    if not labels:
        raise ConfigError(f"{path}: no labels found")
    return labels


def load_labels(name_or_path: str | os.PathLike[str]) -> list[str]:
    """Load a label list by set name (see ``LABEL_SETS``) or from a text file path.

    Files hold one label per line; surrounding whitespace (including CR) is stripped and
    blank lines are ignored. Duplicate labels raise ``ValueError``.
    """
    key = os.fspath(name_or_path)
    if key in LABEL_SETS:
        return _read_label_file(labels_dir() / f"{key}.txt")
    path = Path(key)
    if path.is_file():
        return _read_label_file(path)
    raise ConfigError(f"unknown label set {key!r}: not a file and not one of {', '.join(LABEL_SETS)}")


def dataset_style(name: str) -> str:
    """Return the ``label_words`` style used by a known label set."""
    try:
        return _DATASET_STYLES[name]
    except KeyError:
        raise ConfigError(f"unknown label set {name!r}; expected one of {', '.join(LABEL_SETS)}") from None


def _collapse(text: str) -> str:
    return _WS.sub(" ", text).strip()


def _auto_style(label: str) -> str:
    """Guess the style of a canonical key.

    ``_`` -> underscore (HMDB51); a trailing ``(...)`` qualifier -> parentheses (K400;
    SSv2 templates only have mid-sentence parentheses and stay plain); a single
    alphanumeric token with an inner lower->upper change or a leading capital ->
    camel (UCF101, incl. one-word names like ``Skijet``); otherwise plain.
    """
    if "_" in label:
        return "underscore"
    if _TRAILING_PARENS.search(label):
        return "parentheses"
    if _CAMEL_TOKEN.fullmatch(label) and (_CAMEL_SPLIT.search(label) or label[0].isupper()):
        return "camel"
    return "plain"


def label_words(label: str, style: str = "auto") -> str:
    """Turn a canonical class key into space-separated words.

    Styles: ``camel`` (``ApplyEyeMakeup`` -> ``apply eye makeup``), ``underscore``
    (``brush_hair`` -> ``brush hair``), ``parentheses`` (``hurling (sport)`` ->
    ``hurling sport``), ``plain`` (whitespace collapsed only) and ``auto``.
    """
    if style == "auto":
        style = _auto_style(label.strip())
    if style == "camel":
        return _collapse(_CAMEL_SPLIT.sub(r"\1 \2", label).lower())
    if style == "underscore":
        return _collapse(label.replace("_", " "))
    if style == "parentheses":
        return _collapse(label.replace("(", " ").replace(")", " "))
    if style == "plain":
        return _collapse(label)
    raise ConfigError(f"unknown style {style!r}; expected one of {', '.join(STYLES)}")


def label_to_text(label: str, template: str = DEFAULT_TEMPLATE, style: str = "auto") -> str:
    """Render one label as prompt text: ``template`` with ``{label}`` replaced by its words."""
    if "{label}" not in template:
        raise ConfigError(f"template must contain '{{label}}': {template!r}")
    return template.replace("{label}", label_words(label, style))


def label_texts(labels: Iterable[str], template: str = DEFAULT_TEMPLATE, style: str = "auto") -> list[str]:
    """Apply ``label_to_text`` to every label, keeping order."""
    return [label_to_text(label, template, style) for label in labels]
