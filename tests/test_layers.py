"""Equivalences the fast paths rely on, and the published trainable-parameter counts."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from stop_train.config import apply_overrides, load_config
from stop_train.model import STOP, create_model
from stop_train.model.layers import FFTConv3d
from stop_train.tolerances import BATCH_REL_ERR, relative_error


@pytest.mark.parametrize(
    "cin,cout,kernel,shape",
    [
        (9, 1, (3, 15, 25), (2, 5, 7, 40)),  # InterConv's second layer (odd sizes, batch 2)
        (1, 9, (3, 15, 25), (1, 4, 7, 40)),  # InterConv's first layer
        (9, 16, (3, 11, 11), (3, 4, 23, 20)),  # the spatial prompter's last layer, 3 videos
        (3, 9, (1, 3, 3), (2, 1, 5, 5)),  # one frame, one time tap
        (3, 1, (5, 11, 11), (1, 4, 32, 32)),  # the spatial score network
        (1, 2, (5, 3, 3), (1, 2, 6, 6)),  # kernel larger than the time axis
    ],
)
def test_fft_conv_equals_direct_conv(cin, cout, kernel, shape):
    conv = FFTConv3d(cin, cout, kernel, padding=tuple((k - 1) // 2 for k in kernel))
    x = torch.randn(shape[0], cin, *shape[1:], requires_grad=True)
    direct = F.conv3d(x, conv.weight, conv.bias, padding=conv.padding)
    fast = conv(x)
    assert fast.shape == direct.shape and relative_error(fast, direct) < 1e-5
    g_fast = torch.autograd.grad(fast.square().sum(), (x, conv.weight))
    g_direct = torch.autograd.grad(direct.square().sum(), (x, conv.weight))
    for a, b in zip(g_fast, g_direct):
        assert relative_error(a, b) < 1e-4


def test_eval_folding_of_the_spatial_prompter_matches_training_path():
    model = create_model("tiny", spatial_dropout=0.0)
    video = torch.randn(2, 4, 3, 64, 64)
    with torch.no_grad():
        train_out, train_mask = model.spatial.train()(video)
        eval_out, eval_mask = model.spatial.eval()(video)
    assert torch.equal(train_mask, eval_mask)
    assert relative_error(eval_out, train_out) < BATCH_REL_ERR


def test_prompt_generator_parts_match_the_whole():
    for generator in ("transformer", "linear"):
        model = create_model("tiny", prompt_generator=generator)
        with torch.no_grad():
            text, visual = model.prompts()
            assert relative_error(model.prompts.text(), text) < 1e-6
            assert relative_error(model.prompts.visual(), visual) < 1e-6


@pytest.mark.parametrize("generator,expected", [("transformer", 13_081_528), ("linear", 4_333_752)])
def test_published_trainable_parameter_counts(generator, expected):
    cfg = apply_overrides(load_config("stop-official-b32"), {"prompt_generator": generator})
    assert cfg.frames == 12 and cfg.mode == "official"
    with torch.device("meta"):
        model = STOP(cfg)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == expected
    frozen = sum(p.numel() for n, p in model.named_parameters() if n.startswith("clip."))
    assert frozen == 151_277_313  # the frozen CLIP ViT-B/32 (official-stop.md §1.9)


@pytest.mark.parametrize(
    "kwargs,dtype",
    [
        ({"padding": (0, 1, 1)}, torch.float32),  # not 'same'
        ({"padding": (1, 1, 1), "dilation": (1, 1, 2)}, torch.float32),
        ({"padding": (1, 1, 1), "padding_mode": "circular"}, torch.float32),
    ],
)
def test_fft_conv_falls_back_where_it_does_not_apply(kwargs, dtype):
    conv = FFTConv3d(2, 1, (3, 3, 3), **kwargs).to(dtype)
    x = torch.randn(1, 2, 4, 9, 9, dtype=dtype)
    assert not conv._fft_applies(x)
    assert torch.equal(conv(x), torch.nn.Conv3d.forward(conv, x))


def test_fft_conv3d_takes_bf16_and_transforms_in_fp32():
    conv = FFTConv3d(9, 1, (3, 5, 5), padding=(1, 2, 2)).eval()
    x = torch.randn(2, 9, 4, 16, 16)
    with torch.no_grad():
        exact = torch.nn.functional.conv3d(x, conv.weight, conv.bias, padding=conv.padding)
        half = conv.to(torch.bfloat16)(x.to(torch.bfloat16))
    assert half.dtype == torch.bfloat16
    # torch.fft has no bf16 on the CPU: the transform runs in FP32; only bf16 rounding remains
    assert relative_error(half.float(), exact) < 2e-2


def test_fft_conv3d_takes_any_layout_and_float64():
    """Channels-last inputs (the spatial prompter's) and FP64 give the direct convolution's result."""
    from stop_train.model.layers import fft_conv3d

    w, b = torch.randn(16, 9, 3, 11, 11, dtype=torch.float64) * 0.05, torch.randn(16, dtype=torch.float64)
    x = torch.randn(2, 9, 3, 20, 18, dtype=torch.float64)
    direct = F.conv3d(x, w, b, padding=(1, 5, 5))
    assert relative_error(fft_conv3d(x, w, b), direct) < 1e-12
    x32 = x.float().contiguous(memory_format=torch.channels_last_3d)
    assert relative_error(fft_conv3d(x32, w.float(), b.float()), direct.float()) < 1e-5


@pytest.mark.parametrize("mode", ["dynamic", "official"])
def test_the_model_by_fft_equals_the_model_by_direct_convolutions(mode):
    """The whole forward and every gradient agree whether the prompters' convolutions run by FFT (eager
    CPU) or directly (`direct_convolutions`: what export and GPUs run). In FP64, so that the comparison is
    of the formulas (FP32 rounding through the ViT reaches ~1e-3 on gradients that nearly cancel)."""
    from stop_train.model.layers import direct_convolutions

    torch.manual_seed(0)
    overrides = {"mode": mode, "spatial_dropout": 0.0}
    if mode == "official":
        overrides.update(mask_layout="lattice", text_postfix_prompts=2)
    model = create_model("tiny", **overrides).double()
    video, ids = torch.randn(2, 4, 3, 64, 64, dtype=torch.float64), model.tokenize(["a", "b", "c"])
    results = []
    for direct in (False, True):
        model.zero_grad()
        with direct_convolutions() if direct else torch.enable_grad():
            logits = model(video, ids)
            logits.square().sum().backward()
            with torch.no_grad():
                emb = model.eval().encode_video(video)
            model.train()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results.append((logits.detach(), emb, grads))
    (l1, e1, g1), (l2, e2, g2) = results
    assert relative_error(l1, l2) < 1e-9 and relative_error(e1, e2) < 1e-9
    assert g1.keys() == g2.keys() and any("spatial.conv" in n for n in g1)
    scale = max(g.abs().max() for g in g2.values())
    for name in g1:
        assert (g1[name] - g2[name]).abs().max() < 1e-9 * scale, name
