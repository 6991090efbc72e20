"""`stop-train check`: how each video of a dataset folder will be read, before training; and the probe cache
it shares with training (merging concurrent savers, surviving a failed write)."""

from __future__ import annotations

import json
import os
import threading

import pytest
import realvideos

from stop_train.video.libav import VideoReadError
from stop_train.video.probe_cache import ProbeCache
from stop_train.video.survey import main as check_main


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A dataset folder from real clips: one read exactly, one cut mid-GOP, one packed-B-frame AVI under a name
    that is not UTF-8, one cut with no key frame, one that is not a video."""
    src = realvideos.build(
        tmp_path_factory.mktemp("src"),
        ["bikes.mp4", "bikes-cut2.65s.mkv", "bikes-xvid-packed.avi", "carphone-cut1.53s.mkv"],
    )
    root = tmp_path_factory.mktemp("ds")
    (root / "Run").mkdir()
    (root / "Jump").mkdir()
    os.link(src["bikes.mp4"], root / "Run" / "a.mp4")
    os.link(src["bikes-cut2.65s.mkv"], root / "Run" / "b.mkv")
    os.link(src["bikes-xvid-packed.avi"], os.path.join(os.fsencode(root / "Jump"), b"caf\xe9.avi"))
    os.link(src["carphone-cut1.53s.mkv"], root / "Jump" / "c.mkv")
    (root / "Jump" / "d.mp4").write_bytes(b"not a video")
    return root


def test_check_says_per_file_how_it_is_read(dataset, tmp_path, capsys):
    cache = tmp_path / "probe.json"
    code = check_main([str(dataset), "--probe-cache", str(cache)])
    out = capsys.readouterr().out.splitlines()
    assert code == 1  # some videos are unreadable
    rows = {line.split()[-1] if "(" not in line else line.split("(")[0].split()[-1]: line for line in out[:-1]}
    assert rows["Run/a.mp4"].startswith("read exactly")
    assert rows["Run/b.mkv"].startswith("read by decoding") and "starts between key frames" in rows["Run/b.mkv"]
    assert rows["Jump/caf\\xe9.avi"].startswith("read by decoding") and "packed B-frames" in rows["Jump/caf\\xe9.avi"]
    assert rows["Jump/c.mkv"].startswith("unreadable") and "no frame decodes" in rows["Jump/c.mkv"]
    assert rows["Jump/d.mp4"].startswith("unreadable") and "cannot open" in rows["Jump/d.mp4"]
    assert out[-1].startswith("checked 5 videos") and "1 read exactly, 2 read by decoding, 2 unreadable" in out[-1]
    entries = json.loads(cache.read_text(encoding="utf-8"))
    assert len(entries) == 5 and os.path.join(os.fsdecode(dataset / "Jump"), os.fsdecode(b"caf\xe9.avi")) in entries
    # training's probe reads the same cache without probing again
    again = ProbeCache(cache)
    again.probe(dataset / "Run" / "b.mkv")
    assert not again._new


def test_check_refuses_a_folder_without_videos(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        check_main([str(tmp_path), "--probe-cache", str(tmp_path / "c.json")])
    assert stop.value.code == 2 and "no video files" in capsys.readouterr().err


def test_probe_cache_savers_merge_and_a_failed_save_keeps_the_old_cache(dataset, tmp_path, monkeypatch):
    path = tmp_path / "probe.json"
    first, second = ProbeCache(path), ProbeCache(path)
    first.probe(dataset / "Run" / "a.mp4")
    second.probe(dataset / "Run" / "b.mkv")
    threads = [threading.Thread(target=c.save) for c in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(json.loads(path.read_text())) == 2  # neither saver lost the other's entry
    before = path.read_bytes()
    third = ProbeCache(path)
    with pytest.raises(VideoReadError, match="cannot open"):  # an unreadable file's reason is cached too
        third.probe(dataset / "Jump" / "d.mp4")

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="probe.json"):
        third.save()
    monkeypatch.undo()
    assert path.read_bytes() == before and not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_check_takes_training_s_extensions_and_counts_what_it_leaves_out(tmp_path, capsys):
    ts = realvideos.build(tmp_path / "src", ["bikes.ts"])["bikes.ts"]
    (tmp_path / "ds" / "cls").mkdir(parents=True)
    os.link(ts, tmp_path / "ds" / "cls" / "a.ts")
    (tmp_path / "ds" / "cls" / "notes.txt").write_text("x")
    with pytest.raises(SystemExit) as stop:  # the default suffixes: nothing to check, and it says what is there
        check_main([str(tmp_path / "ds"), "--probe-cache", str(tmp_path / "c.json")])
    assert stop.value.code == 2 and "other files: 1 .ts, 1 .txt (--extensions" in capsys.readouterr().err
    assert check_main([str(tmp_path / "ds"), "--probe-cache", str(tmp_path / "c.json"), "--extensions", "ts"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("read exactly") and "cls/a.ts" in out[0]
    assert out[-1] == "not checked (not .ts): 1 .txt"


def test_check_finds_packets_the_decoder_rejects(tmp_path, capsys):
    """A damaged slice the decoder rejects (ffmpeg: 'A non-intra slice in an IDR NAL unit') drops a frame that the
    packets still count: only decoding shows it. `stop-train check` decodes every file by default (`--probe fast`
    does not), and the index it caches is ffmpeg's numbering for every reader. On 09e09a6 the default probe counted
    the packets' 250 frames."""
    from stop_train.video.index import probe

    bad = realvideos.build(tmp_path / "src", ["bikes-rejected-slices.mp4"])["bikes-rejected-slices.mp4"]
    assert probe(bad).frames == 250  # the packets' count; ffmpeg decodes 247 (the known limit of the packet probe)
    (tmp_path / "ds" / "cls").mkdir(parents=True)
    os.link(bad, tmp_path / "ds" / "cls" / "a.mp4")
    cache = tmp_path / "c.json"
    assert check_main([str(tmp_path / "ds"), "--probe-cache", str(cache), "--probe", "fast"]) == 0
    assert capsys.readouterr().out.startswith("packets only")  # what the packets alone say, not called exact
    assert check_main([str(tmp_path / "ds"), "--probe-cache", str(cache)]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith("read by decoding") and "decoding gives 247 frames where the packets promise 250" in line
    info = ProbeCache(cache).probe(tmp_path / "ds" / "cls" / "a.mp4")  # what training reads from the cache
    assert info.frames == 247 and info.method == "decoding"


def test_probing_a_dataset_keeps_its_work_when_interrupted(dataset, tmp_path, monkeypatch):
    """Probing a large dataset exactly takes minutes: Ctrl-C (or a crash in one probe) keeps what was probed."""
    from types import SimpleNamespace

    from faults import interrupt_probing_at

    from stop_train.video import probe_cache

    items = [
        SimpleNamespace(path=p)
        for p in (dataset / "Run" / "a.mp4", dataset / "Run" / "b.mkv", dataset / "Jump" / "c.mkv")
    ]
    real, calls = probe_cache.probe_entry, interrupt_probing_at(monkeypatch, 3)
    path = tmp_path / "probe.json"
    with pytest.raises(KeyboardInterrupt):
        probe_cache.probe_items(items, ProbeCache(path), jobs=1)
    kept = json.loads(path.read_text())
    assert sorted(kept) == sorted(os.fspath(c) for c in calls[:2]) and all(e["verified"] for e in kept.values())
    monkeypatch.setattr(probe_cache, "probe_entry", real)
    usable, infos, skipped = probe_cache.probe_items(items, ProbeCache(path), jobs=2)  # only the third is probed
    assert [i.path for i in usable] == [i.path for i in items[:2]] and skipped[0][0] == os.fspath(items[2].path)


def test_a_fast_probe_is_verified_when_an_exact_one_is_asked_for(tmp_path):
    """Training's default (`--probe exact`) does not trust a cached packets-only probe of a file the decoder
    rejects packets of: it decodes the file once and caches the decoder's numbering."""
    from types import SimpleNamespace

    from stop_train.video.probe_cache import probe_items

    bad = realvideos.build(tmp_path / "src", ["bikes-rejected-slices.mp4"])["bikes-rejected-slices.mp4"]
    cache = ProbeCache(tmp_path / "c.json")
    assert cache.probe(bad, exact=False).frames == 250
    _, infos, _ = probe_items([SimpleNamespace(path=bad)], cache)
    assert infos[0].frames == 247 and infos[0].method == "decoding" and "rejects" in infos[0].why
    cache.save()
    assert ProbeCache(tmp_path / "c.json").probe(bad, exact=False).frames == 247  # the exact entry serves both


def test_training_takes_probe_exact_or_fast_only():
    from stop_train.engine.config import TrainConfig

    assert TrainConfig().probe == "exact" and TrainConfig(probe="fast").probe == "fast"
    with pytest.raises(ValueError, match="probe 'quick' is not one of exact, fast"):
        TrainConfig(probe="quick")


def test_check_on_a_relative_folder_fills_the_cache_training_reads(dataset, tmp_path, monkeypatch):
    """A newcomer's `stop-train check ds` cached 'ds/...' keys that training (absolute paths) never found."""
    monkeypatch.chdir(dataset.parent)
    cache = tmp_path / "probe.json"
    check_main([dataset.name, "--probe-cache", str(cache)])
    key, entry = ProbeCache(cache).lookup(dataset / "Run" / "a.mp4")
    assert entry is not None and key == os.fspath(dataset / "Run" / "a.mp4")
