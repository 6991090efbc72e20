"""Converter for checkpoints of the published code: names, `clip.` prefix, weights_only loading, CLI."""

from __future__ import annotations

import pytest
import torch

from stop_train.cli import main as stop_train_main
from stop_train.model import load_model
from stop_train.model.convert import convert_checkpoint, convert_state_dict, infer_config, rename_state_dict
from stop_train.model.weights import CheckpointError
from stop_train.tolerances import GOLDEN_REL_ERR, relative_error


def published_weights(golden):
    return {k[len("weights.") :]: v for k, v in golden.items() if k.startswith("weights.")}


def test_clip_prefix_and_weights_only_file(golden, tmp_path):
    """A CLIP4Clip-style checkpoint (`clip.` prefix, fp16 tensors, torch.save) converts and matches the golden logits."""
    wrapped = {"clip." + k: v for k, v in published_weights(golden).items()}
    wrapped["some_other_module.weight"] = torch.zeros(3)  # CLIP4Clip keeps more than CLIP; ignored
    torch.save(wrapped, tmp_path / "pytorch_model.bin.0")
    model = convert_checkpoint(tmp_path / "pytorch_model.bin.0")
    with torch.no_grad():
        logits = model(golden["input.video"].float(), golden["input.text_ids"].long())
    assert relative_error(logits, golden["output.logits"].float()) < GOLDEN_REL_ERR


def test_cli_convert_writes_a_loadable_folder(golden, tmp_path, capsys):
    torch.save(published_weights(golden), tmp_path / "ckpt.pth")
    assert stop_train_main(["convert", str(tmp_path / "ckpt.pth"), str(tmp_path / "out")]) == 0
    assert "official mode, T=8" in capsys.readouterr().out
    model = load_model(tmp_path / "out").eval()
    with torch.no_grad():
        emb = model.encode_video(golden["input.video"].float(), normalize=False)
    assert relative_error(emb, golden["output.video_embedding"][:, 0].float()) < GOLDEN_REL_ERR


def test_frames_are_checked_against_the_generator(golden):
    weights = published_weights(golden)
    assert infer_config(weights).frames == 8
    with pytest.raises(ValueError, match="T=8 does not fit frames=12"):
        infer_config(weights, frames=12)


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert stop_train_main(["convert", str(tmp_path / "missing.pth"), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("stop-train convert: error:")


def test_unexpected_keys_and_linear_without_frames():
    with pytest.raises(CheckpointError, match="unexpected key"):
        rename_state_dict({"unknown_module.weight": torch.zeros(1)})
    state = {
        "visual.proj": torch.zeros(8, 4),
        "visual.conv1.weight": torch.zeros(8, 3, 4, 4),
        "visual.positional_embedding": torch.zeros(5, 8),
        "ln_final.weight": torch.zeros(8),
        "positional_embedding": torch.zeros(16, 8),
        "token_embedding.weight": torch.zeros(100, 8),
        "text_projection": torch.zeros(8, 4),
        "visual.TemporalPrompt.InterMLP.2.weight": torch.zeros(2, 16),
        "visual_prompt_embedding": torch.zeros(1, 2, 16),
        "visual.prompt_embeddings": torch.zeros(1, 2, 8),
    }
    with pytest.raises(ValueError, match="pass frames=T"):
        convert_state_dict(state)
    with pytest.raises(ValueError, match="visual.proj"):
        convert_state_dict({"foo": torch.zeros(1)})
