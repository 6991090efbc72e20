"""The one frame source against ffmpeg, on generated files whose frames carry their own index.

For every kind of file (containers and codecs the datasets ship, rotations and mirrors, variable frame rate,
B-frames and open GOPs, non-zero start times, stream-copy cuts with edit lists, truncated and corrupt files),
frame i and its time are compared with the i-th frame of
`ffmpeg -i FILE -fps_mode passthrough -f rawvideo -pix_fmt rgb24 -`, through every consumer.
"""

from __future__ import annotations

import numpy as np
import pytest
from videofiles import encode, ffmpeg, ffmpeg_frames, index_of, remux

from stop_train.video import PreprocessCfg, SamplingCfg, prepare_clip
from stop_train.video.decode import VideoReadError, probe, read_frames
from stop_train.video.sampling import eval_view_indices
from stop_train.video.source import FileSource, ReconnectPolicy, SourceError, SourceSpec
from stop_train.video.views import eval_views

N = 40  # frames per generated file
KEYINT = ["-g", "12"]
H264 = ["-c:v", "libx264", "-pix_fmt", "yuv420p", *KEYINT]
# ffmpeg and PyAV convert colours with the same swscale code: measured here, the frames are bit-equal;
# this bound leaves room for another swscale build (one step of rounding)
COLOUR_TOL = 2
PIXEL_FORMATS = {  # 10-bit: swscale's generic path (PyAV's own `reformat` differs from ffmpeg here by up to ~120 levels)
    "hevc-10bit.mkv": ["-c:v", "libx265", "-pix_fmt", "yuv420p10le", "-x265-params", "keyint=12:log-level=none"],
    "h264-10bit.mp4": ["-c:v", "libx264", "-pix_fmt", "yuv420p10le", *KEYINT],
    "h264-444.mp4": ["-c:v", "libx264", "-pix_fmt", "yuv444p", *KEYINT],
    "h264-bt709-full-range.mp4": [
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-colorspace",
        "bt709",
        "-color_range",
        "pc",
        "-vf",
        "scale=out_color_matrix=bt709:out_range=full",
        *KEYINT,
    ],
}
TIME_TOL_S = 1e-3

