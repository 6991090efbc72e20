"""Text-video retrieval: caption datasets (MSR-VTT layout, generic CSV / JSON lines), `stop-train --task
retrieval` end to end, torchrun, evaluation of a converted checkpoint."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from stop_train.cli import main
from stop_train.data.captions import index_captions, index_msrvtt, read_caption_file, video_holdout
from stop_train.data.synthetic_captions import SyntheticCaptionsSpec, combinations, write_synthetic_captions
from stop_train.data.types import DatasetLayoutError
from stop_train.engine.retrieval import symmetric_ce

BIN = Path(sys.executable).parent


def fake_msrvtt(root: Path, video_dir: str = "videos/all", annotations: str = "", absent=()) -> Path:
    """MSR-VTT's files for 8 videos (0-5 train, 6-7 test; 7k = 0-3) with empty video files."""
    ann = root / annotations
    ann.mkdir(parents=True, exist_ok=True)
    sentences = [
        {"video_id": f"video{v}", "caption": f"clip {v} caption {k}", "sen_id": 3 * v + k}
        for v in range(8)
        for k in range(3)
    ]
    (ann / "MSRVTT_data.json").write_text(json.dumps({"videos": [], "sentences": sentences}))
    (ann / "MSRVTT_train.9k.csv").write_text("video_id\r\n" + "".join(f"video{v}\r\n" for v in range(6)))
    (ann / "MSRVTT_train.7k.csv").write_text("video_id\n" + "".join(f"video{v}\n" for v in range(4)))
    (ann / "MSRVTT_JSFUSION_test.csv").write_text(
        'key,vid_key,video_id,sentence\nret0,msr6,video6,a man is singing\nret1,msr7,video7,"cooking, with oil"\n'
    )
    (root / video_dir).mkdir(parents=True, exist_ok=True)
    for v in range(8):
        if v not in absent:
            (root / video_dir / f"video{v}.mp4").write_bytes(b"")
    return root


