"""Grouped, class-stratified hold-outs and the "every class can be trained" check."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable

from .types import DatasetError, DatasetIndex, VideoItem, short_list


def grouped_holdout(
    items: Iterable[VideoItem], fraction: float, seed: int = 0
) -> tuple[list[VideoItem], list[VideoItem]]:
    """Split ``items`` into ``(train, val)`` with whole groups in val, about ``fraction`` of each class.

    Deterministic for a given ``seed`` and independent of the input order. A group counts
    towards the class most of its clips belong to; per class, groups are drawn in seeded
    random order while they bring the held-out count closer to ``fraction`` of the class,
    and the last group always stays in train. If a group spanning several classes would
    leave a class without training clips, the smallest such group goes back to train.
    Both lists keep the input order.
    """
    if not 0.0 <= fraction < 1.0:
        raise DatasetError(f"hold-out fraction must be in [0, 1), got {fraction}")
    items = list(items)
    groups: dict[str, list[VideoItem]] = {}
    for item in items:
        groups.setdefault(item.group, []).append(item)
    by_class: dict[int, list[str]] = {}
    for name, members in groups.items():
        votes = Counter(m.label for m in members)
        primary = min(votes, key=lambda lab: (-votes[lab], lab))
        by_class.setdefault(primary, []).append(name)
    class_size = Counter(item.label for item in items)

    held: set[str] = set()
    for label in sorted(by_class):
        names = sorted(by_class[label])
        random.Random(f"{seed}/{label}").shuffle(names)
        target, taken = fraction * class_size[label], 0
        for name in names[:-1]:
            if taken >= target:
                break
            size = len(groups[name])
            if abs(taken + size - target) < abs(taken - target):
                held.add(name)
                taken += size

    train_count = Counter(m.label for name, members in groups.items() if name not in held for m in members)
    for label in sorted(class_size):
        if train_count[label] == 0:
            back = min((n for n in held if any(m.label == label for m in groups[n])), key=lambda n: (len(groups[n]), n))
            held.discard(back)
            train_count.update(m.label for m in groups[back])
    train = [item for item in items if item.group not in held]
    val = [item for item in items if item.group in held]
    return train, val


def check_classes_have_training_clips(index: DatasetIndex) -> None:
    """Raise ``ValueError`` naming every class of ``index`` without a training clip."""
    counts = Counter(item.label for item in index.splits.get("train", []))
    empty = [f"{i}:{name}" for i, name in enumerate(index.classes) if counts[i] == 0]
    if empty:
        hint = f" ({len(index.missing)} listed videos were missing on disk)" if index.missing else ""
        raise DatasetError(
            f"{index.name}: {len(empty)} of {len(index.classes)} classes have no training clips{hint}: "
            f"{short_list(empty, 20)}"
        )
