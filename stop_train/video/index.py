"""The frame index of a video file (torch-free): how many frames the decoder outputs, each one's time, and
where a reader may seek. One numbering for every consumer: frame *i* is the *i*-th frame of
``ffmpeg -i FILE -fps_mode passthrough`` (every frame the decoder outputs, edit lists applied).

`probe` builds the index from the packets (one demuxing pass; decoding only the first frame and the last
GOP) where the packets provably map one-to-one onto decoded frames: every packet has its own timestamp, none
repeats, decoding time never goes back, the first packet is a key frame and no picture is shown before it,
no packet is flagged corrupt or packs two pictures (DivX-style packed B-frames), and the last GOP decodes to
exactly the packets' last frames. Anywhere else it decodes every frame once (`index_by_decoding`;
`VideoInfo.why` says which rule failed): times are then the decoder's best-effort timestamps as ffmpeg's
CLI takes them (``best_effort_timestamp``; a frame without one follows the last by its duration), seek targets
are the key frames that decoded clean, and a file whose frames do not each carry their own increasing
timestamp is read by counting from the start.

Times never go back: where timestamps do (joined recordings, rounded B-frame stamps), time goes on one frame
duration after the last, as `source.FrameClock` does for streams. Repeated stamps stay repeated.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, replace
from fractions import Fraction

import numpy as np

from .libav import (
    VideoReadError,
    check_file,
    decoded,
    open_video,
    orientation_of,
    reason,
    run_after_seek,
    sample_aspect_ratio,
    square_size,
)

log = logging.getLogger(__name__)

PROBE_VERSION = 4  # bump when VideoInfo changes meaning: cached probes of older versions are redone
DEFAULT_FPS = 25.0  # only for files whose frames carry no timestamps and no rate at all
_JITTER = 0.02  # a rate is constant when every timestamp lies within 2 % of a frame (or 1 tick) of a line
_VOP = b"\x00\x00\x01\xb6"  # MPEG-4 Part 2 picture start code
_JOIN_S = 1.0  # a timestamp going back by more than this is a join of two recordings


@dataclass(frozen=True)
class VideoInfo:
    """What `probe` learns about a video file.

    Timestamps are in units of `time_base` seconds. A constant-rate file stores only `start_pts` and `step`
    (frame *i* at ``start_pts + i * step``); any other stores every frame's time in `pts` (non-decreasing).
    `seekable`: readers may seek and know each decoded frame by its timestamp (else they count from frame 0).
    """

    frames: int  # frames the decoder outputs
    fps: float  # frames per second: 1 / median frame duration
    width: int  # display: square pixels, display orientation
    height: int
    time_base: tuple[int, int] = (1, 1)  # (num, den) of the stream's time base
    start_pts: int = 0  # timestamp of frame 0
    step: float = 0.0  # constant-rate frame duration in time_base units (0: see pts)
    pts: tuple[float, ...] | None = None  # every frame's time, non-decreasing, where the rate is not constant
    keyframes: tuple[int, ...] | None = (0,)  # seek targets (frame indices); None: every frame (all-intra)
    seekable: bool = True
    method: str = "packets"  # how the index was built: 'packets' or 'decoding'
    why: str = ""  # for 'decoding': what the packets could not prove
    sar: tuple[int, int] = (1, 1)  # sample aspect ratio applied to the stored pictures

    def frame_pts(self) -> np.ndarray:
        """(frames,) float64 timestamps in time_base units."""
        if self.pts is not None:
            return np.asarray(self.pts, dtype=np.float64)
        return self.start_pts + self.step * np.arange(self.frames, dtype=np.float64)

    def times(self) -> np.ndarray:
        """(frames,) seconds of each frame after frame 0, non-decreasing."""
        ticks = self.frame_pts()
        return (ticks - ticks[0]) * self.time_base[0] / self.time_base[1]

    @property
    def duration_s(self) -> float:
        """Time from the first frame to the end of the last (one median frame duration after its start)."""
        return float(self.times()[-1]) + 1.0 / self.fps

    def index_of(self, pts: int | None) -> int | None:
        """The index of the frame with timestamp `pts`, or None when no frame has it (or frames are not
        known by their timestamps)."""
        if pts is None or not self.seekable:
            return None
        if self.pts is None:
            i = round((pts - self.start_pts) / self.step)
            ok = 0 <= i < self.frames and abs(pts - self.start_pts - i * self.step) <= max(1.0, _JITTER * self.step)
            return i if ok else None
        i = int(np.searchsorted(self.pts, pts))
        return i if i < self.frames and self.pts[i] == pts else None

    def index_at(self, seconds: float) -> int:
        """The first frame shown at or after `seconds` (the last frame for times past the end)."""
        return int(min(np.searchsorted(self.times(), seconds - 1e-6, side="left"), self.frames - 1))

    def key_indices(self) -> np.ndarray:
        """Indices of the seek targets, sorted (always starting with 0: decoding from the start)."""
        if not self.seekable:
            return np.zeros(1, dtype=np.int64)
        return np.arange(self.frames) if self.keyframes is None else np.asarray(self.keyframes, dtype=np.int64)

    def to_dict(self) -> dict:
        return {"version": PROBE_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict) -> VideoInfo:
        """Raises ValueError for a dict written by another probe version."""
        if d.get("version") != PROBE_VERSION:
            raise ValueError(f"probe version {d.get('version')} is not {PROBE_VERSION}")
        fields = {k: v for k, v in d.items() if k != "version"}
        for key in ("time_base", "pts", "keyframes", "sar"):
            if fields.get(key) is not None:
                fields[key] = tuple(fields[key])
        return cls(**fields)


@dataclass(frozen=True)
class _Head:
    """What the first decoded frame and the stream headers say."""

    width: int  # display
    height: int
    time_base: tuple[int, int]
    fps: float  # from the header (for files without usable timestamps)
    sar: Fraction
    codec: str


def probe(path: str | os.PathLike) -> VideoInfo:
    """The frame index of a video file (see the module doc). Raises VideoReadError with the reason."""
    path = check_file(path)
    head = _head(path)
    packets = _packets(path, head)
    why = _unproven(packets)
    if not why:
        info = _from_packets(packets, head)
        why = _tail_mismatch(path, info)
        if not why:
            return info
    log.debug("%s: indexing by decoding (%s)", path, why)
    return index_by_decoding(path, why, head)


def index_by_decoding(path: str | os.PathLike, why: str, head: _Head | None = None) -> VideoInfo:
    """The frame index from decoding every frame once (`why`: what the packets could not prove)."""
    path = check_file(path)
    head = head or _head(path)
    container, stream = open_video(path)
    with container:
        rows = [(f.pts, f.dts, f.duration, f.key_frame, f.is_corrupt) for f in decoded(container, stream)]
    if not rows:
        raise VideoReadError(f"no frame decodes ({why})")
    seconds = head.time_base[0] / head.time_base[1]
    ticks, own = _best_effort(rows, 1.0 / head.fps / seconds, seconds)
    clean_keys = [i for i, r in enumerate(rows) if i == 0 or (r[3] and not r[4])]
    return _timing(ticks, clean_keys, head, seekable=own, method="decoding", why=why)


def probe_exact(path: str | os.PathLike) -> VideoInfo:
    """`probe`, verified by decoding every frame once (`verify_by_decoding`): the decoder's own numbering even
    where it rejects a packet mid-file, which the packets cannot show. The clip readers' index (training,
    evaluation, teaching); it costs one decoding pass, about 6-8x `probe` for 320x240 H.264
    (`benchmarks/corpus_check.py`). Raises VideoReadError with the reason."""
    return verify_by_decoding(path, probe(path))


def verify_by_decoding(path: str | os.PathLike, info: VideoInfo) -> VideoInfo:
    """`info` where decoding every frame once gives the same frames at the same times; else the index decoding
    gives, its `why` saying what differed. The packets cannot show a packet the decoder rejects in the middle
    of a file (a damaged slice): ffmpeg drops its frame, and only decoding counts it (`stop-train check --decode`)."""
    if info.method != "packets":
        return info
    redone = index_by_decoding(path, "")
    if redone.frames == info.frames and np.allclose(redone.times(), info.times(), atol=1e-3):
        return info
    why = (
        f"decoding gives {redone.frames} frames where the packets promise {info.frames} (packets the decoder rejects)"
        if redone.frames != info.frames
        else "decoding gives other frame times than the packets"
    )
    return replace(redone, why=why)


# ----------------------------------------------------------------------------------------------- internals
def _head(path) -> _Head:
    container, stream = open_video(path)
    with container:
        first = next(iter(decoded(container, stream)), None)
        if first is None:
            raise VideoReadError(f"no frame decodes ({_why_nothing_decodes(path)})")
        sar = sample_aspect_ratio(stream)
        tb = stream.time_base
        rate = next(
            (
                float(r)
                for r in (stream.average_rate, stream.guessed_rate, stream.base_rate)
                if r is not None and float(r) > 0
            ),
            DEFAULT_FPS,
        )
        codec = stream.codec_context.name
    width, height = square_size(first.width, first.height, sar)
    height, width = orientation_of(first).display_shape(height, width)
    return _Head(width, height, (tb.numerator, tb.denominator) if tb else (1, 1), rate, sar, codec)


def _why_nothing_decodes(path) -> str:
    container, stream = open_video(path)
    with container:
        try:
            packets = [p for p in container.demux(stream) if p.size]
        except Exception:  # noqa: BLE001 - demuxing fails too: say what decoding said
            return "every packet is damaged"
    if not packets:
        return "the video stream holds no packets"
    if not any(p.is_keyframe for p in packets):
        return f"none of its {len(packets)} packets is a key frame: a cut that starts after the last key frame"
    return "every packet is damaged"


def _packets(path, head: _Head) -> list[tuple]:
    """(pts, dts, key, corrupt, packed) of every packet the decoder is given, in decoding order."""
    container, stream = open_video(path)
    rows = []
    with container:
        try:
            for packet in container.demux(stream):
                if packet.size == 0 or packet.is_discard:
                    continue
                packed = head.codec == "mpeg4" and bytes(packet).count(_VOP) > 1
                rows.append((packet.pts, packet.dts, packet.is_keyframe, packet.is_corrupt, packed))
        except Exception as err:  # noqa: BLE001 - a truncated file: keep what was demuxed, as ffmpeg does
            log.info("%s: demuxing stopped early (%s)", path, reason(err))
    if not rows:
        raise VideoReadError("no frames")
    return rows


def _unproven(rows: list[tuple]) -> str:
    """Why the packets may not map one-to-one onto decoded frames ('' when they do)."""
    pts = [r[0] for r in rows]
    dts = [r[1] for r in rows if r[1] is not None]
    if any(p is None for p in pts):
        return "packets without timestamps"
    if len(set(pts)) != len(pts):
        return "repeated timestamps"
    if any(b < a for a, b in zip(dts, dts[1:])):
        return "timestamps that go back (a joined recording)"
    if not rows[0][2]:
        return "starts between key frames (a cut)"
    if min(pts) < rows[0][0]:
        return "pictures shown before the first key frame"
    if any(r[3] for r in rows):
        return "packets flagged corrupt"
    if any(r[4] for r in rows):
        return "packed B-frames (two pictures in one packet)"
    gaps = np.diff(np.sort(np.asarray(pts, dtype=np.float64)))
    if len(gaps) and np.median(gaps) > 2 and gaps.min() <= 1:
        return "timestamps one tick apart (made up by the demuxer, as AVI's last frames)"
    return ""


def _from_packets(rows: list[tuple], head: _Head) -> VideoInfo:
    ticks = np.sort(np.asarray([r[0] for r in rows], dtype=np.int64))
    keys = np.searchsorted(ticks, sorted({r[0] for r in rows if r[2]})).tolist()
    return _timing(ticks, keys, head, seekable=True, method="packets", why="")


def _tail_mismatch(path, info: VideoInfo) -> str:
    """Decode the last GOP after a seek (from the key frame before it where a seek lands late, as in
    MPEG-TS): '' when it yields exactly the index's last frames."""
    keys = info.key_indices()
    want = list(range(int(keys[-1]), info.frames))
    if len(keys) == 1:
        return ""  # one GOP: the first frame decoded; the count is checked by readers (`decode.read_frames`)
    for key in keys[-1:-3:-1]:
        if key == 0:
            break
        container, stream = open_video(path)
        with container:
            got = [i for i, _ in run_after_seek(container, stream, int(info.frame_pts()[key]), info.index_of)]
        if got and got[0] <= want[0]:
            got = [i for i in got if i >= want[0]]
            if got == want:
                return ""
            if len(got) == len(want):
                return "the last GOP's frames do not decode at the timestamps their packets give"
            return f"the last GOP decodes to {len(got)} of its {len(want)} frames"
    return "no seek reaches the last GOP"


