"""Mean and spread of test metrics over several runs (the three official UCF101 / HMDB51 folds)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

KEYS = ("top1", "top5", "mean_class_acc")


def average_folds(runs: list[Path], split: str = "test") -> dict:
    """Read `<run>/<split>_metrics.json` of every run -> {key: {mean, std, folds}}; missing files raise."""
    values = {k: [] for k in KEYS}
    for run in runs:
        path = Path(run) / f"{split}_metrics.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: evaluate that run first (stop-train eval {run})")
        metrics = json.loads(path.read_text())
        for k in KEYS:
            values[k].append(metrics[k])
    return {k: {"mean": float(np.mean(v)), "std": float(np.std(v)), "folds": v} for k, v in values.items()} | {
        "runs": [str(r) for r in runs]
    }