ENCODED = {  # name -> ffmpeg output options (stored frames 96x64, 30 fps)
    "h264-bframes.mp4": [*H264, "-bf", "3"],
    "h264.mkv": H264,
    "h264-open-gop.mp4": ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-x264-params", "open-gop=1:keyint=12", "-bf", "3"],
    "h264-bframes.ts": [*H264, "-bf", "3", "-f", "mpegts"],
    "h264-start-5s.mp4": [*H264, "-output_ts_offset", "5"],
    "hevc.mp4": ["-c:v", "libx265", "-pix_fmt", "yuv420p", "-x265-params", "keyint=12:log-level=none"],
    "hevc.mkv": ["-c:v", "libx265", "-pix_fmt", "yuv420p", "-x265-params", "keyint=12:bframes=4:log-level=none"],
    "mpeg4-bframes.avi": ["-c:v", "mpeg4", "-bf", "2", "-q:v", "3", *KEYINT],
    "mpeg4-xvid.avi": ["-c:v", "mpeg4", "-vtag", "XVID", "-q:v", "3", *KEYINT],
    "mjpeg.avi": ["-c:v", "mjpeg", "-q:v", "3"],
    "vp8.webm": ["-c:v", "libvpx", "-b:v", "1M", *KEYINT],
    "vp9.webm": ["-c:v", "libvpx-vp9", "-b:v", "1M", "-deadline", "realtime", *KEYINT],
}
VFR = {  # 20 frames at 10 fps, then 30 fps (phone, screen and webcam recordings)
    "vfr.mp4": H264,
    "vfr.mkv": H264,
    "vfr-vp9.webm": ["-c:v", "libvpx-vp9", "-b:v", "1M", "-deadline", "realtime", *KEYINT],
    # as a browser's MediaRecorder writes it: no rate, no duration and no cues in the header, ms timestamps
    "browser-live.webm": ["-c:v", "libvpx", "-b:v", "1M", "-g", "30", "-live", "1", "-cluster_time_limit", "500"],
}
DISPLAY = {  # display matrix (ffmpeg -display_rotation / -display_hflip / -display_vflip) on a stream copy
    "rotate-90.mp4": ["-display_rotation:v:0", "90"],
    "rotate-180.mp4": ["-display_rotation:v:0", "180"],
    "rotate-270.mp4": ["-display_rotation:v:0", "270"],
    "rotate-90-hflip.mp4": ["-display_rotation:v:0", "90", "-display_hflip:v:0"],
    "rotate-270-vflip.mp4": ["-display_rotation:v:0", "270", "-display_vflip:v:0"],
    "hflip.mp4": ["-display_hflip:v:0"],
    "vflip.mp4": ["-display_vflip:v:0"],
}
UPRIGHT = [*ENCODED, *PIXEL_FORMATS, *VFR, "cut-0.5s.mp4"]  # files whose frames read the index directly
DAMAGED = ["truncated.ts", "truncated.webm", "corrupt.ts", "corrupt.mkv"]
# layouts where the first video stream is not the one ffmpeg decodes, and a joined recording
LAYOUT = ["small-first-two-video.mkv", "cover-art-first.mp4", "audio-first.mkv", "joined-twice.ts"]
ALL = [*UPRIGHT, *DISPLAY, *DAMAGED, *LAYOUT]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("kinds")
    for name, args in {**ENCODED, **PIXEL_FORMATS}.items():
        encode(root / name, N, out_args=args)
    for name, args in VFR.items():
        encode(root / name, N, out_args=args, vfr_at=20)
    base = root / "h264-bframes.mp4"
    for name, args in DISPLAY.items():
        remux(base, root / name, before_input=args)
    remux(base, root / "cut-0.5s.mp4", before_input=["-ss", "0.5"])  # edit list starting between key frames
    rng = np.random.default_rng(1)
    for name, src, cut in [
        ("truncated.ts", "h264-bframes.ts", True),
        ("truncated.webm", "vp9.webm", True),
        ("corrupt.ts", "h264-bframes.ts", False),
        ("corrupt.mkv", "h264.mkv", False),
    ]:
        data = bytearray((root / src).read_bytes())
        if cut:
            data = data[: int(len(data) * 0.6)]
        else:  # 300 random bytes in the middle
            data[len(data) // 2 : len(data) // 2 + 300] = rng.integers(0, 256, 300, dtype=np.uint8).tobytes()
        (root / name).write_bytes(bytes(data))
    small = encode(root / "small.mp4", 10, size=(48, 32), out_args=H264)
    ffmpeg("-i", small, "-i", base, "-map", "0:v", "-map", "1:v", "-c", "copy", root / "small-first-two-video.mkv")
    ffmpeg("-f", "lavfi", "-i", "color=red:size=48x64", "-frames:v", "1", root / "cover.png")
    ffmpeg(
        "-i",
        root / "cover.png",
        "-i",
        base,
        "-map",
        "0",
        "-map",
        "1",
        "-c:v:0",
        "png",
        "-c:v:1",
        "copy",
        "-disposition:v:0",
        "attached_pic",
        root / "cover-art-first.mp4",
    )
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "sine=duration=2",
        "-i",
        base,
        "-map",
        "0:a",
        "-map",
        "1:v",
        "-c:v",
        "copy",
        root / "audio-first.mkv",
    )
    ts = (root / "h264-bframes.ts").read_bytes()
    (root / "joined-twice.ts").write_bytes(ts + ts)  # timestamps jump back in the middle
    return root


@pytest.fixture(scope="module")
def reference(files):
    """ffmpeg's frames and times for every file, decoded once."""
    return {name: ffmpeg_frames(files / name) for name in ALL}


def _max_diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


def _live(path) -> tuple[np.ndarray, np.ndarray]:
    source = FileSource(path)
    try:
        frames = list(source.frames())
    finally:
        source.close()
    return np.stack([f.image for f in frames]), np.array([f.t for f in frames])


@pytest.mark.parametrize("name", ALL)
def test_every_frame_and_time_equal_ffmpeg(files, reference, name):
    ref, ref_t = reference[name]
    path = files / name
    info = probe(path)
    assert info.frames == len(ref) > 0
    assert (info.height, info.width) == ref.shape[1:3]  # display orientation
    live, live_t = _live(path)
    assert live.shape == ref.shape
    assert _max_diff(live, ref) <= COLOUR_TOL
    assert np.abs(live_t - ref_t).max() <= TIME_TOL_S
    assert np.abs(info.times() - ref_t).max() <= TIME_TOL_S
    picks = sorted(np.random.default_rng(0).choice(len(ref), size=min(8, len(ref)), replace=False).tolist())
    assert np.array_equal(read_frames(path, picks, info), live[picks])  # seeking = decoding from the start


