"""The dynamic-mode attention pattern (DECISIONS §1.1.6), checked by perturbing one token at a time."""

from __future__ import annotations

import pytest
import torch

from stop_train.model import create_model
from stop_train.model.attention import dynamic_attention
from stop_train.model.insert_op import interleave

G, T, F, P = 2, 3, 4, 2


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    block = create_model("tiny").clip.visual.transformer.resblocks[0]
    d = block.attn.embed_dim
    # gap 0: slot 0 active, slot 1 inactive; gap 1: both inactive
    active = torch.tensor([[[True, False], [False, False]]])
    key_mask = torch.cat(
        [torch.ones(1, G, dtype=torch.bool), interleave(torch.ones(1, T, F, dtype=torch.bool), active)], 1
    )
    h = torch.randn(1, key_mask.shape[1], d)
    return block, h, key_mask


def positions():
    """Sequence index of each named group: globals, frame t, gap t (slots)."""
    pos, idx = {"globals": list(range(G))}, G
    for t in range(T):
        pos[f"frame{t}"] = list(range(idx, idx + F))
        idx += F
        if t < T - 1:
            pos[f"gap{t}"] = list(range(idx, idx + P))
            idx += P
    return pos


def reached(setup, token: int) -> set[int]:
    block, h, key_mask = setup
    attend = lambda x: dynamic_attention(block, x, key_mask, G, T, F, P)  # noqa: E731
    with torch.no_grad():
        base = attend(h)
        bumped = h.clone()
        bumped[0, token] += 1.0
        diff = (attend(bumped) - base).abs().amax(-1)[0]
    return {i for i in range(h.shape[1]) if diff[i] > 1e-6}


def test_a_frame_patch_reaches_its_frame_its_active_gap_prompts_and_the_globals(setup):
    pos = positions()
    got = reached(setup, pos["frame0"][-1])
    expected = set(pos["globals"]) | set(pos["frame0"]) | {pos["gap0"][0]}
    # the inactive slot of gap 0 is a query too: it may see frame 0, but nobody sees it
    assert expected <= got <= expected | {pos["gap0"][1]}
    assert not got & (set(pos["frame1"]) | set(pos["frame2"]))


def test_an_active_gap_prompt_reaches_both_neighbouring_frames(setup):
    pos = positions()
    got = reached(setup, pos["gap0"][0])
    assert set(pos["frame0"]) | set(pos["frame1"]) | set(pos["globals"]) <= got
    assert not got & set(pos["frame2"])


def test_an_inactive_slot_reaches_nothing_but_itself(setup):
    pos = positions()
    for token in (pos["gap0"][1], pos["gap1"][0]):
        assert reached(setup, token) == {token}


def test_a_global_prompt_reaches_everything(setup):
    block, h, _ = setup
    assert reached(setup, 0) == set(range(h.shape[1]))