def test_msrvtt_splits_parse_as_the_published_loaders_read_them(tmp_path):
    root = fake_msrvtt(tmp_path / "msrvtt", absent=(2,))
    index = index_msrvtt(root)
    train, test = index.splits["train"], index.splits["test"]
    # train: every caption of each 9k video (expanded sentences), the missing video dropped with its captions
    assert [v.group for v in train.videos] == ["video0", "video1", "video3", "video4", "video5"]
    assert len(train.captions) == 15 and train.captions[:3] == [
        "clip 0 caption 0",
        "clip 0 caption 1",
        "clip 0 caption 2",
    ]
    assert train.video_of_caption == [i // 3 for i in range(15)]
    assert index.missing == [("video2", "train")]
    # test: the JSFusion pairs, one caption per video (a quoted comma survives)
    assert test.captions == ["a man is singing", "cooking, with oil"] and test.video_of_caption == [0, 1]
    assert test.videos[1].path == root / "videos" / "all" / "video7.mp4"
    seven = index_msrvtt(root, lists={"train": "MSRVTT_train.7k.csv"})
    assert [v.group for v in seven.splits["train"].videos] == ["video0", "video1", "video3"]


def test_msrvtt_clip4clip_layout_and_video_dir(tmp_path):
    root = fake_msrvtt(tmp_path / "c4c", video_dir="MSRVTT_Videos", annotations="msrvtt_data")
    assert len(index_msrvtt(root).splits["train"].videos) == 6
    other = fake_msrvtt(tmp_path / "stop", video_dir="compressed_3fps")
    with pytest.raises(DatasetLayoutError, match="give --video-dir"):
        index_msrvtt(other)
    index = index_msrvtt(other, videos=str(other / "compressed_3fps"))
    assert index.splits["test"].videos[0].path.parent.name == "compressed_3fps"


def test_msrvtt_errors_draw_the_layout_or_name_the_columns(tmp_path):
    with pytest.raises(DatasetLayoutError, match="MSRVTT_data.json not found") as err:
        index_msrvtt(tmp_path)
    assert "expected layout" in str(err.value) and "MSRVTT_JSFUSION_test.csv" in str(err.value)
    root = fake_msrvtt(tmp_path / "bad")
    (root / "MSRVTT_JSFUSION_test.csv").write_text("id,text\nvideo6,x\n")
    with pytest.raises(ValueError, match="column\\(s\\) video_id, sentence; found id, text"):
        index_msrvtt(root)
    root = fake_msrvtt(tmp_path / "leak")
    (root / "MSRVTT_JSFUSION_test.csv").write_text("key,vid_key,video_id,sentence\nret0,msr1,video1,x\n")
    with pytest.raises(ValueError, match="1 video is in both"):
        index_msrvtt(root)


def test_generic_caption_files_csv_and_jsonl(tmp_path):
    for name in ("a.mp4", "b.mp4", "sub/c.mkv", "d.webm"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "train.csv").write_text(
        'video,caption\na.mp4,a dog runs\nb.mp4,"a cat, sleeping"\na.mp4,a dog plays\ngone.mp4,nothing\n'
    )
    (tmp_path / "test.jsonl").write_text(
        f'{{"video": "sub/c.mkv", "caption": ["one", "two"]}}\n\n{{"path": "{tmp_path / "d.webm"}", "text": "three"}}\n'
    )
    index = index_captions(tmp_path)
    train, test = index.splits["train"], index.splits["test"]
    assert [v.path.name for v in train.videos] == ["a.mp4", "b.mp4"]
    assert train.captions == ["a dog runs", "a cat, sleeping", "a dog plays"] and train.video_of_caption == [0, 1, 0]
    assert test.captions == ["one", "two", "three"] and test.video_of_caption == [0, 0, 1]
    assert index.missing == [(str(tmp_path / "gone.mp4"), "train")]
    (tmp_path / "plain.csv").write_text("a.mp4,no header here\n")
    assert read_caption_file(tmp_path / "plain.csv") == [("a.mp4", "no header here")]
    (tmp_path / "broken.jsonl").write_text('{"video": "a.mp4"}\n')
    with pytest.raises(ValueError, match="broken.jsonl:1: no caption field"):
        read_caption_file(tmp_path / "broken.jsonl")
    with pytest.raises(DatasetLayoutError, match="no train or test caption file"):
        index_captions(tmp_path / "sub")
    for name, text, message in (
        ("header.csv", "clip,description\na.mp4,x\n", "header.csv:1: the header 'clip,description' names no video"),
        ("label.csv", "video,label\na.mp4,x\n", "names no caption column"),
        ("empty.csv", "video,caption\na.mp4,fine\n\nb.mp4,  \n", "empty.csv:4: empty caption"),
        ("null.jsonl", '{"video": "a.mp4", "caption": null}\n', "null.jsonl:1: the video must be a string"),
        ("nested.jsonl", '{"video": "a.mp4", "caption": {"en": "x"}}\n', "caption a string or a non-empty list"),
    ):
        (tmp_path / name).write_text(text)
        with pytest.raises(ValueError, match=message):
            read_caption_file(tmp_path / name)
    (tmp_path / "test.jsonl").write_text('{"video": "b.mp4", "caption": "leaks from train"}\n')
    with pytest.raises(ValueError, match="1 video is in both the train and the test split"):
        index_captions(tmp_path)


def test_video_holdout_keeps_all_captions_of_a_video_together(tmp_path):
    index = index_msrvtt(fake_msrvtt(tmp_path))
    train, val = video_holdout(index.splits["train"], 0.34, seed=3)
    assert len(val.videos) == 2 and len(train.videos) == 4
    assert {v.group for v in train.videos}.isdisjoint(v.group for v in val.videos)
    assert len(val.captions) == 6 and val.video_of_caption == [0, 0, 0, 1, 1, 1]
    again, _ = video_holdout(index.splits["train"], 0.34, seed=3)
    assert [v.group for v in again.videos] == [v.group for v in train.videos]


def test_symmetric_ce_is_the_mean_of_both_directions():
    g = torch.Generator().manual_seed(0)
    v = torch.nn.functional.normalize(torch.randn(5, 8, generator=g), dim=-1)
    t = torch.nn.functional.normalize(torch.randn(5, 8, generator=g), dim=-1)
    logits = 20.0 * t @ v.t()
    log_t2v = logits.log_softmax(1).diagonal().mean()
    log_v2t = logits.log_softmax(0).diagonal().mean()
    assert symmetric_ce(v, t, torch.tensor(20.0)).item() == pytest.approx(-0.5 * (log_t2v + log_v2t).item(), rel=1e-6)


# ------------------------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def captions_root(tmp_path_factory):
    """Generated synthetic-captions (MSR-VTT layout) with small train and test lists: 16 train, 8 test videos."""
    root = write_synthetic_captions(
        tmp_path_factory.mktemp("captions"), SyntheticCaptionsSpec(train_per_combo=1, frames=12, width=48, height=32)
    )
    n = len(combinations())
    (root / "small_train.csv").write_text("video_id\n" + "".join(f"video{i}\n" for i in range(0, n, n // 16)))
    rows = list(csv.reader(open(root / "MSRVTT_JSFUSION_test.csv")))
    (root / "small_test.csv").write_text("\n".join(",".join(r) for r in [rows[0], *rows[1 :: n // 8][:8]]) + "\n")
    return root


def train_args(root, run_dir, *extra):
    return [
        "--task",
        "retrieval",
        "--dataset",
        "msrvtt",
        "--data-root",
        str(root),
        "--train-list",
        "small_train.csv",
        "--test-list",
        "small_test.csv",
        "--preset",
        "tiny",
        "--pretrained",
        "none",
        "--model",
        "frames=2",
        "--val-fraction",
        "0.25",
        "--batch-size",
        "4",
        "--workers",
        "0",
        "--epochs",
        "2",
        "--probe-cache",
        str(run_dir.parent / "probe.json"),
        "--run-dir",
        str(run_dir),
        *extra,
    ]


def test_two_epoch_run_writes_retrieval_metrics_then_eval(captions_root, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(train_args(captions_root, run, "--dual-softmax")) == 0
    out = capsys.readouterr().out
    assert "text->video R@1" in out and "test (8 videos, 8 captions)" in out
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"] and all(r["val_t2v_R1"] for r in rows)
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["task"] == "retrieval" and config["model"]["text"]["max_tokens"] == 32  # published
    assert config["model"]["frames"] == 2  # --model wins over the recipe's 12
    assert not (run / "labels.txt").exists()
    test = json.loads((run / "test_metrics.json").read_text())
    assert test["videos"] == test["captions"] == 8 and 0 <= test["t2v_R1"] <= 100
    assert {"dsl_t2v_R1", "dsl_v2t_MnR"} <= set(test) and 1 <= test["t2v_MdR"] <= 8
    state = torch.load(run / "checkpoints" / "last" / "trainer_state.pt", weights_only=False)
    assert state["best_score"] == pytest.approx(max(float(r["val_t2v_R1"]) for r in rows), abs=1e-3)
    assert main(["eval", str(run), "--split", "val", "--workers", "0"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    val = json.loads((run / "val_metrics.json").read_text())
    assert printed["t2v_R1"] == pytest.approx(val["t2v_R1"], abs=1e-3) and val["videos"] == 4
    assert val["captions"] == 8  # both captions of each held-out training video


def test_resume_equals_an_uninterrupted_run_and_unreadable_videos_are_skipped(captions_root, tmp_path):
    """Retrieval runs resume as recognition runs do; an unreadable video is skipped with its captions and listed."""
    from safetensors.torch import load_file

    rows = [line.split(",") for line in (captions_root / "small_train.csv").read_text().split()[1:]]
    folder = tmp_path / "data"
    (folder / "clips").mkdir(parents=True)
    lines = ["video,caption"]
    for (vid,) in rows:
        (folder / "clips" / f"{vid}.mp4").symlink_to(captions_root / "videos" / "all" / f"{vid}.mp4")
        lines.append(f"clips/{vid}.mp4,caption of {vid}")
    (folder / "clips" / "broken.mp4").write_bytes(b"")
    lines.append("clips/broken.mp4,a broken video")
    (folder / "train.csv").write_text("\n".join(lines) + "\n")
    common = [
        "--dataset",
        "captions",
        "--data-root",
        str(folder),
        "--preset",
        "tiny",
        "--pretrained",
        "none",
        "--model",
        "frames=2",
        "--val-fraction",
        "0",
        "--batch-size",
        "4",
        "--workers",
        "0",
        "--epochs",
        "2",
        "--probe-cache",
        str(tmp_path / "probe.json"),
    ]
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert main([*common, "--run-dir", str(straight), "--max-steps", "6"]) == 0
    assert main([*common, "--run-dir", str(split), "--max-steps", "3"]) == 0
    assert main(["--resume", str(split), "--max-steps", "6", "--workers", "0"]) == 0
    w_a = load_file(str(straight / "checkpoints" / "last" / "model.safetensors"))
    w_b = load_file(str(split / "checkpoints" / "last" / "model.safetensors"))
    assert all(torch.equal(w_a[k], w_b[k]) for k in w_a)
    skipped = json.loads((straight / "skipped_videos.json").read_text())
    assert skipped == [{"path": str(folder / "clips" / "broken.mp4"), "reason": "zero-byte file"}]


def test_task_and_dataset_must_agree(captions_root, tmp_path, capsys):
    code = main(
        [
            "--task",
            "retrieval",
            "--dataset",
            "ucf101",
            "--data-root",
            str(tmp_path),
            "--preset",
            "tiny",
            "--run-dir",
            str(tmp_path / "r"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "--task retrieval takes --dataset msrvtt | captions | synthetic-captions" in err
    assert "add --task recognition" in err
    code = main(
        [
            "--dataset",
            "msrvtt",
            "--data-root",
            str(tmp_path / "none"),
            "--preset",
            "tiny",
            "--run-dir",
            str(tmp_path / "r"),
        ]
    )  # a caption dataset implies --task retrieval
    assert code == 1 and "msrvtt: root folder not found" in capsys.readouterr().err
    code = main(train_args(captions_root, tmp_path / "r2", "--classes", "x.txt"))
    assert code == 1 and "--classes does not apply to --dataset msrvtt" in capsys.readouterr().err
    code = main(
        [
            "--task",
            "recognition",
            "--dataset",
            "captions",
            "--data-root",
            str(tmp_path),
            "--preset",
            "tiny",
            "--run-dir",
            str(tmp_path / "r3"),
        ]
    )
    assert code == 1 and "add --task retrieval" in capsys.readouterr().err
    code = main(train_args(captions_root, tmp_path / "r4", "--fold", "2", "--label-smoothing", "0.1"))
    assert code == 1 and "--fold, --label-smoothing do not apply to --task retrieval" in capsys.readouterr().err


def test_torchrun_two_processes_match_one(captions_root, tmp_path):
    """The loss over all-gathered embeddings: 2 processes x batch 2 step as 1 process x batch 4."""
    common = ["--model", "spatial_dropout=0.0", "--epochs", "1"]
    one = tmp_path / "one"
    assert main(train_args(captions_root, one, *common)) == 0
    two = tmp_path / "two"
    cmd = [
        str(BIN / "torchrun"),
        "--nproc_per_node",
        "2",
        "--master_port",
        str(_free_port()),
        "-m",
        "stop_train.cli",
        "train",
        *train_args(captions_root, two, *common),
    ]
    cmd[cmd.index("--batch-size") + 1] = "2"
    result = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    from safetensors.torch import load_file

    w1 = load_file(str(one / "checkpoints" / "last" / "model.safetensors"))
    w2 = load_file(str(two / "checkpoints" / "last" / "model.safetensors"))
    diff = torch.cat([(w1[k] - w2[k]).abs().flatten() for k in w1])
    # float sums in another order flip AdamW's normalised step on parameters whose gradient is ~0 (up to one
    # step, lr = 1e-3 at its peak): bound the largest difference by half a step, and nearly all by far less,
    # which a wrong gather (every parameter off) cannot meet
    assert diff.max().item() < 5e-4 and torch.quantile(diff, 0.99).item() < 1e-5, diff.max()
    m1, m2 = (json.loads((r / "test_metrics.json").read_text()) for r in (one, two))
    assert m1["videos"] == m2["videos"] == 8 and m1["t2v_R1"] == m2["t2v_R1"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_eval_of_a_converted_published_checkpoint(golden, captions_root, tmp_path, capsys):
    """A checkpoint of the published code, converted, evaluates for retrieval straight from its model folder."""
    weights = {k[len("weights.") :]: v for k, v in golden.items() if k.startswith("weights.")}
    # the golden model has a 1000-token vocabulary; a published checkpoint has CLIP's 49408 (BPE captions)
    rows = torch.randn(
        49408 - 1000, weights["token_embedding.weight"].shape[1], dtype=weights["token_embedding.weight"].dtype
    )
    weights["token_embedding.weight"] = torch.cat([weights["token_embedding.weight"], rows])
    torch.save(weights, tmp_path / "published.pth")
    assert main(["convert", str(tmp_path / "published.pth"), str(tmp_path / "converted")]) == 0
    rows = list(csv.reader(open(captions_root / "small_test.csv")))
    (tmp_path / "four.csv").write_text("\n".join(",".join(r) for r in rows[:5]) + "\n")
    capsys.readouterr()
    assert (
        main(
            [
                "eval",
                str(tmp_path / "converted"),
                "--task",
                "retrieval",
                "--dataset",
                "msrvtt",
                "--data-root",
                str(captions_root),
                "--test-list",
                str(tmp_path / "four.csv"),
                "--workers",
                "0",
                "--probe-cache",
                str(tmp_path / "probe.json"),
            ]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["videos"] == 4 and printed["captions"] == 4 and 1 <= printed["t2v_MdR"] <= 4
    assert json.loads((tmp_path / "converted" / "test_metrics.json").read_text())["split"] == "test"
