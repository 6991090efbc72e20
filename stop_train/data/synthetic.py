"""`synthetic-motion`: real video files in the UCF101 layout, generated on the spot.

Classes come in time-reversed pairs over the same scenes (moving left / moving right, ...): the two
videos of a pair hold the same frames in opposite order (MJPEG, so every frame is coded alone), so only
frame order tells them apart. Horizontal flip would turn left into right: the set is not flip-safe.

    root/UCF-101/<Class>/v_<Class>_gXX_cYY.avi
    root/ucfTrainTestlist/classInd.txt, trainlist0N.txt, testlist0N.txt   (CRLF, as the official files)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# (forward class, its time reversal)
PAIRS = (("MovingLeft", "MovingRight"), ("MovingUp", "MovingDown"), ("GrowingBigger", "ShrinkingSmaller"))
CLASSES = tuple(name for pair in PAIRS for name in pair)
FOLDS = 3


@dataclass(frozen=True)
class SyntheticSpec:
    groups: int = 9  # UCF101-style groups gXX; a fold tests on groups // 3 of them
    clips_per_group: int = 9  # scenes per group and class pair
    frames: int = 24  # frames per video
    width: int = 96
    height: int = 72
    fps: int = 25
    seed: int = 0
    version: int = 2  # of the rendering: a set written by another version is regenerated


def _texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth random colour texture (upsampled noise), uint8 (H, W, 3)."""
    coarse = rng.integers(0, 256, size=(height // 8 + 2, width // 8 + 2, 3)).astype(np.float32)
    ys = np.linspace(0, coarse.shape[0] - 1.001, height)
    xs = np.linspace(0, coarse.shape[1] - 1.001, width)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    top = coarse[y0][:, x0] * (1 - fx) + coarse[y0][:, x0 + 1] * fx
    bottom = coarse[y0 + 1][:, x0] * (1 - fx) + coarse[y0 + 1][:, x0 + 1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.uint8)


def render_scene(kind: str, spec: SyntheticSpec, rng: np.random.Generator) -> np.ndarray:
    """Frames (T, H, W, 3) uint8 of the forward class of a pair: an object moving over a texture."""
    h, w, t = spec.height, spec.width, spec.frames
    # low-contrast texture: a full-contrast one lets a small model memorise scenes instead of learning motion
    background = (112 + _texture(rng, h, w) // 8).astype(np.uint8)
    colour = rng.integers(0, 256, size=3).astype(np.uint8)
    side = int(min(h, w) * rng.uniform(0.3, 0.42))
    progress = np.linspace(0.0, 1.0, t)
    frames = np.repeat(background[None], t, axis=0)
    cy, cx = rng.uniform(0.35, 0.65) * h, rng.uniform(0.35, 0.65) * w
    for i, p in enumerate(progress):  # I/O-style rendering
        half = side / 2
        y, x = cy, cx
        if kind == "MovingLeft":
            x = (1 - p) * (w - side) + half * (2 * p - 1) + half
        elif kind == "MovingUp":
            y = (1 - p) * (h - side) + half * (2 * p - 1) + half
        else:  # GrowingBigger
            half = side * (0.3 + 1.2 * p) / 2
        y0, y1 = int(max(0, y - half)), int(min(h, y + half))
        x0, x1 = int(max(0, x - half)), int(min(w, x + half))
        frames[i, y0:y1, x0:x1] = colour
    return frames


def write_video(path: Path, frames: np.ndarray, fps: int, codec: str = "mjpeg") -> None:
    """Write uint8 RGB frames (T, H, W, 3): 'mjpeg' (every frame coded alone, constant quality) in the
    container of `path`'s suffix (AVI here), or 'libx264' (yuv420p, CRF 18; MP4 as MSR-VTT's videos)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        if codec == "mjpeg":
            stream.pix_fmt = "yuvj420p"
            stream.codec_context.qscale = 3  # constant quality: a frame codes the same whatever came before
        else:
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": "18", "preset": "veryfast"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(path)


def _crlf(lines: list[str]) -> str:
    return "".join(line + "\r\n" for line in lines)


def write_synthetic_motion(root: str | Path, spec: SyntheticSpec = SyntheticSpec()) -> Path:
    """Generate the data set under `root` (skipped when a complete set with the same spec is there)."""
    root = Path(root)
    marker = root / "synthetic-motion.json"
    if marker.is_file() and marker.read_text() == repr(spec):
        return root
    rng = np.random.default_rng(spec.seed)
    videos = root / "UCF-101"
    names: list[tuple[str, int]] = []  # (relative path, group)
    for g in range(1, spec.groups + 1):
        for c in range(1, spec.clips_per_group + 1):
            for forward, backward in PAIRS:
                frames = render_scene(forward, spec, rng)
                for name, clip in ((forward, frames), (backward, frames[::-1])):
                    rel = f"{name}/v_{name}_g{g:02d}_c{c:02d}.avi"
                    write_video(videos / rel, np.ascontiguousarray(clip), spec.fps)
                    names.append((rel, g))
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True, exist_ok=True)
    (lists / "classInd.txt").write_bytes(_crlf([f"{i + 1} {n}" for i, n in enumerate(CLASSES)]).encode())
    per_fold = max(1, spec.groups // FOLDS)
    for fold in range(1, FOLDS + 1):
        test_groups = set(range((fold - 1) * per_fold + 1, fold * per_fold + 1))
        train = [f"{rel} {CLASSES.index(rel.split('/')[0]) + 1}" for rel, g in names if g not in test_groups]
        test = [rel for rel, g in names if g in test_groups]
        (lists / f"trainlist0{fold}.txt").write_bytes(_crlf(train).encode())
        (lists / f"testlist0{fold}.txt").write_bytes(_crlf(test).encode())
    marker.write_text(repr(spec))
    log.info("wrote %d synthetic-motion videos under %s", len(names), root)
    return root
