"""Dataset indexing: which video files, which label, which split (no decoding here).

``open_dataset(name, root)`` is the entry point; ``DATASETS`` maps names to the
per-format indexers and ``DATASET_SPLIT_ROLES`` says which files play train/val/test.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from .folder import index_folder, index_list
from .hmdb51 import index_hmdb51
from .kinetics400 import index_kinetics400
from .splits import check_classes_have_training_clips, grouped_holdout
from .ssv2 import index_ssv2
from .types import DatasetError, DatasetIndex, DatasetLayoutError, VideoItem, check_options, short_list
from .ucf101 import index_ucf101, index_ucf_layout


def index_synthetic_motion(root: Path, fold: int = 1) -> DatasetIndex:
    """The generated synthetic-motion set (UCF101 layout; `synthetic.write_synthetic_motion` makes it).
    Time-reversed class pairs: not flip-safe."""
    from .synthetic import CLASSES

    return index_ucf_layout(root, fold, None, name="synthetic-motion", expected=list(CLASSES), flip_safe=False)


__all__ = [
    "DATASETS",
    "DATASET_SPLIT_ROLES",
    "DatasetIndex",
    "DatasetLayoutError",
    "VideoItem",
    "check_classes_have_training_clips",
    "grouped_holdout",
    "open_dataset",
    "index_folder",
    "index_hmdb51",
    "index_kinetics400",
    "index_list",
    "index_ssv2",
    "index_ucf101",
]

logger = logging.getLogger(__name__)

DATASETS: dict[str, Callable[..., DatasetIndex]] = {
    "ucf101": index_ucf101,
    "hmdb51": index_hmdb51,
    "kinetics400": index_kinetics400,
    "ssv2": index_ssv2,
    "folder": index_folder,
    "list": index_list,
    "synthetic-motion": index_synthetic_motion,
}

_HOLDOUT = "grouped hold-out (val_fraction, whole groups) of the train split"

DATASET_SPLIT_ROLES: dict[str, dict[str, str]] = {
    "ucf101": {
        "train": "trainlist0{fold}.txt minus the hold-out",
        "val": _HOLDOUT + "; groups are ClassName_gXX, so no actor group is in both",
        "test": "testlist0{fold}.txt (report accuracy here, averaged over folds 1-3)",
    },
    "hmdb51": {
        "train": "tag-1 clips of <class>_test_split{fold}.txt minus the hold-out",
        "val": _HOLDOUT + "; groups are source videos",
        "test": "tag-2 clips of <class>_test_split{fold}.txt (tag 0 is unused)",
    },
    "kinetics400": {
        "train": "train.csv (or lists['train'])",
        "val": "validate.csv / val.csv (or lists['val'])",
        "test": "none: test labels are not public; K400 results are reported on val",
    },
    "ssv2": {
        "train": "something-something-v2-train.json",
        "val": "something-something-v2-validation.json",
        "test": "none: test labels are not public; SSv2 results are reported on validation",
    },
    "folder": {
        "train": "train/ (or all class folders when there are no split folders) minus any hold-out",
        "val": "val/ if present, else " + _HOLDOUT + "; groups are file stems",
        "test": "test/ if present, else none",
    },
    "list": {
        "train": "lists['train'] minus any hold-out",
        "val": "lists['val'] if given, else " + _HOLDOUT + "; groups are file stems",
        "test": "lists['test'] if given, else none",
    },
    "synthetic-motion": {
        "train": "trainlist0{fold}.txt minus the hold-out (generated, UCF101 layout)",
        "val": _HOLDOUT + "; groups are ClassName_gXX",
        "test": "testlist0{fold}.txt",
    },
}


def _folded() -> list[str]:
    """The formats with official folds: their indexer takes `fold`."""
    return [name for name, indexer in DATASETS.items() if "fold" in inspect.signature(indexer).parameters]


def open_dataset(
    name: str,
    root: str | os.PathLike[str],
    fold: int = 1,
    val_fraction: float = 0.1,
    seed: int = 0,
    **options,
) -> DatasetIndex:
    """Index dataset ``name`` under ``root`` and make it ready for training.

    Videos listed but not on disk are dropped (kept in ``.missing``, with a warning giving
    the count). When the format has no 'val' split, 'val' is a grouped hold-out of
    ``val_fraction`` of 'train' (none when ``val_fraction`` is 0). Every class must keep at
    least one training clip. ``fold`` applies to ucf101 and hmdb51; ``options`` go to the
    indexer. Raises ``ValueError`` for an unknown name and ``DatasetLayoutError`` for a
    root without the expected layout.
    """
    try:
        indexer = DATASETS[name]
    except KeyError:
        raise DatasetError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}") from None
    if name in _folded():
        options["fold"] = fold
    elif fold != 1:
        raise DatasetError(f"{name} has no folds (fold={fold}); folds exist for {', '.join(_folded())}")
    check_options(name, indexer, options)
    index = indexer(Path(root), **options)
    if index.missing:
        per_split = Counter(split for _, split in index.missing)
        logger.warning(
            "%s: %d listed videos are missing on disk and were skipped (%s); e.g. %s",
            index.name,
            len(index.missing),
            ", ".join(f"{s}: {n}" for s, n in sorted(per_split.items())),
            short_list([p for p, _ in index.missing], 3),
        )
    if "val" not in index.splits and "train" in index.splits and val_fraction > 0:
        index.splits["train"], index.splits["val"] = grouped_holdout(index.splits["train"], val_fraction, seed)
        index.val_holdout = True
        if not index.splits["val"]:
            logger.warning(
                "%s: the %.0f %% hold-out came out empty (each class keeps its last group for training): no validation",
                index.name,
                100 * val_fraction,
            )
    check_classes_have_training_clips(index)
    logger.info(
        "%s: %d classes, %s",
        index.name,
        len(index.classes),
        ", ".join(f"{s} {len(v)}" for s, v in index.splits.items()),
    )
    return index
