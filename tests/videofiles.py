"""Generated test videos whose frames carry their own index, written by the ffmpeg CLI (imageio-ffmpeg's
binary, or `ffmpeg` on PATH when it is recent enough), and ffmpeg's own decoding of them as the reference."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np

BITS = 9  # frame indices up to 511


def ffmpeg_exe() -> str:
    """An ffmpeg >= 5.1 (for -fps_mode): imageio-ffmpeg's bundled binary, else the one on PATH."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        exe = shutil.which("ffmpeg")
        if exe is None:
            raise RuntimeError("no ffmpeg: pip install imageio-ffmpeg") from None
        return exe


def pattern(index: int, height: int, width: int) -> np.ndarray:
    """RGB uint8 (H, W, 3): the index in BITS vertical stripes (white = 1) over the lower 3/4, a red block
    in the top-left corner (orientation, RGB order) and a blue one in the top-right half of the top band."""
    img = np.zeros((height, width, 3), dtype=np.uint8)
    top = height // 4
    edges = np.linspace(0, width, BITS + 1).astype(int)
    for b in range(BITS):
        if index >> (BITS - 1 - b) & 1:
            img[top:, edges[b] : edges[b + 1]] = 235
    img[:top, : width // 4] = (220, 20, 20)
    img[:top, width // 2 : width // 2 + width // 8] = (20, 20, 220)
    return img


def index_of(img: np.ndarray) -> int:
    """The index a `pattern` frame carries (upright frames)."""
    height, width = img.shape[:2]
    edges = np.linspace(0, width, BITS + 1).astype(int)
    lum = img[height // 4 + 2 :, :, :].mean(axis=(0, 2))
    bits = [lum[edges[b] + 2 : edges[b + 1] - 2].mean() > 128 for b in range(BITS)]
    return int(sum(int(v) << (BITS - 1 - b) for b, v in enumerate(bits)))


def encode(
    path: Path, frames: int, size=(96, 64), rate: str = "30", out_args=(), in_args=(), vfr_at: int | None = None
) -> Path:
    """Write `frames` pattern frames (stored size (W, H)) with ffmpeg; `vfr_at` = K makes a variable-rate file:
    frames before K at 10 fps, the rest at 30 fps (timestamps kept with -fps_mode passthrough)."""
    width, height = size
    raw = b"".join(pattern(i, height, width).tobytes() for i in range(frames))
    cmd = [
        ffmpeg_exe(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{width}x{height}",
        "-r",
        rate,
        *in_args,
        "-i",
        "-",
    ]
    if vfr_at is not None:
        cmd += [
            "-vf",
            f"setpts=if(lt(N\\,{vfr_at})\\,N/10\\,{vfr_at}/10+(N-{vfr_at})/30)/TB",
            "-fps_mode",
            "passthrough",
        ]
    subprocess.run([*cmd, *out_args, str(path)], input=raw, check=True, capture_output=True)
    return path


def ffmpeg(*args: str) -> None:
    """Run the ffmpeg CLI quietly; raises CalledProcessError."""
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *map(str, args)], check=True, capture_output=True
    )


def remux(src: Path, dst: Path, *args: str, before_input=()) -> Path:
    subprocess.run(
        [
            ffmpeg_exe(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            *before_input,
            "-i",
            str(src),
            "-c",
            "copy",
            *args,
            str(dst),
        ],
        check=True,
        capture_output=True,
    )
    return dst


def ffmpeg_frames(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """ffmpeg's frames (N, H, W, 3) RGB and their times in seconds after the first:
    `ffmpeg -i FILE -fps_mode passthrough -f rawvideo -pix_fmt rgb24 -` with showinfo for the times."""
    cmd = [
        ffmpeg_exe(),
        "-hide_banner",
        "-i",
        str(path),
        "-an",
        "-sn",
        "-dn",
        "-fps_mode",
        "passthrough",
        "-vf",
        "showinfo",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-",
    ]
    run = subprocess.run(cmd, capture_output=True, check=True)
    log = run.stderr.decode(errors="replace")
    size = re.findall(r"Stream #0:\d+.*?-> .*?rgb24.*?, (\d+)x(\d+)", log, flags=re.S)
    times = [float(t) for t in re.findall(r"\bpts_time:\s*(-?[\d.]+)", log)]
    width, height = (int(v) for v in (size[-1] if size else _showinfo_size(log)))
    frames = np.frombuffer(run.stdout, dtype=np.uint8).reshape(-1, height, width, 3)
    times = np.asarray(times[: len(frames)])
    return frames, times - (times[0] if len(times) else 0.0)


def _showinfo_size(log: str) -> tuple[str, str]:
    (w, h), *_ = re.findall(r" s:(\d+)x(\d+) ", log)
    return w, h