@pytest.mark.parametrize("name", UPRIGHT)
def test_frames_carry_their_own_index(files, reference, name):
    ref, _ = reference[name]
    first = {"cut-0.5s.mp4": 15}.get(name, 0)  # the cut starts at 0.5 s = frame 15
    assert [index_of(img) for img in _live(files / name)[0]] == list(range(first, first + len(ref)))


@pytest.mark.parametrize("name", LAYOUT)
def test_the_stream_ffmpeg_picks_and_joined_recordings(files, reference, name):
    frames = _live(files / name)[0]
    expected = list(range(N)) * (2 if name.startswith("joined") else 1)
    assert [index_of(img) for img in frames] == expected and frames.shape[1:3] == (64, 96)


@pytest.mark.parametrize("name", DISPLAY)
def test_display_matrix_turns_frames_as_ffmpeg_does(files, reference, name):
    ref, _ = reference[name]
    img = read_frames(files / name, [5])[0]
    assert _max_diff(img, ref[5]) <= COLOUR_TOL
    # where ffmpeg shows the stored top-left corner (-display_rotation turns counter-clockwise)
    corner = {
        "rotate-90.mp4": (-1, 0),
        "rotate-180.mp4": (-1, -1),
        "rotate-270.mp4": (0, -1),
        "rotate-90-hflip.mp4": (-1, -1),
        "rotate-270-vflip.mp4": (-1, -1),
        "hflip.mp4": (0, -1),
        "vflip.mp4": (-1, 0),
    }[name]
    red = img[corner[0], corner[1]]
    assert red[0] > 150 and red[2] < 100  # the stored top-left red block sits where ffmpeg shows it, RGB order


def test_variable_frame_rate_maps_times_to_the_right_frames(files):
    from stop_train.video.sampling import interval_indices

    info = probe(files / "vfr.mp4")
    assert info.pts is not None and info.frames == N
    assert np.allclose(info.times()[[0, 19, 20, 21]], [0.0, 1.9, 2.0, 2.0 + 1 / 30], atol=1e-3)
    assert info.fps == pytest.approx(10.0, rel=1e-3)  # 1 / median frame duration (20 of the 39 are 0.1 s)
    indices = interval_indices(info.times(), 6, 0.5, start=0.0)  # 0.5 s apart: 5 frames at 10 fps, 15 at 30
    clip = read_frames(files / "vfr.mp4", indices, info)
    assert [index_of(f) for f in clip] == indices.tolist() == [0, 5, 10, 15, 20, 35]


def test_eval_protocol_reads_mpeg_ts_with_b_frames(files, exported, capsys):
    from stop_export.cli import recognize_main

    code = recognize_main([str(exported["dynamic"]), "--source", str(files / "h264-bframes.ts"), "--protocol", "eval"])
    out, err = capsys.readouterr()
    assert code == 0 and out.startswith("video (eval): "), err


def test_constant_rate_files_store_no_per_frame_times(files):
    for name in ("h264-bframes.mp4", "mpeg4-bframes.avi", "h264-bframes.ts"):
        info = probe(files / name)
        assert info.pts is None and info.step > 0 and info.fps == pytest.approx(30.0, rel=1e-3), name
        assert len(info.to_dict()["keyframes"]) <= N // 4
    # 30 fps on WebM's millisecond clock (33, 67, 100 ...): the rounded stamps are kept, as ffmpeg shows them,
    # and the rate is the mean one
    webm = probe(files / "vp9.webm")
    assert webm.pts[:4] == (0, 33, 67, 100) and webm.fps == pytest.approx(30.0, rel=1e-3)
    all_intra = probe(files / "mjpeg.avi")
    assert all_intra.keyframes is None and all_intra.key_indices().tolist() == list(range(N))


def test_consumers_return_identical_frames(files, qtbot):
    """The training reader, the eval protocol, the live reader and the app's capture path, on one file."""
    from stop_export.runtime.frames import frames_from
    from stop_gui.pipeline import CaptureWorker

    path = files / "mpeg4-bframes.avi"
    info = probe(path)
    sampling, pre = SamplingCfg(frames=4), PreprocessCfg(size=32)
    live = list(frames_from(str(path)))
    images = np.stack([img for _, img in live])
    views = eval_views(path, info, sampling, pre)
    indices = eval_view_indices(sampling, info.times())[0]
    assert np.array_equal(views[0], prepare_clip(images[indices], pre))  # eval protocol = live frames
    assert np.array_equal(read_frames(path, indices, info), images[indices])  # training reader

    class Hub:  # records what the capture worker pushes
        def __init__(self):
            self.pushed = []

        def push(self, frame, t, captured_at):
            self.pushed.append((t, frame))
            return 0.0

        def boundary(self, reason):  # the end of the file: stop the player instead of waiting for a seek
            assert reason == "end"
            worker.stop()

    hub = Hub()
    worker = CaptureWorker(hub, str(path), realtime=False)
    worker.run()  # synchronously, in this thread
    assert len(hub.pushed) == len(live) == info.frames
    assert all(np.array_equal(a[1], b[1]) and a[0] == b[0] for a, b in zip(hub.pushed, live))


