"""Label banks (torch-free): teach a model new classes from a few example clips, on the edge box.

A bank holds, for each class, the text-prompt embedding of its name (or none: an example-only class) and the
video embeddings and frame embeddings of its example clips (one example = one clip of a file's time range, or
of frames recorded from a camera, under the metadata's eval sampling: `stop_export.runtime.examples`). How a
bank scores clips (class statistics, or Tip-Adapter's cache) is `stop_export.runtime.bank_head`.

A bank is two files, `BANK.json` (format version, the model fingerprint, alpha and beta, the classes with each
example's source and time range) and `BANK.npz` (text embeddings (C, E), example embeddings (N, E), their
class (N,), their frame embeddings (N, T*E), or (0, 0) when an example lacks them, and the document of BANK.json:
one rename writes a bank, `files`); no pickle. The fingerprint covers the weights and config, so an ONNX file and
the engines built from it share a bank, and any other model is refused.
"""

from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from stop_train.data.types import VIDEO_EXTENSIONS
from stop_train.schema import Metadata
from stop_train.statistics import FrameStatistics

from . import bank_head
from .bank_head import ALPHA_GRID, BETA_GRID, DEFAULT_ALPHA, DEFAULT_BETA, Head, unit
from .errors import BankError as BankError  # the bank's error, defined with the runtime's others
from .files import pair_exists, paired_paths, read_pair, write_pair

if TYPE_CHECKING:
    from .examples import ClipEmbedding

BANK_VERSION = 2  # 2: the examples' frame embeddings


# a --bank with one of these suffixes is a clip (video or image) or a model given in the wrong place, not a bank
CLIP_SUFFIXES = (*VIDEO_EXTENSIONS, ".m4v", ".mpg", ".mpeg", ".ts", ".gif", ".jpg", ".jpeg", ".png", ".bmp")
NOT_BANK_SUFFIXES = (*CLIP_SUFFIXES, ".onnx", ".engine")


def class_name(text: str) -> str:
    """A class name as stored: `text` without surrounding white space. Raises BankError for an empty name or one
    with a control character (a new line, a tab: a name is one line of a list or a banner)."""
    name = text.strip()
    if not name:
        raise BankError("a class needs a name")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise BankError(f"a class name is one line of text without tabs: {name!r}")
    return name


def check_bank_path(path: str | Path) -> None:
    """Raises BankError when `path` cannot name a bank: no file name, a folder, or a video, image or model file
    (a clip given in the wrong place)."""
    path = Path(path)
    if not path.name or path.name in (".", ".."):
        raise BankError(f"give the bank a file name (e.g. site.json), not {str(path) or 'an empty path'!r}")
    if path.is_dir():
        raise BankError(f"{path} is a folder, not a label bank: give a file name in it (e.g. {path / 'site.json'})")
    suffix = path.suffix.lower()
    if suffix not in (".json", ".npz") and (path.is_file() or suffix in NOT_BANK_SUFFIXES):
        raise BankError(
            f"{path} is {'a file' if path.is_file() else 'a video, image or model name'}, not a label "
            "bank: give BANK.json (stop-teach creates it)"
        )


@dataclass
class Example:
    source: str  # an absolute file path, or a camera / stream as given
    start_s: float  # the range of the source the clip was sampled from, seconds
    end_s: float
    added: str = ""  # local time, ISO 8601


@dataclass
class BankClass:
    name: str
    text: str  # the prompt its text embedding was encoded from; "" for an example-only class
    examples: list[Example] = field(default_factory=list)


