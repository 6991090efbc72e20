"""Decoding, samplers and pre-processing, on generated videos (the frame source against ffmpeg is in
test_frame_source.py)."""

from __future__ import annotations

import numpy as np
import pytest

from stop_train.data.synthetic import CLASSES, PAIRS, SyntheticSpec, write_synthetic_motion, write_video
from stop_train.video import (
    PreprocessCfg,
    SamplingCfg,
    eval_view_indices,
    interval_indices,
    prepare_clip,
    segment_indices,
)
from stop_train.video.decode import VideoReadError, probe, read_frames
from stop_train.video.preprocess import crop_positions, crop_square

SPEC = SyntheticSpec(groups=3, clips_per_group=1, frames=12, width=48, height=32)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return write_synthetic_motion(tmp_path_factory.mktemp("synth"), SPEC)


def video(root, name, g=1, c=1):
    return root / "UCF-101" / name / f"v_{name}_g{g:02d}_c{c:02d}.avi"


def test_synthetic_layout_and_reversed_pairs(synth):
    lists = synth / "ucfTrainTestlist"
    class_ind = (lists / "classInd.txt").read_bytes().decode()
    assert class_ind.endswith("\r\n") and class_ind.count("\r\n") == len(CLASSES)
    train = (lists / "trainlist01.txt").read_bytes().decode().split("\r\n")
    test = (lists / "testlist01.txt").read_bytes().decode().split("\r\n")
    assert train[0].split()[0].startswith(CLASSES[0]) and len(train[0].split()) == 2 and len(test[0].split()) == 1
    assert len([t for t in train if t]) + len([t for t in test if t]) == SPEC.groups * len(CLASSES)
    for forward, backward in PAIRS:
        a = read_frames(video(synth, forward), range(SPEC.frames))
        b = read_frames(video(synth, backward), range(SPEC.frames))
        assert np.array_equal(a, b[::-1])  # identical frame sets, opposite order
        assert not np.array_equal(a, b)


def test_probe_counts_frames(synth):
    info = probe(video(synth, "MovingUp"))
    assert (info.frames, info.width, info.height, info.fps) == (SPEC.frames, SPEC.width, SPEC.height, SPEC.fps)


def test_read_any_order_and_repeats(synth):
    path = video(synth, "MovingLeft")
    full = read_frames(path, range(SPEC.frames))
    got = read_frames(path, [7, 3, 3, SPEC.frames - 1])
    assert np.array_equal(got, full[[7, 3, 3, SPEC.frames - 1]])
    with pytest.raises(ValueError, match=r"\[0, 12\)"):  # past the end: never a substituted frame
        read_frames(path, [SPEC.frames + 5])


def test_bad_files_give_reasons(tmp_path, synth):
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.avi"
    garbage.write_bytes(b"not a video" * 100)
    with pytest.raises(VideoReadError, match="zero-byte"):
        probe(empty)
    with pytest.raises(VideoReadError):
        probe(garbage)
    with pytest.raises(VideoReadError, match="file not found"):
        read_frames(tmp_path / "absent.avi", [0])
    data = video(synth, "MovingDown").read_bytes()
    truncated = tmp_path / "truncated.avi"
    truncated.write_bytes(data[: len(data) // 2])
    info = probe(truncated)  # what is left is counted, not what the header says
    assert 0 < info.frames < SPEC.frames
    frames = read_frames(truncated, [0, info.frames - 1])  # what is left decodes
    assert frames.shape == (2, SPEC.height, SPEC.width, 3)
    assert np.array_equal(frames[0], read_frames(video(synth, "MovingDown"), [0])[0])


def test_write_video_roundtrip(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, size=(5, 16, 24, 3), dtype=np.uint8)
    write_video(tmp_path / "v.avi", frames, fps=10)
    assert probe(tmp_path / "v.avi").frames == 5
    assert read_frames(tmp_path / "v.avi", [4]).shape == (1, 16, 24, 3)


def test_segment_sampler():
    rng = np.random.default_rng(0)
    for _ in range(20):
        idx = segment_indices(100, 8, rng)
        edges = np.linspace(0, 100, 9)
        assert (np.floor(edges[:-1]) <= idx).all() and (idx < edges[1:]).all()  # one frame in each segment
    assert segment_indices(100, 4).tolist() == [12, 37, 62, 87]  # centres
    assert segment_indices(3, 6).tolist() == [0, 0, 1, 1, 2, 2]  # short clip: repetition
    views = eval_view_indices(SamplingCfg(frames=4, test_clips=2), np.arange(40) / 25.0)
    assert [v.tolist() for v in views] == [[2, 12, 22, 32], [7, 17, 27, 37]]  # offsets 1/4 and 3/4


def test_interval_sampler():
    times = np.arange(100) / 25.0
    idx = interval_indices(times, 4, 0.2)
    assert np.diff(idx).tolist() == [5, 5, 5] and idx[0] == round((99 - 15) / 2)
    rng = np.random.default_rng(1)
    starts = {int(interval_indices(times, 4, 0.2, rng)[0]) for _ in range(20)}
    assert len(starts) > 5 and max(starts) <= 84
    assert interval_indices(times[:10], 4, 0.5).tolist() == [0, 9, 9, 9]  # window longer than the clip
    views = eval_view_indices(SamplingCfg(sampler="interval", frames=2, frame_interval_s=0.4, test_clips=3), times[:50])
    assert [v[0] for v in views] == [0, 20, 39]


def test_interval_sampler_follows_variable_frame_rate():
    # 20 frames at 10 fps, then 30 fps: 0.5 s apart is 5 frames in the first part and 15 in the second
    times = np.concatenate([np.arange(20) / 10.0, 2.0 + np.arange(30) / 30.0])
    idx = interval_indices(times, 6, 0.5, start=0.0)
    assert np.allclose(times[idx], np.arange(6) * 0.5, atol=1e-9)
    assert idx.tolist() == [0, 5, 10, 15, 20, 35]


def test_crops_and_prepare():
    frames = np.zeros((2, 30, 60, 3), dtype=np.uint8)
    frames[:, :, :10] = 255  # a bright left edge
    assert crop_positions(1) == ("center",) and crop_positions(3) == ("center", "start", "end")
    assert crop_square(frames, 30, "start")[0, 0, 0, 0] == 255 and crop_square(frames, 30, "end")[0, 0, 0, 0] == 0
    out = prepare_clip(frames, PreprocessCfg(size=16))
    assert out.shape == (2, 16, 16, 3) and out.dtype == np.uint8 and out.flags["C_CONTIGUOUS"]
    with pytest.raises(ValueError, match="sampler"):
        SamplingCfg(sampler="uniform")


def test_a_pipe_or_folder_named_like_a_video_is_not_called_missing(tmp_path):
    import os

    os.mkfifo(tmp_path / "fifo.mp4")
    (tmp_path / "folder.mp4").mkdir()
    for name in ("fifo.mp4", "folder.mp4"):
        with pytest.raises(VideoReadError, match="not a regular file"):
            probe(tmp_path / name)
