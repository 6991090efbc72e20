"""The README's stop-gui screenshots: the make-demo model on synthetic-motion test clips of four classes
played one after another (each followed by half a second of its last frame held still), taken by
`stop-gui --screenshot` at 1280x720 and 1366x600, predicting every 0.1 s with events of >= 0.2 s.

    .venv/bin/python scripts/app_screenshots.py runs/demo-XXXX/export/model.onnx [--data runs/.synthetic-motion]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from stop_train.data.synthetic import write_video
from stop_train.video.decode import probe, read_frames

CLASSES = ("MovingLeft", "GrowingBigger", "MovingUp", "ShrinkingSmaller")
SIZES = {"stop-gui.png": "1280x720", "stop-gui-1366x600.png": "1366x600"}


def montage(data: Path, out: Path, hold_s: float = 0.5) -> float:
    """One test clip (group g02) per class, each followed by its last frame held `hold_s`; returns the length
    in seconds. The model reads the cut to the next clip as motion too (an object vanishing: shrinking)."""
    parts, fps = [], 25.0
    for index, name in enumerate(CLASSES):
        paths = sorted((data / "UCF-101" / name).glob("v_*_g02_c*.avi"))
        if len(paths) <= index:
            sys.exit(f"app_screenshots: no {name} test clips under {data} (run make demo)")
        info = probe(paths[index])
        fps = info.fps
        clip = read_frames(paths[index], np.arange(info.frames), info)
        parts += [clip, np.repeat(clip[-1:], int(round(hold_s * fps)), axis=0)]
    frames = np.concatenate(parts)
    write_video(out, frames, fps=int(round(fps)))
    return len(frames) / fps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", type=Path)
    p.add_argument("--data", type=Path, default=Path("runs/.synthetic-motion"))
    p.add_argument("--out-dir", type=Path, default=Path("docs"))
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="stop-shots-"))
    video = work / "four-clips.avi"
    length = montage(args.data, video)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(work)}
    quit_after = length - 0.7  # within the last clip: its event is still ongoing
    for name, size in SIZES.items():
        cmd = [
            str(Path(sys.executable).parent / "stop-gui"),
            "--model",
            str(args.model),
            "--backend",
            "cpu",
            "--source",
            str(video),
            "--size",
            size,
            "--predict-every",
            "0.1",
            "--min-duration",
            "0.2",
            "--screenshot",
            str(args.out_dir / name),
            "--quit-after",
            f"{quit_after:.1f}",
        ]
        subprocess.run(cmd, env=env, check=True)
        print(f"wrote {args.out_dir / name} ({size}, {quit_after:.1f} s into a {length:.1f} s video)")


if __name__ == "__main__":
    main()