@dataclass
class LabelBank:
    """Classes taught to one model (by fingerprint). Rows of `example` are grouped by class, in class order."""

    fingerprint: str
    model: str = ""  # the model file the bank was started with, for messages
    alpha: float = DEFAULT_ALPHA
    beta: float = DEFAULT_BETA
    tuned: dict | None = None  # {"alpha", "beta", "loo_top1", "examples"} of the last leave-one-out tuning
    classes: list[BankClass] = field(default_factory=list)
    text: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))  # (C, E), zero rows: no text
    example: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))  # (N, E) unit rows
    example_class: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # (N,) index into classes
    # (N, T*E) the examples' frame embeddings (`frame_embedding` output, flattened), or (0, 0) when any example
    # lacks them (a model exported without that output, a version-1 bank): the cache alone then scores the bank
    frames: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))

    # ------------------------------------------------------------------------------------------- files
    @staticmethod
    def paths(path: str | Path) -> tuple[Path, Path]:
        """(BANK.json, BANK.npz) for `path` given with or without the .json suffix."""
        return paired_paths(path)

    def document(self) -> dict:
        """What BANK.json holds: everything but the arrays."""
        return {
            "format": "stop-label-bank",
            "version": BANK_VERSION,
            "fingerprint": self.fingerprint,
            "model": self.model,
            "alpha": self.alpha,
            "beta": self.beta,
            "tuned": self.tuned,
            "classes": [asdict(c) for c in self.classes],
        }

    def save(self, path: str | Path) -> Path:
        """Write BANK.npz and BANK.json (`files.write_pair`: a crash leaves the previous bank). Raises OSError."""
        return write_pair(
            path,
            self.document(),
            {
                "text": self.text.astype(np.float32),
                "example": self.example.astype(np.float32),
                "example_class": self.example_class.astype(np.int32),
                "frames": self.frames.astype(np.float32),
            },
        )

    @classmethod
    def load(cls, path: str | Path) -> LabelBank:
        """Read a bank. Raises BankError naming the problem (missing, not a bank, newer format, damaged)."""
        check_bank_path(path)
        meta_path = paired_paths(path)[0]
        doc, arrays = read_pair(
            path, "stop-label-bank", "label bank", BANK_VERSION, BankError, "teach one with stop-teach"
        )
        try:
            classes = [BankClass(c["name"], c["text"], [Example(**e) for e in c["examples"]]) for c in doc["classes"]]
            bank = cls(
                str(doc["fingerprint"]),
                str(doc.get("model", "")),
                float(doc["alpha"]),
                float(doc["beta"]),
                doc.get("tuned"),
                classes,
                arrays["text"],
                arrays["example"],
                arrays["example_class"],
                arrays.get("frames", np.zeros((0, 0), np.float32)),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise BankError(f"{meta_path}: damaged bank ({err})") from None
        counts = (
            np.bincount(bank.example_class, minlength=len(classes))
            if len(bank.example_class)
            else np.zeros(len(classes))
        )
        if (
            len(bank.text) != len(classes)
            or len(bank.example) != len(bank.example_class)
            or len(counts) != len(classes)
            or [len(c.examples) for c in classes] != counts.tolist()
            or np.any(np.diff(bank.example_class) < 0)
            or (bank.text.size and bank.example.size and bank.text.shape[1] != bank.example.shape[1])
            or bank.frames.ndim != 2
            or (len(bank.frames) and len(bank.frames) != len(bank.example))
            or not (np.isfinite(bank.alpha) and bank.alpha >= 0 and np.isfinite(bank.beta) and bank.beta > 0)
        ):
            raise BankError(
                f"{meta_path}: damaged bank (its classes and arrays disagree, or alpha/beta are not numbers "
                "alpha >= 0, beta > 0)"
            )
        return bank

    @classmethod
    def open(cls, path: str | Path, meta: Metadata, model: str = "", create: bool = False) -> LabelBank:
        """The bank at `path` for the model `meta` (checked with `check_model`), or a new empty one when there is
        none and `create`."""
        check_bank_path(path)
        if create and not pair_exists(path):
            if not meta.fingerprint:
                raise BankError(
                    f"{model or 'this model'} was exported before models carried a fingerprint: re-export it"
                )
            return cls(meta.fingerprint, str(model))
        bank = cls.load(path)
        bank.check_model(meta, model or "this model")
        return bank

    def check_model(self, meta: Metadata, where: str) -> None:
        """Raise BankError when `meta` is not the model this bank was taught with."""
        if not meta.fingerprint:
            raise BankError(f"{where} was exported before models carried a fingerprint: re-export it")
        if meta.fingerprint != self.fingerprint:
            raise BankError(
                f"this label bank belongs to another model (fingerprint {self.fingerprint}, "
                f"{self.model or 'path not recorded'}); {where} has {meta.fingerprint}: teach this "
                "model a bank of its own"
            )
        if self.width and self.width != meta.model.embed_dim:
            raise BankError(f"damaged bank: its embeddings are {self.width} wide, {where}'s {meta.model.embed_dim}")

    # ------------------------------------------------------------------------------------------ editing
    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    def find(self, name: str) -> int | None:
        """The index of class `name` (surrounding white space ignored), or None."""
        name = name.strip()
        return next((i for i, c in enumerate(self.classes) if c.name == name), None)

    def add(
        self,
        name: str,
        embeddings: np.ndarray,
        examples: list[Example],
        text: str = "",
        text_embedding: np.ndarray | None = None,
        frames: np.ndarray | None = None,
    ) -> None:
        """Add example embeddings (n, E) with their `examples` (and their frame embeddings (n, T*E), when the model
        gives them) to class `name`, creating it (with `text` and its `text_embedding` (E,), or example-only) when
        new. Raises BankError for a bad class name (`class_name`), a size mismatch, or a new example-only class
        without examples."""
        name = class_name(name)
        had_frames = len(self.frames) == len(self.example)  # every example so far has them (or there are none)
        if frames is not None and examples:
            frames = np.asarray(frames, np.float32).reshape(len(examples), -1)
            if len(self.frames) and frames.shape[1] != self.frames.shape[1]:
                raise BankError(
                    f"frame embedding width {frames.shape[1]} does not match the bank's {self.frames.shape[1]}"
                )
        embeddings = np.asarray(embeddings, np.float32).reshape(len(examples), -1) if examples else None
        given = embeddings.shape[1] if examples else len(text_embedding) if text_embedding is not None else 0
        width = self.width or given
        if given and given != width:
            raise BankError(f"embedding width {given} does not match the bank's {width}")
        if embeddings is None:
            embeddings = np.zeros((0, width), np.float32)
        k = self.find(name)
        if k is None:
            if not len(examples) and text_embedding is None:
                raise BankError(f"{name!r}: a class without text needs at least one example")
            k = len(self.classes)
            self.classes.append(BankClass(name, text if text_embedding is not None else ""))
            row = np.zeros((1, width), np.float32) if text_embedding is None else unit(text_embedding[None])
            self.text = row if self.text.size == 0 else np.concatenate([self.text, row])
        self.classes[k].examples += examples
        at = int(np.searchsorted(self.example_class, k, side="right"))  # keep the rows grouped by class
        if self.example.size == 0:
            self.example = np.zeros((0, width), np.float32)
        self.example = np.concatenate([self.example[:at], unit(embeddings), self.example[at:]])
        if had_frames and (frames is not None or not examples):
            if frames is not None and examples:
                self.frames = (
                    frames if not len(self.frames) else np.concatenate([self.frames[:at], frames, self.frames[at:]])
                )
        else:  # an example without frame embeddings: the bank is scored by its cache alone
            self.frames = np.zeros((0, 0), np.float32)
        self.example_class = np.concatenate(
            [self.example_class[:at], np.full(len(examples), k, np.int32), self.example_class[at:]]
        ).astype(np.int32)

    def add_clips(
        self,
        name: str,
        clips: list[ClipEmbedding],
        examples: list[Example],
        text: str = "",
        text_embedding: np.ndarray | None = None,
    ) -> None:
        """`add` for the clips `embed_example` / `embed_recording` give, one per example."""
        frames = (
            None if not clips or any(c.frames is None for c in clips) else np.stack([c.frames.ravel() for c in clips])
        )
        embeddings = np.stack([c.embedding for c in clips]) if clips else np.zeros((0, self.width), np.float32)
        self.add(name, embeddings, examples, text, text_embedding, frames)

    def remove(self, name: str, example: int | None = None) -> None:
        """Remove class `name`, or only its `example`-th example (0-based). A class left with neither text nor
        examples is removed. Raises BankError naming what is not there."""
        k = self.find(name)
        if k is None:
            raise BankError(f"no class {name!r} in the bank (it has: {', '.join(self.names) or 'none'})")
        rows = np.flatnonzero(self.example_class == k)
        if example is not None:
            if not 0 <= example < len(rows):
                raise BankError(f"{name!r} has {len(rows)} example(s): there is no example {example + 1}")
            self.example = np.delete(self.example, rows[example], axis=0)
            if len(self.frames):
                self.frames = np.delete(self.frames, rows[example], axis=0)
            self.example_class = np.delete(self.example_class, rows[example])
            del self.classes[k].examples[example]
            if self.classes[k].examples or self.classes[k].text:
                return
            rows = rows[:0]
        keep = self.example_class != k
        self.example, self.example_class = self.example[keep], self.example_class[keep]
        if len(self.frames):
            self.frames = self.frames[keep]
        self.example_class = (self.example_class - (self.example_class > k)).astype(np.int32)
        self.text = np.delete(self.text, k, axis=0)
        del self.classes[k]

    @property
    def width(self) -> int:
        return int(self.text.shape[1]) if self.text.size else (int(self.example.shape[1]) if self.example.size else 0)

    # ------------------------------------------------------------------------------------------- scoring
    def head(
        self,
        labels: list[str] | None = None,
        label_text: np.ndarray | None = None,
        statistics: FrameStatistics | None = None,
    ) -> Head:
        """The classifier over `labels` followed by the bank's classes not among them (`bank_head.build_head`)."""
        return bank_head.build_head(self, labels, label_text, statistics)

    def without_means(self, labels: list[str], stats: FrameStatistics | None) -> str:
        """Why a head over `labels` with `stats` is scored by the cache, for a note; '' when it is not
        (`bank_head.without_means`)."""
        return bank_head.without_means(self, labels, stats)

    def tune(
        self,
        scale: float,
        labels: list[str] | None = None,
        label_text: np.ndarray | None = None,
        alphas=ALPHA_GRID,
        betas=BETA_GRID,
    ) -> dict:
        """Leave-one-out choice of (alpha, beta) (`bank_head.tune`): sets `alpha`, `beta` and `tuned`; returns
        `tuned`. Raises BankError without two classes of at least two examples."""
        return bank_head.tune(self, scale, labels, label_text, alphas, betas)
