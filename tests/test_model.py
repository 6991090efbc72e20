"""STOP model behaviour on small configs: shapes, batch independence, edge cases, gradients, generality."""

from __future__ import annotations

import json

import pytest
import torch

from stop_train.config import apply_overrides, list_presets, load_config, load_preset, presets_dir
from stop_train.model import STOP, create_model, dead_parameters, load_model, save_model
from stop_train.tolerances import BATCH_REL_ERR, relative_error

OFFICIAL = dict(mode="official", mask_layout="lattice", text_postfix_prompts=2)
MODES = {"dynamic": {}, "official": OFFICIAL}


def tiny(mode: str = "dynamic", **overrides) -> STOP:
    return create_model("tiny", **MODES[mode], **overrides)


def random_video(model: STOP, batch: int = 1) -> torch.Tensor:
    cfg = model.cfg
    return torch.randn(batch, cfg.frames, 3, cfg.vision.image_size, cfg.vision.image_size)


@pytest.mark.parametrize("mode", MODES)
@torch.no_grad()
def test_outputs_and_overlays(mode):
    model = tiny(mode).eval()
    cfg = model.cfg
    emb, aux = model.encode_video(random_video(model, 2), return_aux=True)
    assert emb.shape == (2, cfg.embed_dim) and torch.allclose(emb.norm(dim=-1), torch.ones(2))
    g = cfg.vision.grid
    assert aux["spatial_mask"].shape == (2, cfg.frames, g, g)
    assert (aux["spatial_mask"].flatten(2).sum(-1) == cfg.spatial_topk).all()
    if mode == "dynamic":
        assert aux["gap_variation"].shape == (2, cfg.frames - 1) and aux["gap_prompt_count"].dtype == torch.int32
        assert (aux["gap_prompt_count"].amax(-1) == cfg.prompts_per_gap).all()  # the most-changing gap gets P
        assert (aux["gap_prompt_count"].amin(-1) == 0).all()
    else:
        assert aux["frame_weight"].shape == (2, cfg.frames)
    text = model.encode_labels(["ApplyEyeMakeup", "brush_hair", "abseiling"])
    logits = model.get_logits(emb, text)
    assert logits.shape == (2, 3) and torch.isfinite(logits).all()


@pytest.mark.parametrize("mode", MODES)
@torch.no_grad()
def test_batch_independence(mode):
    model = tiny(mode).eval()
    videos = random_video(model, 3)
    videos[2] = videos[2, :1]  # a still video beside moving ones: its normalisation must stay its own
    alone, aux_alone = model.encode_video(videos[1:2], return_aux=True)
    batch, aux_batch = model.encode_video(videos, return_aux=True)
    assert relative_error(batch[1:2], alone) < BATCH_REL_ERR
    for key, value in aux_alone.items():
        if value.dtype in (torch.bool, torch.int32):
            assert torch.equal(aux_batch[key][1:2], value), key
        else:
            assert relative_error(aux_batch[key][1:2], value) < BATCH_REL_ERR, key


@pytest.mark.parametrize("mode", MODES)
@torch.no_grad()
def test_identical_frames(mode):
    model = tiny(mode).eval()
    video = random_video(model)[:, :1].expand(2, model.cfg.frames, -1, -1, -1).contiguous()
    emb, aux = model.encode_video(video, return_aux=True)
    assert torch.isfinite(emb).all()
    if mode == "dynamic":
        assert aux["gap_prompt_count"].sum() == 0
    else:
        assert torch.isfinite(aux["frame_weight"]).all()


@pytest.mark.parametrize("mode", MODES)
@torch.no_grad()
def test_two_frames(mode):
    model = tiny(mode, frames=2).eval()
    emb, aux = model.encode_video(random_video(model, 2), return_aux=True)
    assert emb.shape == (2, model.cfg.embed_dim) and torch.isfinite(emb).all()
    if mode == "dynamic":
        assert aux["gap_prompt_count"].shape == (2, 1)
        assert (aux["gap_prompt_count"] == model.cfg.prompts_per_gap).all()  # one gap that changes: all P


