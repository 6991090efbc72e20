"""`synthetic-captions`: captioned videos in the MSR-VTT layout, generated on the spot, for retrieval.

Each video shows one object (a colour and a shape) moving over a low-contrast texture; its captions name the
colour, the shape and the motion ("a red circle moving left"). Telling captions apart needs appearance and
motion, and the motions come in time-reversed pairs (left/right, up/down, growing/shrinking), so the
direction is only in the frame order. The test split holds one video per (colour, shape, motion), so every
test caption is unique and chance R@1 is 1 / that count.

    root/videos/all/video<N>.mp4
    root/MSRVTT_data.json, MSRVTT_train.9k.csv, MSRVTT_JSFUSION_test.csv   (as MSR-VTT's files)
"""

from __future__ import annotations

import itertools
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .synthetic import _texture, write_video

log = logging.getLogger(__name__)

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 190, 40),
    "blue": (40, 60, 230),
    "yellow": (235, 220, 40),
    "white": (250, 250, 250),
    "black": (10, 10, 10),
}
SHAPES = ("square", "circle", "triangle")
# (forward motion, its time reversal)
MOTION_PAIRS = (("moving left", "moving right"), ("moving up", "moving down"), ("growing", "shrinking"))
MOTIONS = tuple(m for pair in MOTION_PAIRS for m in pair)
FORWARD = tuple(pair[0] for pair in MOTION_PAIRS)
REVERSED = {a: b for pair in MOTION_PAIRS for a, b in (pair, pair[::-1])}
TEMPLATES = ("a {colour} {shape} {motion}", "there is a {colour} {shape} {motion} on the screen")


@dataclass(frozen=True)
class SyntheticCaptionsSpec:
    train_per_combo: int = 5  # training videos per (colour, shape, motion)
    test_per_combo: int = 1  # 1: every test caption is unique
    train_captions: int = len(TEMPLATES)  # captions per training video (1..len(TEMPLATES))
    frames: int = 24
    width: int = 96
    height: int = 72
    fps: int = 25
    seed: int = 0
    version: int = 1  # of the rendering: a set written by another version is regenerated


def combinations() -> list[tuple[str, str, str]]:
    """Every (colour, shape, motion), in a fixed order."""
    return list(itertools.product(COLOURS, SHAPES, MOTIONS))


def caption(colour: str, shape: str, motion: str, template: int = 0) -> str:
    return TEMPLATES[template].format(colour=colour, shape=shape, motion=motion)


def _shape_mask(shape: str, ys: np.ndarray, xs: np.ndarray, cy: float, cx: float, half: float) -> np.ndarray:
    dy, dx = ys - cy, xs - cx
    if shape == "square":
        return (np.abs(dy) <= half) & (np.abs(dx) <= half)
    if shape == "circle":
        return dy**2 + dx**2 <= half**2
    # an upright triangle: apex at the top, base at the bottom
    inside = (dy >= -half) & (dy <= half)
    return inside & (np.abs(dx) <= (dy + half) / 2)


def render(colour: str, shape: str, motion: str, spec: SyntheticCaptionsSpec, rng: np.random.Generator) -> np.ndarray:
    """Frames (T, H, W, 3) uint8 of one video."""
    forward = motion if motion in FORWARD else REVERSED[motion]
    h, w, t = spec.height, spec.width, spec.frames
    background = (112 + _texture(rng, h, w) // 8).astype(np.uint8)
    rgb = np.clip(np.array(COLOURS[colour]) + rng.integers(-15, 16, size=3), 0, 255).astype(np.uint8)
    side = min(h, w) * rng.uniform(0.32, 0.42)
    cy, cx = rng.uniform(0.38, 0.62) * h, rng.uniform(0.38, 0.62) * w
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    frames = np.repeat(background[None], t, axis=0)
    for i, p in enumerate(np.linspace(0.0, 1.0, t)):  # rendering: one mask per frame
        half, y, x = side / 2, cy, cx
        if forward == "moving left":
            x = (1 - p) * (w - side) + half
        elif forward == "moving up":
            y = (1 - p) * (h - side) + half
        else:  # growing
            half = side * (0.3 + 1.2 * p) / 2
        frames[i][_shape_mask(shape, ys, xs, y, x, half)] = rgb
    return frames if motion == forward else np.ascontiguousarray(frames[::-1])


def write_synthetic_captions(root: str | Path, spec: SyntheticCaptionsSpec = SyntheticCaptionsSpec()) -> Path:
    """Generate the set under `root` (skipped when a complete set with the same spec is there)."""
    root = Path(root)
    marker = root / "synthetic-captions.json"
    if marker.is_file() and marker.read_text() == repr(spec):
        return root
    rng = np.random.default_rng(spec.seed)
    combos = combinations()
    sentences, train_ids, test_rows = [], [], []
    n = 0
    for split, per_combo in (("train", spec.train_per_combo), ("test", spec.test_per_combo)):
        for _ in range(per_combo):
            for colour, shape, motion in combos:
                vid = f"video{n}"
                n += 1
                write_video(
                    root / "videos" / "all" / f"{vid}.mp4",
                    render(colour, shape, motion, spec, rng),
                    spec.fps,
                    codec="libx264",
                )
                if split == "train":
                    train_ids.append(vid)
                    sentences += [
                        {"caption": caption(colour, shape, motion, k), "video_id": vid}
                        for k in range(spec.train_captions)
                    ]
                else:
                    text = caption(colour, shape, motion)
                    test_rows.append((f"ret{len(test_rows)}", f"msr{n - 1}", vid, text))
                    sentences.append({"caption": text, "video_id": vid})
    for i, s in enumerate(sentences):
        s["sen_id"] = i
    (root / "MSRVTT_data.json").write_text(
        json.dumps({"info": {"generator": "synthetic-captions"}, "sentences": sentences}), encoding="utf-8"
    )
    (root / "MSRVTT_train.9k.csv").write_text("video_id\n" + "".join(v + "\n" for v in train_ids), encoding="utf-8")
    (root / "MSRVTT_JSFUSION_test.csv").write_text(
        "key,vid_key,video_id,sentence\n" + "".join(",".join(r) + "\n" for r in test_rows), encoding="utf-8"
    )
    marker.write_text(repr(spec))
    log.info("wrote %d synthetic-captions videos under %s", n, root)
    return root
