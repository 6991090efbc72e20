"""stop-train end to end on a small generated synthetic-motion set: resume, eval, folds, torchrun, errors."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from stop_train.cli import main
from stop_train.data.synthetic import SyntheticSpec, write_synthetic_motion
from stop_train.engine.distributed import DistInfo
from stop_train.engine.optim import epoch_batches, lr_factor
from stop_train.statistics import STATISTICS_FILE, FrameStatistics

SPEC = SyntheticSpec(groups=6, clips_per_group=1, frames=12, width=48, height=32)
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return write_synthetic_motion(tmp_path_factory.mktemp("synthetic"), SPEC)


def args(data_root, run_dir, *extra):
    return [
        "--dataset",
        "synthetic-motion",
        "--data-root",
        str(data_root),
        "--preset",
        "tiny",
        "--pretrained",
        "none",
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


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def checkpoint(run_dir, name="last"):
    folder = run_dir / "checkpoints" / name
    return load_file(str(folder / "model.safetensors")), torch.load(folder / "trainer_state.pt", weights_only=False)


def test_resume_equals_an_uninterrupted_run(data_root, tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert main(args(data_root, straight, "--max-steps", "4")) == 0
    assert main(args(data_root, split, "--max-steps", "2")) == 0
    assert main(["--resume", str(split), "--max-steps", "4", "--workers", "0"]) == 0
    w_a, s_a = checkpoint(straight)
    w_b, s_b = checkpoint(split)
    assert s_a["step"] == s_b["step"] == 4 and s_a["batch_in_epoch"] == s_b["batch_in_epoch"]
    assert all(torch.equal(w_a[k], w_b[k]) for k in w_a)
    opt_a, opt_b = s_a["optimizer"]["state"], s_b["optimizer"]["state"]
    assert opt_a.keys() == opt_b.keys() and all(torch.equal(opt_a[k]["exp_avg"], opt_b[k]["exp_avg"]) for k in opt_a)
    assert torch.equal(s_a["torch_rng"], s_b["torch_rng"])


def test_full_run_writes_the_run_directory_then_eval_and_folds(data_root, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(args(data_root, run, "--test-crops", "3")) == 0
    assert "test top-1" in capsys.readouterr().out
    for name in (
        "config.json",
        "labels.txt",
        "metrics.csv",
        "skipped_videos.json",
        "test_metrics.json",
        "confusion_test.png",
        "checkpoints/best/model.safetensors",
        "checkpoints/last/trainer_state.pt",
    ):
        assert (run / name).is_file(), name
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"] and float(rows[-1]["clips_per_s"]) > 0
    config = json.loads((run / "config.json").read_text())
    assert config["sampling"]["sampler"] == "segments" and config["sampling"]["frame_interval_s"] > 0
    test = json.loads((run / "test_metrics.json").read_text())
    assert test["count"] == 12 and test["test_crops"] == 3 and 0 <= test["top1"] <= 1
    assert main(["eval", str(run), "--split", "val", "--workers", "0"]) == 0
    captured = capsys.readouterr()
    printed = json.loads(captured.out.strip().splitlines()[-1])
    assert f"wrote {run / 'val_metrics.json'}" in captured.err
    val = json.loads((run / "val_metrics.json").read_text())
    assert printed["top1"] == pytest.approx(val["top1"], abs=1e-4)
    assert val["count"] == 6 and val["split"] == "val"
    # another checkpoint, or other test views, into the run: its own test_metrics.json is kept
    own = (run / "test_metrics.json").read_text()
    assert main(["eval", str(run), "--checkpoint", "last", "--test-crops", "1", "--workers", "0"]) == 0
    (tagged,) = run.glob("test_metrics.last.eval-*.json")
    assert json.loads(tagged.read_text())["test_crops"] == 1 and (run / "test_metrics.json").read_text() == own
    assert f"wrote {tagged}" in capsys.readouterr().err
    assert main(["eval", str(run), "--checkpoint", "nope"]) == 1  # refused before the data is read
    assert "has no checkpoint 'nope' (found: best, last)" in capsys.readouterr().err
    best, last = run / "checkpoints" / "best", run / "checkpoints" / "last"
    _, state = checkpoint(run, "last")  # last learnt the validation result after its weights were saved
    assert state["best_score"] == pytest.approx(max(float(r["val_top1"]) for r in rows), abs=1e-4)
    # best holds the files last had when it won: the same inode if epoch 2 won, else last was saved again since
    linked = os.path.samefile(best / "model.safetensors", last / "model.safetensors")
    assert linked == (state["best_epoch"] == 1)
    # the chosen checkpoint's class statistics (label banks): one clip of each training video, by class
    stats = FrameStatistics.load(best / STATISTICS_FILE)
    assert stats.labels == (run / "labels.txt").read_text().split() and stats.dim == 4 * 32
    assert stats.count.sum() == 36 - 12 - 6 and np.all(stats.count > 0)  # all videos less the test and val ones
    assert not (last / STATISTICS_FILE).exists() or linked
    from stop_train.model import load_model
    from stop_train.model.factory import model_fingerprint

    assert stats.fingerprint == model_fingerprint(load_model(best))  # what stop-export compares
    assert main(["stats", str(run), "--checkpoint", "last", "--workers", "0"]) == 0
    assert "class statistics of" in capsys.readouterr().out
    assert FrameStatistics.load(last / STATISTICS_FILE).count.tolist() == stats.count.tolist()
    with pytest.raises(SystemExit):
        main(["stats", str(run), "--batch-size", "0"])
    labels = (run / "labels.txt").read_text()
    names = labels.split()
    (run / "labels.txt").write_text("\n".join([names[1], names[0], *names[2:]]) + "\n")  # data of other classes
    assert main(["stats", str(run), "--workers", "0"]) == 1
    assert "are not the run's" in capsys.readouterr().err
    (run / "labels.txt").write_text(labels)
    assert main(["folds", str(run), str(run)]) == 0
    folds = json.loads(capsys.readouterr().out)
    assert folds["top1"]["mean"] == pytest.approx(test["top1"]) and folds["top1"]["std"] == 0


def test_bad_data_root_gives_one_message_with_the_layout(tmp_path, capsys):
    code = main(
        [
            "--dataset",
            "ucf101",
            "--data-root",
            str(tmp_path / "nowhere"),
            "--preset",
            "tiny",
            "--pretrained",
            "none",
            "--run-dir",
            str(tmp_path / "r"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("stop-train train: error: ucf101: root folder not found")
    assert "expected layout" in err and "classInd.txt" in err and "Traceback" not in err


def test_unreadable_videos_are_skipped_and_listed(data_root, tmp_path):
    import shutil

    root = tmp_path / "damaged"
    shutil.copytree(data_root, root)
    victim = next((root / "UCF-101" / "MovingUp").glob("*_g05_*.avi"))
    victim.write_bytes(b"")
    assert main(args(root, tmp_path / "run", "--epochs", "1")) == 0
    skipped = json.loads((tmp_path / "run" / "skipped_videos.json").read_text())
    assert skipped == [{"path": str(victim), "reason": "zero-byte file"}]


def test_schedule_and_batches():
    assert lr_factor(0, 100, 0.1) == pytest.approx(0.1) and lr_factor(9, 100, 0.1) == 1.0
    assert lr_factor(55, 100, 0.1) == pytest.approx(0.5) and lr_factor(100, 100, 0.1) == pytest.approx(0.0)
    single = epoch_batches(10, 4, seed=1, epoch=0, info=DistInfo())
    r0 = epoch_batches(10, 2, seed=1, epoch=0, info=DistInfo(0, 2, 0))
    r1 = epoch_batches(10, 2, seed=1, epoch=0, info=DistInfo(1, 2, 0))
    assert sorted(single[0]) == sorted(r0[0] + r1[0])  # the same clips make a step on 1 or 2 processes


def test_torchrun_two_processes_match_one(data_root, tmp_path):
    """2 CPU processes (gloo) with batch 2 each == 1 process with batch 4: same weights and metrics; rank 0 writes."""
    common = ["--model", "spatial_dropout=0.0", "--epochs", "1", "--val-fraction", "0.25"]
    one = tmp_path / "one"
    assert main(args(data_root, one, *common)) == 0
    two = tmp_path / "two"
    cmd = [
        str(BIN / "torchrun"),
        "--nproc_per_node",
        "2",
        "--master_port",
        str(free_port()),
        "-m",
        "stop_train.cli",
        "train",
        *args(data_root, two, *common),
    ]
    cmd[cmd.index("--batch-size") + 1] = "2"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    w1, s1 = checkpoint(one)
    w2, s2 = checkpoint(two)
    assert s1["step"] == s2["step"]
    assert max((w1[k] - w2[k]).abs().max().item() for k in w1) < 1e-4
    m1 = json.loads((one / "test_metrics.json").read_text())
    m2 = json.loads((two / "test_metrics.json").read_text())
    assert m1["count"] == m2["count"] == 12 and m1["top1"] == m2["top1"]
    assert len(list(csv.DictReader(open(two / "metrics.csv")))) == 1  # written once, by rank 0
    # class statistics summed over the ranks' shards equal one process's
    a, b = (FrameStatistics.load(run / "checkpoints" / "best" / STATISTICS_FILE) for run in (one, two))
    assert a.count.tolist() == b.count.tolist() and np.allclose(a.mean, b.mean, atol=1e-3)
    assert np.allclose(a.variance, b.variance, rtol=1e-2)


def test_shuffled_frames_are_a_permutation_of_the_clip(data_root):
    from stop_train.data import open_dataset
    from stop_train.engine.data import ClipDataset, ProbeCache, probe_items
    from stop_train.video import PreprocessCfg, SamplingCfg

    index = open_dataset("synthetic-motion", data_root, val_fraction=0.25)
    items, infos, _ = probe_items(index.splits["test"][:2], ProbeCache(None))
    sampling, pre = SamplingCfg(frames=4), PreprocessCfg(size=32)
    plain = ClipDataset(items, infos, sampling, pre, train=False)[0][0][0]  # view 0: (T, 3, S, S)
    shuffled = ClipDataset(items, infos, sampling, pre, train=False, shuffle_frames=True, seed=3)[0][0][0]
    assert not torch.equal(plain, shuffled)
    assert sorted(f.sum().item() for f in plain) == pytest.approx(sorted(f.sum().item() for f in shuffled))


def test_optimizer_groups_scale_the_backbone_lr_and_the_logit_scale_init():
    from stop_train.engine.config import TrainConfig
    from stop_train.engine.optim import build_optimizer
    from stop_train.model import create_model

    model = create_model("tiny")
    assert float(model.logit_scale) == pytest.approx(1 / 0.07, rel=1e-5)  # the tiny preset's init_logit_scale
    assert float(create_model("tiny", init_logit_scale=100.0).logit_scale) == pytest.approx(100.0, rel=1e-5)
    with pytest.raises(ValueError, match="init_logit_scale"):
        create_model("tiny", init_logit_scale=0.0)
    opt = build_optimizer(model, TrainConfig(lr=1e-3, backbone_lr_scale=0.1, decay_exclude="bias-norm-prompt"))
    backbone = {id(p) for n, p in model.named_parameters() if n.startswith("clip.")}
    seen = 0
    for group in opt.param_groups:
        in_backbone = {id(p) in backbone for p in group["params"]}
        assert len(in_backbone) == 1  # a group never mixes the backbone and the STOP parts
        assert group["lr"] == pytest.approx(1e-4 if in_backbone.pop() else 1e-3)
        seen += len(group["params"])
    assert seen == sum(p.requires_grad for p in model.parameters())


# ------------------------------------------------------------------ one model config per run (issue 11)


def test_model_overrides_reach_the_model_once_and_conflicts_name_both(data_root, tmp_path, capsys):
    from stop_train.engine.checkpoint import CONFIG

    run = tmp_path / "run"
    assert main(args(data_root, run, "--model", "frames=6", "--model", "vision.image_size=48", "--max-steps", "1")) == 0
    config = json.loads((run / "config.json").read_text())
    saved = json.loads((run / "checkpoints" / "last" / CONFIG).read_text())
    assert config["model"] == saved  # one config: the run's record and the checkpoint's are the same object
    assert saved["frames"] == config["sampling"]["frames"] == 6 and saved["vision"]["image_size"] == 48
    assert config["preprocess"]["size"] == 48 and config["train"]["pretrained"] == "none"  # tiny's own default
    capsys.readouterr()
    for extra, named in (
        (["--model", "frames=6", "--model", "frames=8"], "frames=6 and frames=8"),
        (
            ["--model", "vision.image_size=48", "--model", 'vision={"image_size": 32}'],
            'vision.image_size=48 and vision={"image_size": 32}',
        ),
    ):
        assert main(args(data_root, tmp_path / "bad", *extra)) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "given twice" in err[0] and named in err[0]
    assert not (tmp_path / "bad").exists()  # refused before anything was written


def test_resume_and_eval_read_the_runs_config_not_the_preset(data_root, tmp_path, capsys, monkeypatch):
    import stop_train.config as config_module

    run = tmp_path / "run"
    assert main(args(data_root, run, "--model", "frames=6", "--max-steps", "1")) == 0
    real = config_module.load_preset
    monkeypatch.setattr(config_module, "load_preset", lambda *a: pytest.fail("the preset was read again"))
    import stop_train.engine.setup as setup_module

    monkeypatch.setattr(setup_module, "load_preset", config_module.load_preset)
    assert main(["--resume", str(run), "--max-steps", "2", "--workers", "0"]) == 0
    assert main(["eval", str(run), "--split", "test", "--workers", "0"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["count"] == 12
    monkeypatch.setattr(config_module, "load_preset", real)
    for flag in (["--epochs", "5"], ["--batch-size", "32"]):  # 32 is the default: still a change of this run
        assert main(["--resume", str(run), *flag]) == 1
        assert f"{flag[0]} would change the run" in capsys.readouterr().err


def test_pretrained_weights_set_the_activation_before_the_config_is_written():
    from stop_train.engine.config import TrainConfig
    from stop_train.engine.setup import new_run_config

    cfg, model_cfg = new_run_config(TrainConfig(preset="stop-b32", pretrained="laion2b_s34b_b79k"))
    assert model_cfg.quick_gelu is False and cfg.pretrained == "laion2b_s34b_b79k"  # nothing downloaded to know
    cfg, model_cfg = new_run_config(TrainConfig(preset="stop-b32"))
    assert cfg.pretrained == "openai" and model_cfg.quick_gelu is True
    with pytest.raises(ValueError, match="tags: none"):
        new_run_config(TrainConfig(preset="tiny", pretrained="openai"))


# ------------------------------------------------------------------ empty validation, no lost epochs


def test_an_empty_holdout_trains_without_validation_keeps_last_and_still_tests(data_root, tmp_path, capsys, caplog):
    # 1 % of 4 training clips per class rounds to no group: the hold-out comes out empty
    run = tmp_path / "run"
    assert main(args(data_root, run, "--val-fraction", "0.01", "--epochs", "1")) == 0
    assert "hold-out came out empty" in caplog.text and "no validation split" in caplog.text
    out = capsys.readouterr().out
    assert "no validation: checkpoint 'last'" in out and "test top-1" in out
    assert not (run / "checkpoints" / "best").exists()
    assert json.loads((run / "test_metrics.json").read_text())["checkpoint"] == "last"
    row = next(csv.DictReader(open(run / "metrics.csv")))
    assert row["val_top1"] == "" and float(row["train_loss"]) > 0
    assert main(["eval", str(run), "--split", "val"]) == 1
    assert "this data has no val split (splits with videos: train, test)" in capsys.readouterr().err


def test_a_failing_validation_loses_no_epoch(data_root, tmp_path, monkeypatch):
    import stop_train.engine.loop as loop

    def broken(*a, **k):
        raise RuntimeError("validation broke")

    monkeypatch.setattr(loop, "evaluate", broken)
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="validation broke"):  # not an error of ours: a bug keeps its traceback
        main(args(data_root, run, "--epochs", "1"))
    _, state = checkpoint(run, "last")
    assert (
        state["epoch"] == 1 and state["step"] == 5
    )  # 18 clips, batch 4: the epoch's weights were saved before validation ran
    assert not (run / "checkpoints" / "best").exists()


# ------------------------------------------------------------------ eval on model folders, flags, weight decay


def test_eval_takes_a_model_folder_with_dataset_flags(data_root, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    assert main(args(data_root, run, "--max-steps", "1")) == 0
    folder = tmp_path / "model"
    shutil.copytree(run / "checkpoints" / "last", folder)
    (folder / "trainer_state.pt").unlink()
    capsys.readouterr()
    assert main(["eval", str(folder), "--workers", "0"]) == 1
    assert "give the data with --dataset and --data-root" in capsys.readouterr().err
    assert (
        main(
            [
                "eval",
                str(folder),
                "--dataset",
                "synthetic-motion",
                "--data-root",
                str(data_root),
                "--workers",
                "0",
                "--probe-cache",
                str(tmp_path / "probe.json"),
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["count"] == 12
    assert json.loads((folder / "test_metrics.json").read_text())["split"] == "test"


def test_dataset_flags_are_checked_against_the_dataset(data_root, tmp_path, capsys):
    for flag in (["--train-list", "x.txt"], ["--video-ext", ".mp4"], ["--no-flip-safe"]):
        assert main(args(data_root, tmp_path / "r", *flag)) == 1
        err = capsys.readouterr().err
        assert "does not apply to --dataset synthetic-motion" in err and flag[0] in err


def test_flip_safe_and_extensions_reach_the_folder_indexer(tmp_path):
    from stop_train.engine.config import TrainConfig
    from stop_train.engine.setup import dataset_options

    cfg = TrainConfig(dataset="folder", flip_safe=False, extensions="mp4,.MKV")
    assert dataset_options(cfg) == {"flip_safe": False, "extensions": (".mp4", ".mkv")}
    cfg = TrainConfig(dataset="list", train_list="a.txt", test_list="b.txt", classes="c.txt")
    assert dataset_options(cfg) == {"lists": {"train": "a.txt", "test": "b.txt"}, "classes": "c.txt"}


def test_weight_decay_rule_is_the_models():
    from stop_train.engine.config import TrainConfig
    from stop_train.engine.optim import build_optimizer
    from stop_train.model import create_model

    model = create_model("tiny")
    for rule in ("bias", "bias-norm-prompt"):
        no_decay = {id(p) for n, p in model.named_parameters() if n in model.no_weight_decay(rule)}
        opt = build_optimizer(model, TrainConfig(decay_exclude=rule))
        for group in opt.param_groups:
            assert {id(p) in no_decay for p in group["params"]} == {group["weight_decay"] == 0.0}
    assert model.no_weight_decay("bias") < model.no_weight_decay("bias-norm-prompt")
    assert "global_prompts" in model.no_weight_decay("bias-norm-prompt")
    with pytest.raises(ValueError, match="decay_exclude"):
        model.no_weight_decay("norms")


def test_model_values_are_type_checked_in_one_line(data_root, tmp_path, capsys):
    for item, message in (
        ("frames=abc", "frames='abc' is not an int"),
        ("spatial_scale=abc", "is not a float"),
        ("global_prompts=2.5", "global_prompts=2.5 is not an int"),
        ("freeze_backbone=maybe", "freeze_backbone='maybe' is not a bool"),
    ):
        assert main(args(data_root, tmp_path / "r", "--model", item)) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
