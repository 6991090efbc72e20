"""Retrieval export and `stop-search` (index, query, ANN, model check) without PyTorch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_edge import edge_python

from stop_train.data.synthetic import SyntheticSpec, render_scene, write_video


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("videos")
    rng = np.random.default_rng(0)
    write_video(folder / "long.avi", render_scene("MovingLeft", SyntheticSpec(frames=100), rng), fps=25)  # 4 s
    write_video(folder / "short.avi", render_scene("MovingUp", SyntheticSpec(frames=5), rng), fps=25)  # 0.2 s
    (folder / "sub").mkdir()
    write_video(folder / "sub" / "mid.avi", render_scene("GrowingBigger", SyntheticSpec(frames=75), rng), fps=25)  # 3 s
    (folder / "broken.mp4").write_bytes(b"not a video")
    return folder


def test_a_retrieval_export_has_no_logits_and_always_a_text_encoder(retrieval_models, tmp_path, capsys):
    import onnx

    from stop_export.cli import export_main
    from stop_train.schema import Metadata

    model = onnx.load(str(retrieval_models[0]), load_external_data=False)
    assert [o.name for o in model.graph.output] == [
        "video_embedding",
        "spatial_mask",
        "gap_variation",
        "gap_prompt_count",
        "frame_embedding",
    ]
    meta = Metadata.from_json({p.key: p.value for p in model.metadata_props}["stop"])
    assert meta.task == "retrieval" and meta.labels == [] and meta.text_encoder == "search.text.onnx"
    assert (retrieval_models[0].parent / "search.text.onnx").is_file()
    folder = retrieval_models[0].parent / "model"
    assert export_main([str(folder), "--task", "retrieval", "--no-text-encoder", "-o", str(tmp_path / "x.onnx")]) == 2
    assert "needs its text encoder" in capsys.readouterr().err
    assert export_main([str(folder), "--task", "retrieval", "--labels", "ucf101", "-o", str(tmp_path / "x.onnx")]) == 2
    assert "is a retrieval model: it has no labels" in capsys.readouterr().err


def test_recognize_asks_a_retrieval_model_for_labels(retrieval_models, videos, tmp_path, capsys):
    from stop_export.cli import recognize_main

    source = str(videos / "long.avi")
    assert recognize_main([str(retrieval_models[0]), "--source", source]) == 2
    assert "retrieval model: it has no labels of its own; give --labels" in capsys.readouterr().err
    (tmp_path / "labels.txt").write_text("Diving\nBiking\n")
    assert (
        recognize_main(
            [str(retrieval_models[0]), "--source", source, "--labels", str(tmp_path / "labels.txt"), "--json"]
        )
        == 0
    )
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["type"] == "video" and {k for k, _ in last["top"]} == {"Diving", "Biking"}


def test_index_and_query_without_torch(retrieval_models, videos, tmp_path):
    """Index a folder (a long video in windows, a video shorter than one window, an unreadable file), query it,
    update it, and check the ranking against the stored embeddings - with torch and the export code blocked."""
    model, other = retrieval_models
    index = tmp_path / "idx" / "clips"
    result = edge_python(
        f"""
        import json, sys
        from pathlib import Path
        from stop_export.search_cli import main
        from stop_export.runtime.search import SearchIndex
        from stop_export.runtime.text import TextEncoder
        assert main(["index", {str(model)!r}, {str(videos)!r}, "-o", {str(index)!r}, "--stride", "0.5", "--ann"]) == 0
        idx = SearchIndex.load({str(index)!r})
        print("VIDEOS", json.dumps({{Path(v.path).name: v.windows for v in idx.videos}}))
        print("RANGES", float(idx.start.min()), float(idx.end.max()))
        assert main(["query", {str(index) + ".json"!r}, "a", "square", "moving", "left", "--json", "--exact"]) == 0
        q = TextEncoder({str(model.with_name("search.text.onnx"))!r}).encode(["a square moving left"])[0]
        best = {{Path(v.path).name: float((idx.embedding[idx.video == i] @ q).max()) for i, v in enumerate(idx.videos)}}
        print("BEST", json.dumps(best))
        assert main(["query", {str(index)!r}, "a square moving left", "--json"]) == 0  # through the HNSW graph
        assert main(["index", {str(model)!r}, {str(videos)!r}, "-o", {str(index)!r}, "--stride", "0.5"]) == 0
        assert main(["query", {str(index)!r}, "anything", "--model", {str(other)!r}]) == 2
        assert main(["index", {str(model)!r}, {str(videos)!r}, "-o", {str(index)!r}, "--stride", "1.0"]) == 2
        loaded = [m for m in sys.modules if m.split(".")[0] in ("torch", "onnx", "open_clip")
                  or m.startswith(("stop_export.onnx", "stop_train.model"))]
        print("LOADED", loaded)
    """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out, err = result.stdout.splitlines(), result.stderr
    line = {
        row.split(" ", 1)[0]: row.split(" ", 1)[1]
        for row in out
        if row.split(" ", 1)[0] in ("VIDEOS", "RANGES", "BEST", "LOADED")
    }
    windows = json.loads(line["VIDEOS"])
    # long: 4 s at 0.5 s stride once the first window (span (T-1) x interval) is full; short: one whole-file clip
    assert set(windows) == {"long.avi", "short.avi", "mid.avi"} and windows["short.avi"] == 1
    assert windows["long.avi"] > windows["mid.avi"] > 1
    start, end = map(float, line["RANGES"].split())
    assert start >= 0 and end == pytest.approx(3.96)  # the last window ends at the last frame of long.avi
    hits = [json.loads(row) for row in out if row.startswith('{"rank"')]
    exact, ann = hits[:3], hits[3:6]
    best = json.loads(line["BEST"])
    assert [h["video"].rsplit("/", 1)[1] for h in exact] == sorted(best, key=lambda k: -best[k])
    assert [h["score"] for h in exact] == pytest.approx(sorted(best.values(), reverse=True), abs=1e-4)  # 4 decimals
    assert [h["video"] for h in ann] == [h["video"] for h in exact]  # HNSW is exact on 3 videos
    for hit in exact:
        spans = sorted((m["start"], m["end"]) for m in hit["moments"])
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))  # moments do not overlap
    assert "skipped" in err and "broken.mp4" in err  # an unreadable file is reported, the rest indexed
    assert "(0 embedded, 3 unchanged, 1 unreadable, 0 removed)" in "\n".join(out)
    assert "built with another model" in err and "cuts windows as" in err
    assert line["LOADED"] == "[]"


def test_an_index_built_from_a_run_is_queried_with_its_own_text_tower(videos, tmp_path):
    """stop-search index takes a run directory (the PyTorch backend); its query found the run "not at" its path
    (it looked for a file) until given --model."""
    from stop_export.search_cli import main
    from stop_train.cli import main as stop_train
    from stop_train.data.synthetic import SyntheticSpec, write_synthetic_motion

    data = write_synthetic_motion(
        tmp_path / "d", SyntheticSpec(groups=3, clips_per_group=1, frames=12, width=48, height=32)
    )
    run = tmp_path / "run"
    flags = ["--preset", "tiny", "--pretrained", "none", "--max-steps", "1", "--batch-size", "2", "--workers", "0"]
    assert stop_train(["--dataset", "synthetic-motion", "--data-root", str(data), "--run-dir", str(run), *flags]) == 0
    out = tmp_path / "idx"
    assert main(["index", str(run), str(videos), "-o", str(out)]) == 0
    assert main(["query", str(out), "a red circle moving left", "--json"]) == 0


def test_index_files_are_checked(tmp_path, capsys):
    from stop_export.search_cli import main

    assert main(["query", str(tmp_path / "none"), "x"]) == 2
    assert "no index at" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    assert main(["query", str(tmp_path / "bad.json"), "x"]) == 2
    assert "is not a stop-search index" in capsys.readouterr().err
    (tmp_path / "new.json").write_text('{"format": "stop-search-index", "version": 99}')
    assert main(["query", str(tmp_path / "new.json"), "x"]) == 2
    assert "upgrade stop-toolkit" in capsys.readouterr().err
    assert main(["index", str(tmp_path / "m.onnx"), str(tmp_path / "nothing"), "-o", str(tmp_path / "i")]) == 2
    assert "no video or folder at" in capsys.readouterr().err
    assert main(["index", str(tmp_path / "m.onnx"), str(tmp_path), "-o", str(tmp_path)]) == 2
    assert "is a folder: give the index a file name" in capsys.readouterr().err


def test_cli_is_installed():
    bin_dir = Path(sys.executable).parent
    result = subprocess.run([str(bin_dir / "stop-search"), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "index" in result.stdout and "query" in result.stdout
