"""The `official` mode, loaded through the converter, reproduces the published implementation's tensors."""

from __future__ import annotations

import pytest
import torch

from stop_train.model.convert import convert_state_dict
from stop_train.model.stop import STOP
from stop_train.tolerances import GOLDEN_REL_ERR, relative_error


@pytest.fixture(scope="module")
def model(golden):
    weights = {k[len("weights.") :]: v for k, v in golden.items() if k.startswith("weights.")}
    cfg, state = convert_state_dict(weights)
    m = STOP(cfg).eval()
    m.load_state_dict(state, strict=True)
    return m


def published_token_order(hidden: torch.Tensor, globals_: int, frames: int) -> torch.Tensor:
    """Our frame-major layout -> the published token-major one (index G + k*T + t)."""
    b, _, d = hidden.shape
    body = hidden[:, globals_:].view(b, frames, -1, d).transpose(1, 2).reshape(b, -1, d)
    return torch.cat([hidden[:, :globals_], body], dim=1)


def test_inferred_config(model):
    cfg = model.cfg
    assert (cfg.mode, cfg.frames, cfg.vision.layers, cfg.text.layers, cfg.text.width) == ("official", 8, 2, 12, 64)
    assert (cfg.prompt_layers, cfg.mask_layout, cfg.prompt_generator) == (12, "lattice", "transformer")


@torch.no_grad()
def test_every_golden_tensor(golden, model):
    video = golden["input.video"].float()
    ids = golden["input.text_ids"].long()
    k = ids.shape[0]
    text_prompts, visual_prompts = model.prompts()
    prompted, cells = model.spatial(video)
    tokens = model.embed_frames(prompted)
    inter, weight = model.temporal(tokens, cells)
    hidden, aux = model.forward_visual(video)
    ours = {
        "prompts.visual": visual_prompts.unsqueeze(1),
        "prompts.text": text_prompts.unsqueeze(1).expand(-1, k, -1, -1),
        "spatial.prompted_frames": prompted,
        "visual.tokens_layer0_in": tokens[0],
        "temporal.frame_weights": weight,
        "temporal.inter_prompt": inter.flatten(1, 2),
        "visual.hidden": published_token_order(hidden, model.cfg.global_prompts, model.cfg.frames),
        "output.video_embedding": model.video_features(hidden).unsqueeze(1),
        "output.text_embedding": model.encode_text(ids, normalize=False),
        "output.logits": model(video, ids),
    }
    expected_keys = {k for k in golden if not k.startswith(("weights.", "input.")) and k != "spatial.mask"}
    assert set(ours) == expected_keys, "every stored tensor is compared"
    errors = {name: relative_error(value, golden[name].float()) for name, value in ours.items()}
    assert all(err < GOLDEN_REL_ERR for err in errors.values()), errors
    assert torch.equal(cells.to(torch.uint8), golden["spatial.mask"])
    assert torch.equal(aux["spatial_mask"], cells) and torch.equal(aux["frame_weight"], weight)