def _best_effort(rows: list[tuple], default_step: float, seconds: float) -> tuple[np.ndarray, bool]:
    """(frame times in ticks, non-decreasing; whether every frame is known by its own increasing pts).

    ffmpeg's `guess_correct_pts` over the whole file: the presentation stamps unless they go back more often
    than the decoding stamps; a frame with neither follows the last by its duration (`video_duration_estimate`:
    the frame's, else the last difference, else the rate). A time that goes back by more than `_JOIN_S` is a
    join (time goes on one frame after the last, as `source.FrameClock`); a smaller step back (stamps rounded
    across reordered pictures) keeps the last time."""
    pts, dts = [r[0] for r in rows], [r[1] for r in rows]
    use_pts = _faults(pts) <= _faults(dts)
    out, last, step, offset = [], None, default_step, 0.0
    for p, d, duration, *_ in rows:
        t = (p if p is not None else d) if use_pts else d
        if t is None:
            t = 0.0 if last is None else last + step
        else:
            t = float(t) + offset
            if last is not None and t < last - _JOIN_S / seconds:
                offset += last + step - t
                t = last + step
            step = _duration_estimate(duration, t - last if last is not None else -1.0, step)
            t = t if last is None else max(t, last)
        out.append(t)
        last = t
    ticks = np.asarray(out, dtype=np.float64)
    own = use_pts and all(p is not None for p in pts) and bool(np.all(np.diff(np.asarray(pts, dtype=np.float64)) > 0))
    return ticks, own


