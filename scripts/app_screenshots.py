"""The README's stop-gui screenshots: the make-demo model on a video made of synthetic-motion test clips of
three classes, one after the other, taken by `stop-gui --screenshot` at 1280x720 and 1366x600.

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

CLASSES = ("MovingLeft", "GrowingBigger", "MovingUp")
SIZES = {"stop-gui.png": "1280x720", "stop-gui-1366x600.png": "1366x600"}


def montage(data: Path, out: Path, clips_per_class: int = 4) -> float:
    """Concatenate test clips (groups g01-g03) class by class; returns the length in seconds."""
    parts, fps = [], 25.0
    for name in CLASSES:
        paths = sorted((data / "UCF-101" / name).glob("v_*_g0[1-3]_c*.avi"))[:clips_per_class]
        if len(paths) < clips_per_class:
            sys.exit(f"app_screenshots: fewer than {clips_per_class} {name} clips under {data} (run make demo)")
        for path in paths:
            info = probe(path)
            fps = info.fps
            parts.append(read_frames(path, np.arange(info.frames), info))
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
    video = work / "three-actions.avi"
    length = montage(args.data, video)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(work)}
    quit_after = length * 5 / 6  # within the last action: its event is still ongoing
    for name, size in SIZES.items():
        cmd = [str(Path(sys.executable).parent / "stop-gui"), "--model", str(args.model), "--backend", "cpu",
               "--source", str(video), "--size", size, "--screenshot", str(args.out_dir / name),
               "--quit-after", f"{quit_after:.1f}"]
        subprocess.run(cmd, env=env, check=True)
        print(f"wrote {args.out_dir / name} ({size}, {quit_after:.1f} s into a {length:.1f} s video)")


if __name__ == "__main__":
    main()
