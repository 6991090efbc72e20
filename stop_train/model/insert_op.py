"""The `TemporalPromptInsert` op (DECISIONS §3.1): variation -> per-video normalisation -> counts ->
insertion -> key mask, in one node.

`temporal_prompt_insert_reference` is the definition, written with standard ops only (the ONNX function
body and the TensorRT plugin mirror it). `temporal_prompt_insert` is the same computation registered as
the `stop::temporal_prompt_insert` custom op, so that export sees one opaque node.

Inputs : frame_tokens (B, T, F, D), gap_prompts (B, T-1, P, D), float32 or float16.
Outputs: tokens (B, T*F + (T-1)*P, D) in order frame 0, gap 0, frame 1, ..., frame T-1 (inactive slots
         zeroed), key_mask (B, S) bool (True = attend), gap_variation (B, T-1) float32,
         gap_prompt_count (B, T-1) int32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..op_spec import OP_DOMAIN, OP_TYPE, OP_VERSION  # noqa: F401  (re-exported: the op's identity)


def frame_variation(frame_tokens: torch.Tensor, num_patches: int) -> torch.Tensor:
    """v_i = mean over patches j of (1 - cos(h[i, j], h[i+1, j])), in FP32. Shape (B, T-1)."""
    patches = frame_tokens[:, :, -num_patches:].float()  # (B, T, N, D)
    cos = F.cosine_similarity(patches[:, :-1], patches[:, 1:], dim=-1, eps=1e-8)  # (B, T-1, N)
    return (1.0 - cos).mean(dim=-1)


def normalize_variation(variation: torch.Tensor, tol: float) -> torch.Tensor:
    """Per-video min-max of the variation (B, T-1) -> W in [0, 1], guarded as DECISIONS §1.1.2 says."""
    vmin = variation.amin(dim=-1, keepdim=True)
    vrange = variation.amax(dim=-1, keepdim=True) - vmin
    spread = vrange > tol
    scaled = (variation - vmin) / torch.where(spread, vrange, torch.ones_like(vrange))
    flat = (variation > tol).to(variation.dtype)  # every gap changes alike: all or nothing
    return torch.where(spread, scaled, flat)


def prompt_counts(weight: torch.Tensor, prompts_per_gap: int) -> torch.Tensor:
    """n_i = ceil(P * W_i), int32 in [0, P]."""
    return torch.ceil(weight * prompts_per_gap).clamp(0, prompts_per_gap).to(torch.int32)


def interleave(frames: torch.Tensor, gaps: torch.Tensor) -> torch.Tensor:
    """(B, T, F, ...) and (B, T-1, P, ...) -> (B, T*F + (T-1)*P, ...): frame 0, gap 0, frame 1, ..."""
    b, t, f = frames.shape[:3]
    p = gaps.shape[2]
    pad = gaps.new_zeros((b, 1, p) + gaps.shape[3:])
    chunks = torch.cat([frames, torch.cat([gaps, pad], dim=1)], dim=2)  # (B, T, F+P, ...)
    return chunks.flatten(1, 2)[:, : t * f + (t - 1) * p]


def deinterleave(tokens: torch.Tensor, frames: int, frame_len: int, gap_len: int):
    """Inverse of `interleave`: (B, S, ...) -> frames (B, T, F, ...), gaps (B, T-1, P, ...)."""
    b = tokens.shape[0]
    pad = tokens.new_zeros((b, gap_len) + tokens.shape[2:])
    chunks = torch.cat([tokens, pad], dim=1).unflatten(1, (frames, frame_len + gap_len))
    return chunks[:, :, :frame_len], chunks[:, :-1, frame_len:]


def temporal_prompt_insert_reference(
    frame_tokens: torch.Tensor,
    gap_prompts: torch.Tensor,
    prompts_per_gap: int,
    num_patches: int,
    variation_tol: float,
):
    """The op's definition (standard ops only). See the module docstring for shapes."""
    b, t, f, d = frame_tokens.shape
    if gap_prompts.shape != (b, t - 1, prompts_per_gap, d):
        raise ValueError(f"gap_prompts must be ({b}, {t - 1}, {prompts_per_gap}, {d}), got {tuple(gap_prompts.shape)}")
    if gap_prompts.dtype != frame_tokens.dtype:
        raise ValueError(f"frame_tokens ({frame_tokens.dtype}) and gap_prompts ({gap_prompts.dtype}) differ in dtype")
    if not 0 < num_patches <= f:
        raise ValueError(f"num_patches={num_patches} must lie in [1, {f}] (frame group size)")
    variation = frame_variation(frame_tokens, num_patches)
    counts = prompt_counts(normalize_variation(variation, variation_tol), prompts_per_gap)
    slots = torch.arange(prompts_per_gap, device=counts.device)
    active = slots < counts.unsqueeze(-1)  # (B, T-1, P)
    gaps = gap_prompts * active.unsqueeze(-1).to(gap_prompts.dtype)
    tokens = interleave(frame_tokens, gaps).contiguous()
    frame_mask = torch.ones(b, t, f, dtype=torch.bool, device=frame_tokens.device)
    key_mask = interleave(frame_mask, active).contiguous()
    return tokens, key_mask, variation, counts