@pytest.mark.parametrize(
    "mode,generator",
    [("dynamic", "transformer"), ("dynamic", "linear"), ("official", "transformer"), ("official", "linear")],
)
def test_gradients_reach_trainable_and_only_them(mode, generator):
    model = tiny(mode, prompt_generator=generator, freeze_backbone=True).train()
    video = random_video(model, 2)
    ids = model.tokenize(["a video of a person moving left.", "a video of a person moving right."])
    loss = torch.nn.functional.cross_entropy(model(video, ids), torch.tensor([0, 1]))
    loss.backward()
    dead = dead_parameters(model.cfg)
    trainable, frozen = 0, 0
    largest = max(p.grad.abs().max() for p in model.parameters() if p.grad is not None)
    for name, param in model.named_parameters():
        got = param.grad is not None and param.grad.abs().sum() > 0
        if not param.requires_grad:
            frozen += 1
            assert param.grad is None, f"frozen {name} got a gradient"
        elif name.startswith(dead):  # none, or round-off of an exactly cancelling sum
            assert not got or param.grad.abs().max() < 1e-6 * largest, (
                f"{name} is listed as dead but received a gradient"
            )
        else:
            trainable += 1
            assert got, f"trainable {name} received no gradient"
    assert trainable > 0 and frozen > 0
    if mode == "official":
        assert dead and any(n.startswith("spatial.score_net.") for n, _ in model.named_parameters())
    else:
        assert dead == ()  # in dynamic mode the spatial score network is trained (straight-through)


def test_straight_through_gate_carries_the_variation_gradient(monkeypatch):
    import stop_train.model.stop as stop_module

    model = tiny().train()
    model.spatial.dropout.p = 0.0
    video = random_video(model, 2)
    ids = model.tokenize(["a", "b"])

    def input_grad():
        x = video.clone().requires_grad_(True)
        model(x, ids).square().sum().backward()
        return x.grad

    gate = stop_module.straight_through_gate(torch.randn(2, 4, 9, 8, requires_grad=True), model.cfg)
    assert torch.equal(gate.detach(), torch.ones_like(gate)) and gate.requires_grad
    with_gate = input_grad()
    monkeypatch.setattr(stop_module, "straight_through_gate", lambda frames, cfg: 1.0)
    assert relative_error(input_grad(), with_gate) > 1e-4  # the variation path contributes to the gradient


def test_unfrozen_backbone_trains():
    model = tiny(freeze_backbone=False).train()
    ids = model.tokenize(["a", "b"])
    model(random_video(model, 2), ids).sum().backward()
    assert model.clip.visual.conv1.weight.grad is not None
    assert not model.clip.logit_scale.requires_grad


@pytest.mark.parametrize(
    "overrides",
    [
        {"vision": {"image_size": 96, "patch_size": 16}},  # non-224, 6x6 grid
        {"vision": {"image_size": 80, "patch_size": 20}, "frames": 3},
        {
            "vision": {"image_size": 224, "patch_size": 16, "width": 32, "layers": 1, "head_width": 16},
            "frames": 2,
        },  # B/16-shaped
    ],
)
@pytest.mark.parametrize("mode", MODES)
@torch.no_grad()
def test_other_geometries(mode, overrides):
    model = tiny(mode, **overrides).eval()
    emb, aux = model.encode_video(random_video(model), return_aux=True)
    g = model.cfg.vision.grid
    assert emb.shape == (1, model.cfg.embed_dim) and torch.isfinite(emb).all()
    assert aux["spatial_mask"].shape[-2:] == (g, g)


@pytest.mark.parametrize(
    "feature",
    ["global_prompt0", "average_global_prompt", "average_frame_cls_token", "average_global_prompt_and_frame_cls_token"],
)
@pytest.mark.parametrize("mode", MODES)
@torch.no_grad()
def test_video_features(mode, feature):
    model = tiny(mode, video_feature=feature).eval()
    video = random_video(model)
    hidden, _ = model.forward_visual(video)
    cfg = model.cfg
    stride = cfg.frame_tokens + (cfg.prompts_per_gap if mode == "dynamic" else 0)
    cls_positions = [cfg.global_prompts + t * stride for t in range(cfg.frames)]
    picks = {
        "global_prompt0": [0],
        "average_global_prompt": list(range(cfg.global_prompts)),
        "average_frame_cls_token": cls_positions,
        "average_global_prompt_and_frame_cls_token": list(range(cfg.global_prompts)) + cls_positions,
    }[feature]
    v = model.clip.visual
    expected = (v.ln_post(hidden[:, picks]) @ v.proj).mean(1)
    assert torch.allclose(model.video_features(hidden), expected, atol=1e-6)
    # encode_video lets the last block compute only what the feature reads: same result
    assert relative_error(model.encode_video(video, normalize=False), expected) < BATCH_REL_ERR


