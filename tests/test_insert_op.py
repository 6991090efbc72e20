"""The TemporalPromptInsert op: counts follow ceil(P*W), edge cases, layout, custom op == reference."""

from __future__ import annotations

import math

import pytest
import torch

from stop_train.model.insert_op import (
    deinterleave,
    frame_variation,
    interleave,
    normalize_variation,
    temporal_prompt_insert,
    temporal_prompt_insert_reference,
)

TOL = 1e-4


def frames_with_variation(targets: list[list[float]], n: int = 6, d: int = 8, extra: int = 2) -> torch.Tensor:
    """(B, T, extra+n, d) tokens whose adjacent-frame variation v_i equals targets[b][i] (0 <= v <= 1).

    Every patch of frame i+1 is rotated from frame i by the angle with 1 - cos = v_i (in one plane).
    """
    b, t = len(targets), len(targets[0]) + 1
    angles = torch.zeros(b, t, dtype=torch.float64)
    for bi, row in enumerate(targets):
        for i, v in enumerate(row):
            angles[bi, i + 1] = angles[bi, i] + math.acos(1.0 - v)
    tokens = torch.randn(b, t, extra + n, d, dtype=torch.float64)
    tokens[:, :, extra:, :2] = 0
    tokens[:, :, extra:, 2:] = 0
    tokens[:, :, extra:, 0] = torch.cos(angles)[:, :, None]
    tokens[:, :, extra:, 1] = torch.sin(angles)[:, :, None]
    return tokens.float()


@pytest.mark.parametrize("p", [0, 1, 4])
def test_counts_follow_ceil_p_w(p):
    targets = [[0.10, 0.43, 0.27, 0.70], [0.50, 0.05, 0.08, 0.31]]
    frames = frames_with_variation(targets)
    gaps = torch.randn(2, 4, p, frames.shape[-1])
    _, _, variation, counts = temporal_prompt_insert_reference(frames, gaps, p, 6, TOL)
    assert torch.allclose(variation, torch.tensor(targets), atol=1e-5)
    expected = []
    for row in targets:  # per video, away from ties: W = (v - min) / (max - min)
        lo, hi = min(row), max(row)
        expected.append([math.ceil(p * (v - lo) / (hi - lo)) for v in row])
    assert counts.tolist() == expected
    assert counts.dtype == torch.int32


def test_identical_frames_give_no_prompts():
    frames = torch.randn(1, 1, 9, 16).expand(3, 5, 9, 16).contiguous()
    gaps = torch.randn(3, 4, 4, 16)
    tokens, key_mask, variation, counts = temporal_prompt_insert_reference(frames, gaps, 4, 6, TOL)
    assert torch.isfinite(tokens).all() and torch.isfinite(variation).all()
    assert counts.sum() == 0 and key_mask.sum(dim=1).tolist() == [5 * 9] * 3
    assert (variation.abs() < TOL).all()


@pytest.mark.parametrize("v,expected", [(0.3, 4), (0.5 * TOL, 0)])
def test_two_frames_single_gap(v, expected):
    frames = frames_with_variation([[v]])
    _, key_mask, _, counts = temporal_prompt_insert_reference(frames, torch.randn(1, 1, 4, 8), 4, 6, TOL)
    assert counts.tolist() == [[expected]]
    assert key_mask.sum().item() == 2 * frames.shape[2] + expected


def test_equal_variation_everywhere_inserts_everywhere():
    frames = frames_with_variation([[0.2, 0.2, 0.2]])
    _, _, _, counts = temporal_prompt_insert_reference(frames, torch.randn(1, 3, 4, 8), 4, 6, TOL)
    assert counts.tolist() == [[4, 4, 4]]


def test_normalisation_is_per_video():
    w = normalize_variation(torch.tensor([[0.1, 0.3, 0.2], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]), TOL)
    assert torch.allclose(w, torch.tensor([[0.0, 1.0, 0.5], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]))


def test_layout_and_key_mask():
    b, t, f, p, d = 2, 3, 5, 2, 4
    frames = frames_with_variation([[0.1, 0.6], [0.6, 0.1]], n=3, d=d, extra=f - 3)
    gaps = torch.randn(b, t - 1, p, d)
    tokens, key_mask, _, counts = temporal_prompt_insert_reference(frames, gaps, p, 3, TOL)
    assert tokens.shape == (b, t * f + (t - 1) * p, d) and key_mask.shape == tokens.shape[:2]
    assert counts.tolist() == [[0, 2], [2, 0]]
    # video 0: frame0 (5), gap0 (2, inactive), frame1, gap1 (2, active), frame2
    assert torch.equal(tokens[0, :5], frames[0, 0]) and torch.equal(tokens[0, 7:12], frames[0, 1])
    assert torch.equal(tokens[0, 12:14], gaps[0, 1]) and (tokens[0, 5:7] == 0).all()
    assert key_mask[0].tolist() == [True] * 5 + [False] * 2 + [True] * 5 + [True] * 2 + [True] * 5
    fr, gp = deinterleave(tokens, t, f, p)
    assert torch.equal(fr, frames) and torch.equal(interleave(fr, gp), tokens)


def test_custom_op_matches_reference_and_gradients():
    frames = torch.randn(2, 4, 7, 8, requires_grad=True)
    gaps = torch.randn(2, 3, 4, 8, requires_grad=True)
    ref = temporal_prompt_insert_reference(frames, gaps, 4, 5, TOL)
    out = temporal_prompt_insert(frames, gaps, 4, 5, TOL)
    for a, b in zip(out, ref):
        assert torch.equal(a, b)
    weights = torch.randn_like(ref[0])
    g_ref = torch.autograd.grad((ref[0] * weights).sum() + ref[2].sum(), (frames, gaps))
    g_op = torch.autograd.grad((out[0] * weights).sum() + out[2].sum(), (frames, gaps))
    for a, b in zip(g_op, g_ref):
        assert torch.allclose(a, b, atol=1e-6)


def test_fp16_inputs_compute_variation_in_fp32():
    frames = frames_with_variation([[0.1, 0.5, 0.35]]).half()
    tokens, _, variation, counts = temporal_prompt_insert_reference(frames, torch.randn(1, 3, 4, 8).half(), 4, 6, TOL)
    assert tokens.dtype == torch.float16 and variation.dtype == torch.float32
    assert counts.tolist() == [[0, 4, 3]]
    assert torch.allclose(variation, frame_variation(frames.float(), 6), atol=1e-3)


def test_opcheck_and_input_validation():
    frames = torch.randn(2, 4, 7, 8, requires_grad=True)
    gaps = torch.randn(2, 3, 4, 8, requires_grad=True)
    results = torch.library.opcheck(temporal_prompt_insert, (frames, gaps, 4, 5, TOL))
    assert set(results.values()) == {"SUCCESS"}, results
    with pytest.raises(ValueError, match="differ in dtype"):
        temporal_prompt_insert_reference(frames, gaps.double(), 4, 5, TOL)
    with pytest.raises(ValueError, match="gap_prompts must be"):
        temporal_prompt_insert_reference(frames, torch.randn(2, 3, 4, 9), 4, 5, TOL)
    with pytest.raises(ValueError, match="num_patches"):
        temporal_prompt_insert_reference(frames, gaps, 4, 8, TOL)