@torch.library.custom_op("stop::temporal_prompt_insert", mutates_args=())
def temporal_prompt_insert(
    frame_tokens: torch.Tensor,
    gap_prompts: torch.Tensor,
    prompts_per_gap: int,
    num_patches: int,
    variation_tol: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """`TemporalPromptInsert` as a PyTorch custom op (one opaque node for export)."""
    return temporal_prompt_insert_reference(frame_tokens, gap_prompts, prompts_per_gap, num_patches, variation_tol)


@temporal_prompt_insert.register_fake
def _(frame_tokens, gap_prompts, prompts_per_gap, num_patches, variation_tol):
    b, t, f, d = frame_tokens.shape
    s = t * f + (t - 1) * prompts_per_gap
    return (
        frame_tokens.new_empty((b, s, d)),
        frame_tokens.new_empty((b, s), dtype=torch.bool),
        frame_tokens.new_empty((b, t - 1), dtype=torch.float32),
        frame_tokens.new_empty((b, t - 1), dtype=torch.int32),
    )


def _setup_context(ctx, inputs, output):
    frame_tokens, _, prompts_per_gap, num_patches, _ = inputs
    _, key_mask, _, _ = output
    ctx.save_for_backward(frame_tokens, key_mask)
    ctx.set_materialize_grads(False)  # unused outputs give None: skip the variation's backward then
    ctx.num_patches = num_patches
    ctx.prompts_per_gap = prompts_per_gap


def _backward(ctx, grad_tokens, grad_mask, grad_variation, grad_counts):
    # tokens are a rearrangement of the inputs (inactive slots zeroed); the variation is differentiable
    frame_tokens, key_mask = ctx.saved_tensors
    b, t, f, d = frame_tokens.shape
    p = ctx.prompts_per_gap
    if grad_tokens is None:
        grad_frames = torch.zeros_like(frame_tokens)
        grad_gaps = frame_tokens.new_zeros((b, t - 1, p, d))
    else:
        grad_frames, grad_gaps = deinterleave(grad_tokens, t, f, p)
        _, active = deinterleave(key_mask.unsqueeze(-1), t, f, p)
        grad_gaps = grad_gaps * active.to(grad_gaps.dtype)
    if grad_variation is not None:
        with torch.enable_grad():
            x = frame_tokens.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(frame_variation(x, ctx.num_patches), x, grad_variation)
        grad_frames = grad_frames + g.to(grad_frames.dtype)
    return grad_frames.contiguous(), grad_gaps.contiguous(), None, None, None


temporal_prompt_insert.register_autograd(_backward, setup_context=_setup_context)