def _duration_estimate(duration, ts_diff: float, previous: float) -> float:
    """ffmpeg's `video_duration_estimate` for a frame: its own duration, unless that is 1 tick while the last
    step was longer (a duration libavformat made up), else the step since the last frame, else the last estimate."""
    if duration and duration > 0 and not (duration == 1 and ts_diff > 2):
        return float(duration)
    return ts_diff if ts_diff > 0 else previous


def _faults(stamps: list) -> int:
    known = [s for s in stamps if s is not None]
    return sum(b <= a for a, b in zip(known, known[1:])) if known else 1 << 30


def _timing(ticks: np.ndarray, keys: list[int], head: _Head, seekable: bool, method: str, why: str) -> VideoInfo:
    """VideoInfo from the frames' times (ticks, non-decreasing) and seek targets."""
    count, seconds = len(ticks), head.time_base[0] / head.time_base[1]
    keyframes = tuple(sorted({0, *(int(k) for k in keys)}))
    keyframes = None if len(keyframes) == count and count > 1 else keyframes  # all-intra (MJPEG): no list
    common = dict(
        time_base=head.time_base,
        keyframes=keyframes,
        seekable=seekable,
        method=method,
        why=why,
        sar=(head.sar.numerator, head.sar.denominator),
    )
    as_int = ticks.astype(np.int64)
    exact = np.array_equal(as_int, ticks)
    if count == 1:
        return VideoInfo(
            1, head.fps, head.width, head.height, start_pts=int(ticks[0]), step=1.0 / head.fps / seconds, **common
        )
    step = (ticks[-1] - ticks[0]) / (count - 1)
    off_line = np.abs(ticks - (ticks[0] + step * np.arange(count))).max() if step > 0 else np.inf
    if exact and off_line <= 1e-6 * step:  # constant rate: a start and a step reproduce every stamp exactly
        fps = float(1.0 / (step * seconds))
        return VideoInfo(count, fps, head.width, head.height, start_pts=int(ticks[0]), step=float(step), **common)
    if off_line <= min(max(1.0, _JITTER * step), 0.5 * step):  # a constant rate on a coarse clock: its mean rate
        typical = step
    else:  # variable rate: the typical frame duration
        gaps = np.diff(ticks)
        typical = float(np.median(gaps[gaps > 0])) if np.any(gaps > 0) else 1.0 / head.fps / seconds
    stored = tuple(as_int.tolist()) if exact else tuple(ticks.tolist())
    return VideoInfo(
        count, float(1.0 / (typical * seconds)), head.width, head.height, start_pts=int(ticks[0]), pts=stored, **common
    )
