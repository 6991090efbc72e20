"""Every reader of the one frame source against ffmpeg's CLI, on one file: equal, or one clear refusal.

`check(path)` compares, with ffmpeg's frames and times (`ffmpeg -fps_mode passthrough`, with
``scale=W:H`` where the pixels are not square):
- `probe_exact` (the clip readers' index; the live reader uses `probe`): the frame count, the display size,
  every frame's time;
- the live reader (`FileSource.frames`, as `stop-recognize` and the app play a file): every frame and time;
- `read_frames` (training, `--protocol eval`, teaching and the search indexer read clips through it) on
  random index sets, single frames and clips;
- the app's seek (`FileSource.seek`) to random times: the first frame at or after each;
- `eval_views` over a time range (teaching's example reader, the search indexer's windows): the model's input
  from the reference frames at the same indices.
Times are compared where ffmpeg's go forward; where they go back (rounded B-frame stamps), ours must not.
Pixels must be equal (within one rounding step) except in the GOPs where the decoder concealed damage: a
concealed picture depends on the decoder's threading (FFmpeg's frame threads conceal differently from run to
run) and version, so there only the frame count and times are compared.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from videofiles import ffmpeg_exe

COLOUR_TOL = 2
TIME_TOL_S = 1e-3


@dataclass
class Result:
    name: str
    outcome: str  # 'packets', 'decoding', 'refused' or 'MISMATCH'
    detail: str = ""
    problems: list[str] = field(default_factory=list)


def reference(path: Path, size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """ffmpeg's frames (N, H, W, 3), their times (s after the first) and its log; `size` (W, H) scales first."""
    vf = "showinfo" if size is None else f"showinfo,scale={size[0]}:{size[1]}"
    cmd = [
        ffmpeg_exe(),
        "-hide_banner",
        "-i",
        str(path),
        "-map",
        "0:v:0",
        "-an",
        "-sn",
        "-dn",
        "-fps_mode",
        "passthrough",
        "-vf",
        vf,
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-",
    ]
    run = subprocess.run(cmd, capture_output=True)
    log = run.stderr.decode(errors="replace")
    times = np.asarray([float(t) for t in re.findall(r"\bpts_time:\s*(-?[\d.]+)", log)])
    if size is None:
        found = re.findall(r" s:(\d+)x(\d+) ", log)
        size = (int(found[0][0]), int(found[0][1])) if found else (1, 1)
    frames = np.frombuffer(run.stdout, dtype=np.uint8)
    frames = frames[: frames.size // (size[0] * size[1] * 3) * size[0] * size[1] * 3].reshape(-1, size[1], size[0], 3)
    times = times[: len(frames)]
    return frames, times - (times[0] if len(times) else 0.0), log


def _differ(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Indices of the frames of a and b (same shape) that differ by more than COLOUR_TOL."""
    d = np.abs(a.astype(np.int16) - b.astype(np.int16)).reshape(len(a), -1).max(axis=1)
    return np.flatnonzero(d > COLOUR_TOL)


def _times_ok(ours: np.ndarray, ref: np.ndarray) -> bool:
    if len(ours) != len(ref) or np.any(np.diff(ours) < 0):
        return False
    forward = np.concatenate([[True], np.diff(ref) >= 0]) & np.concatenate([np.diff(ref) >= 0, [True]])
    return bool(np.all(np.abs(ours - ref)[forward] <= TIME_TOL_S))


def _damaged_gops(path: Path, count: int) -> np.ndarray:
    """(count,) bool: the frames in a GOP (from one key frame to the next, output order) holding a frame the
    decoder flags as concealed, or where a packet the decoder rejected would have been shown (the pictures that
    refer to it are concealed too, and ffmpeg's own output there changes from run to run)."""
    from stop_train.video.index import probe
    from stop_train.video.libav import decoded, open_video

    container, stream = open_video(path)
    with container:
        rows = [(f.key_frame, f.is_corrupt, f.pts) for f in decoded(container, stream)]
    flags = [[key, corrupt] for key, corrupt, _ in rows]
    promised = probe(path)
    if promised.method == "packets" and promised.frames > len(rows):  # packets the decoder rejected
        shown = np.asarray([pts for *_, pts in rows], dtype=np.float64)
        for pts in np.setdiff1d(promised.frame_pts(), shown):
            flags[min(int(np.searchsorted(shown, pts)), len(flags) - 1)][1] = True
    out, gop, hit = np.zeros(count, dtype=bool), 0, False
    for i, (key, corrupt) in enumerate(flags[:count] + [(True, False)]):
        if key or i == len(flags[:count]):
            out[gop:i] = hit
            gop, hit = i, False
        hit |= corrupt
    return out


def check(path: Path, seed: int = 0) -> Result:
    """Compare every reader with ffmpeg on `path` (see the module doc)."""
    from stop_train.video.decode import VideoReadError, probe_exact
    from stop_train.video.source import FileSource

    path = Path(path)
    try:
        info = probe_exact(path)
    except VideoReadError as err:
        ref, _, _ = reference(path)
        outcome = "refused" if len(ref) == 0 else "MISMATCH"
        return Result(path.name, outcome, f"{err}" + ("" if len(ref) == 0 else f"; ffmpeg decodes {len(ref)} frames"))
    square = info.sar[0] == info.sar[1]
    ref, ref_t, _ = reference(path, None if square else (info.width, info.height))  # upright files here
    res = Result(path.name, info.method, info.why)
    if info.frames != len(ref) or (info.height, info.width) != ref.shape[1:3]:
        res.problems.append(
            f"probe: {info.frames} frames {info.width}x{info.height}, ffmpeg {len(ref)} frames "
            f"{ref.shape[2] if ref.ndim == 4 else '?'}x{ref.shape[1] if ref.ndim == 4 else '?'}"
        )
        res.outcome = "MISMATCH"
        return res
    if not _times_ok(info.times(), ref_t):
        res.problems.append(f"probe times differ by up to {np.abs(info.times() - ref_t).max():.3f} s")
    clean = ~_damaged_gops(path, info.frames)
    frames = list(FileSource(path).frames())
    live, live_t = np.stack([f.image for f in frames]), np.array([f.t for f in frames])
    if live.shape != ref.shape:
        res.problems.append(f"live reader: {live.shape} vs {ref.shape}")
    else:
        bad = _differ(live[clean], ref[clean])
        if len(bad):
            res.problems.append(f"live reader: frames {bad[:6].tolist()} differ from ffmpeg")
        if not _times_ok(live_t, ref_t):
            res.problems.append("live reader: times differ")
        rng = np.random.default_rng(seed)
        res.problems += _clip_reads(path, info, live, clean, rng) + _seeks(path, info, live, clean, rng)
        res.problems += _views(path, info, live, clean)
    if res.problems:
        res.outcome = "MISMATCH"
    return res


def _clip_reads(path, info, live, clean, rng) -> list[str]:
    """read_frames on single frames and 8-frame sets (with and without repeats) = the live reader's frames."""
    from stop_train.video.decode import VideoReadError, read_frames

    out, n = [], info.frames
    for k in range(12):
        idx = [int(rng.integers(n))] if k < 4 else sorted(rng.choice(n, size=min(8, n), replace=k % 2 == 0).tolist())
        try:
            got = read_frames(path, idx, info)
        except VideoReadError as err:
            out.append(f"read_frames {idx}: {err}")
            continue
        if not np.array_equal(got[clean[idx]], live[idx][clean[idx]]):
            out.append(f"read_frames {idx}: not the live reader's frames")
    return out


def _seeks(path, info, live, clean, rng) -> list[str]:
    """The player's seek to random times (backwards): the first frame at or after each, with its time."""
    from stop_train.video.source import FileSource

    out, times = [], info.times()
    seeker = FileSource(path)
    frames = seeker.frames()
    next(frames)
    for target in sorted(rng.uniform(0, times[-1], 3), reverse=True):
        seeker.seek(float(target))
        frame = next(frames, None)
        want = int(np.searchsorted(times, target - 1e-6))
        if frame is None or frame.t != times[want] or (clean[want] and not np.array_equal(frame.image, live[want])):
            out.append(f"seek to {target:.3f} s: not frame {want}")
    frames.close()
    return out


def _views(path, info, live, clean) -> list[str]:
    """eval_views over the last 3/4 of the file (teaching's example reader, the search indexer's windows)."""
    from stop_train.video import PreprocessCfg, SamplingCfg, prepare_clip
    from stop_train.video.decode import VideoReadError
    from stop_train.video.sampling import eval_view_indices
    from stop_train.video.views import eval_views, frames_in_range

    sampling, pre, times = SamplingCfg(frames=4), PreprocessCfg(size=32), info.times()
    start, end = float(times[info.frames // 4]), float(times[-1])
    try:
        views = eval_views(path, info, sampling, pre, start, end)
    except (VideoReadError, ValueError) as err:
        return [f"eval_views: {err}"]
    kept = frames_in_range(times, start, end)
    idx = eval_view_indices(sampling, times[kept])[0] + kept.start
    if clean[idx].all() and not np.array_equal(views[0], prepare_clip(live[idx], pre)):
        return ["eval_views over a range: not the live reader's frames"]
    return []