def test_unusable_inputs_give_reasons(files, tmp_path):
    from stop_train.video.orientation import OrientationError, orientation_from_matrix

    m45 = (46341, 46341, 0, -46341, 46341, 0, 0, 0, 1 << 30)  # 45 degrees, 16.16 fixed point
    with pytest.raises(OrientationError, match="45 degrees"):
        orientation_from_matrix(m45)
    odd = remux(files / "h264-bframes.mp4", tmp_path / "rotate-45.mp4", before_input=["-display_rotation:v:0", "45"])
    with pytest.raises(VideoReadError, match="not supported"):
        probe(odd)
    moov_at_end = files / "h264-bframes.mp4"
    truncated = tmp_path / "truncated.mp4"  # no index left: ffmpeg cannot read it either
    truncated.write_bytes(moov_at_end.read_bytes()[: moov_at_end.stat().st_size // 2])
    with pytest.raises(VideoReadError, match="cannot open"):
        probe(truncated)
    with pytest.raises(ValueError, match=r"\[0, 40\)"):
        read_frames(files / "vp9.webm", [N])
    with pytest.raises(SourceError, match="no video file"):
        SourceSpec.parse(str(tmp_path / "absent.mp4"))
    with pytest.raises(SourceError, match="unsupported stream scheme"):
        SourceSpec.parse("gopher://host/x")
    assert SourceSpec.parse("0") == SourceSpec("camera", 0)
    assert SourceSpec.parse("/dev/video2") == SourceSpec("camera", "/dev/video2")
    assert SourceSpec.parse("rtsp://127.0.0.1:8554/cam").kind == "stream"


def test_reconnect_policy_backs_off_to_a_cap():
    forever = ReconnectPolicy()
    assert [forever.delay(a) for a in (1, 2, 3, 4, 5, 6, 50)] == [1, 2, 4, 8, 16, 16, 16]
    assert ReconnectPolicy(attempts=0).delay(1) is None
    assert ReconnectPolicy(attempts=2).delay(2) == 2 and ReconnectPolicy(attempts=2).delay(3) is None


@pytest.mark.parametrize(
    "name", ["h264-bframes.mp4", "h264-bframes.ts", "vp9.webm", "browser-live.webm", "joined-twice.ts", "vfr.mkv"]
)
def test_seek_lands_on_the_first_frame_at_or_after_the_time(files, name):
    source = FileSource(files / name)
    times = source.info.times()
    assert source.duration_s == pytest.approx(times[-1] + 1 / source.info.fps)  # also without a header duration
    frames = source.frames()
    first = next(frames)
    assert first.t == 0.0 and index_of(first.image) == 0
    for target in (times[27] - 1e-4, times[11] + 1e-3, times[-3]):  # ahead, back, near the end
        source.seek(target)
        after = next(frames)
        want = int(np.searchsorted(times, target - 1e-6))
        assert after.t == pytest.approx(times[want]) and index_of(after.image) == want % N, (name, target)
    assert [index_of(f.image) for f in frames] == [(want + 1) % N, (want + 2) % N]  # then on to the end


def test_probe_cache_redoes_entries_of_older_probe_versions(files, tmp_path):
    import json

    from stop_train.video.probe_cache import ProbeCache

    video = files / "vfr.mp4"
    st = video.stat()
    stale = {"stamp": [st.st_size, st.st_mtime_ns], "info": {"frames": 99, "fps": 25.0, "width": 96, "height": 64}}
    path = tmp_path / "probe.json"
    path.write_text(json.dumps({str(video): stale}))  # written by the reader before the frame source
    cache = ProbeCache(path)
    info = cache.probe(video)
    assert info.frames == N and info.pts is not None
    cache.save()
    entry = json.loads(path.read_text())[str(video)]
    assert entry["version"] == entry["info"]["version"] and ProbeCache(path).probe(video) == info
