"""Small stand-ins for the real datasets, in their real on-disk layouts, with real (tiny) videos.

Every video is a hard link to one of a few rendered synthetic-motion clips (MJPEG in AVI; FFmpeg reads a
file by its content, so the `.mp4` / `.webm` names of the Kinetics-400 and SSv2 layouts decode the same).
The class lists are the real ones, so the indexers' checks against `models/labels/` apply.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np

from stop_train.data.synthetic import PAIRS, SyntheticSpec, render_scene, write_video
from stop_train.labels import load_labels

SPEC = SyntheticSpec(frames=16, width=40, height=30, fps=10)


class ClipPool:
    """A few rendered clips; `place(path)` links (or copies) clip `i` to `path`."""

    def __init__(self, folder: Path, count: int = 6):
        rng = np.random.default_rng(0)
        self.clips = []
        for i in range(count):
            forward, _ = PAIRS[i % len(PAIRS)]
            frames = render_scene(forward, SPEC, rng)
            path = folder / f"clip{i}.avi"
            write_video(path, np.ascontiguousarray(frames if i < len(PAIRS) else frames[::-1]), SPEC.fps)
            self.clips.append(path)

    def place(self, path: Path, i: int) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(self.clips[i % len(self.clips)], path)
        except OSError:
            shutil.copyfile(self.clips[i % len(self.clips)], path)
        return path


def _crlf(lines) -> bytes:
    return "".join(line + "\r\n" for line in lines).encode()


def write_ucf101(root: Path, pool: ClipPool, test_classes: int = 10) -> Path:
    """UCF-101/<Class>/v_<Class>_gXX_c01.avi and ucfTrainTestlist/ (fold 1): 2 train groups per class and a
    test group for the first `test_classes` classes."""
    classes = load_labels("ucf101")
    train, test = [], []
    for i, c in enumerate(classes):
        for g, split in ((8, train), (9, train), (1, test))[: 3 if i < test_classes else 2]:
            rel = f"{c}/v_{c}_g{g:02d}_c01.avi"
            pool.place(root / "UCF-101" / rel, i + g)
            split.append(f"{rel} {i + 1}" if split is train else rel)
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True, exist_ok=True)
    (lists / "classInd.txt").write_bytes(_crlf(f"{i + 1} {c}" for i, c in enumerate(classes)))
    (lists / "trainlist01.txt").write_bytes(_crlf(train))
    (lists / "testlist01.txt").write_bytes(_crlf(test))
    return root


def write_hmdb51(root: Path, pool: ClipPool, test_classes: int = 10) -> Path:
    """<class>/<clip>.avi and testTrainMulti_7030_splits/<class>_test_split1.txt: 2 train source videos per
    class and a test video (tag 2; else unused, tag 0) for the first `test_classes` classes."""
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True, exist_ok=True)
    for i, c in enumerate(load_labels("hmdb51")):
        names = [
            (f"Source_A_{c}_u_nm_np1_fr_goo_0.avi", 1),
            (f"Source_B_{c}_u_nm_np1_fr_goo_0.avi", 1),
            (f"Source_C_{c}_u_nm_np1_fr_goo_0.avi", 2 if i < test_classes else 0),
        ]
        (splits / f"{c}_test_split1.txt").write_text("".join(f"{n} {t} \n" for n, t in names))
        for k, (name, _) in enumerate(names):
            pool.place(root / c / name, i + k)
    return root


def write_kinetics400(root: Path, pool: ClipPool, val_classes: int = 20) -> Path:
    """annotations/{train,validate}.csv and <root>/videos/{train,val}/<label>/<id>_<start>_<end>.mp4: one
    training clip per class, one validation clip for the first `val_classes` classes."""
    classes = load_labels("kinetics400")
    ann = root / "annotations"
    ann.mkdir(parents=True, exist_ok=True)
    for split, folder, count in (("train", "train", len(classes)), ("val", "val", val_classes)):
        rows = []
        for i, c in enumerate(classes[:count]):
            yid = f"{split[:2]}{i:04d}xYz-_"
            rows.append({"label": c, "youtube_id": yid, "time_start": 10, "time_end": 20, "split": split})
            pool.place(root / "videos" / folder / c / f"{yid}_000010_000020.mp4", i)
        name = "train.csv" if split == "train" else "validate.csv"
        with open(ann / name, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return root


def write_ssv2(
    root: Path, pool: ClipPool, val_classes: int = 20, folder: str = "videos_mp4", ext: str = ".mp4"
) -> Path:
    """The 20BN JSON annotations and <folder>/<id><ext> (a re-encoded copy): one training video per class,
    one validation video for the first `val_classes` classes."""
    classes = load_labels("ssv2")
    root.mkdir(parents=True, exist_ok=True)
    (root / "something-something-v2-labels.json").write_text(json.dumps({t: str(i) for i, t in enumerate(classes)}))
    for split, count, offset in (("train", len(classes), 1000), ("validation", val_classes, 5000)):
        records = []
        for i, t in enumerate(classes[:count]):
            records.append({"id": str(offset + i), "label": t.lower(), "template": t, "placeholders": []})
            pool.place(root / folder / f"{offset + i}{ext}", i)
        (root / f"something-something-v2-{split}.json").write_text(json.dumps(records))
    return root


def write_list(root: Path, pool: ClipPool, classes=("open valve", "close valve", "tighten bolt")) -> Path:
    """clips/<n>.avi with train.txt and val.txt of '<path> <class name>' lines (TAB-separated: names with spaces)."""
    lines = {"train": [], "val": []}
    for i, c in enumerate(classes):
        for k, split in enumerate(("train", "train", "train", "val")):
            rel = f"clips/{c.replace(' ', '_')}_{k}.avi"
            pool.place(root / rel, i)
            lines[split].append(f"{rel}\t{c}")
    for split, rows in lines.items():
        (root / f"{split}.txt").write_text("\n".join(rows) + "\n")
    return root


def write_folder(root: Path, pool: ClipPool, classes=("waving", "clapping", "jumping")) -> Path:
    """<class>/<n>.mp4, no split folders."""
    for i, c in enumerate(classes):
        for k in range(3):
            pool.place(root / c / f"{c}_{k}.mp4", i + k)
    return root