def test_every_preset_builds():
    names = list_presets()
    assert {"stop-b32", "stop-b16", "stop-l14", "stop-official-b32", "tiny"} <= set(names)
    fields = set(load_config("tiny").to_dict())
    for name in names:
        data = json.loads((presets_dir() / f"{name}.json").read_text())
        assert set(data) == fields | {"pretrained"}, f"{name}: a preset holds the ModelConfig fields and its weights"
        cfg, weights = load_preset(name)
        assert weights == ("none" if name == "tiny" else "openai"), name
        with torch.device("meta"):
            model = STOP(cfg)
        v = model.clip.visual
        assert v.positional_embedding.shape == (cfg.num_patches + 1, cfg.vision.width), name
        assert len(v.transformer.resblocks) == cfg.vision.layers and v.proj.shape[1] == cfg.embed_dim, name
        assert model.temporal.mlp[0].in_features == cfg.num_patches, name
        assert model.global_prompts.shape == (1, cfg.global_prompts, cfg.vision.width), name
        if cfg.prompt_generator == "transformer":
            rows = cfg.text_prefix_prompts + cfg.text_postfix_prompts + cfg.local_prompts * cfg.frames
            assert model.prompts.embedding.weight.shape == (rows, cfg.prompt_layers * cfg.vision.width), name
        if cfg.mode == "dynamic":
            assert model.gap_offsets.shape == (
                min(cfg.prompt_layers, cfg.vision.layers),
                cfg.prompts_per_gap,
                cfg.vision.width,
            ), name


def test_unknown_override_lists_valid_keys():
    with pytest.raises(ValueError, match="valid keys: .*frames"):
        create_model("tiny", framez=4)
    with pytest.raises(ValueError, match="valid keys: .*image_size"):
        create_model("tiny", vision={"image_sise": 64})
    with pytest.raises(ValueError, match="presets: .*tiny"):
        create_model("no-such-preset")
    with pytest.raises(ValueError, match="mask_layout must be 'patch'"):
        create_model("tiny", mask_layout="lattice")
    cfg = apply_overrides(load_config("tiny"), {"vision.image_size": 96, "frames": 6})
    assert (cfg.vision.image_size, cfg.frames, cfg.vision.patch_size) == (96, 6, 16)


def test_wrong_frame_count_raises():
    model = tiny()
    with pytest.raises(ValueError, match="expected video"):
        model.encode_video(torch.randn(1, model.cfg.frames + 1, 3, 64, 64))


def test_checkpoint_at_another_frame_count_names_it(tmp_path):
    save_model(tiny("official"), tmp_path / "m")
    with pytest.raises(ValueError, match="T=4 frames.*T=6"):
        load_model(tmp_path / "m", frames=6)
    reloaded = load_model(tmp_path / "m")
    assert reloaded.cfg.frames == 4


@torch.no_grad()
def test_save_load_round_trip(tmp_path):
    model = tiny().eval()
    video = random_video(model)
    save_model(model, tmp_path / "m")
    again = load_model(tmp_path / "m").eval()
    assert torch.equal(model.encode_video(video), again.encode_video(video))


def test_backbone_weights_from_local_file(tmp_path):
    donor = tiny()
    torch.save(donor.clip.state_dict(), tmp_path / "clip.pt")
    model = create_model("tiny", pretrained=str(tmp_path / "clip.pt"))
    assert torch.equal(model.clip.visual.conv1.weight, donor.clip.visual.conv1.weight)
    with pytest.raises(ValueError, match="neither a file nor a pretrained tag"):
        create_model("stop-b32", pretrained="no-such-tag")
