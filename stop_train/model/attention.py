"""Global-local attention over the STOP token layouts, run with the frozen CLIP block weights.

Layouts (batch-first, width D):
- official: [G global prompts] + T frame groups of F = 1+L+N tokens, frame-major.
  A frame group sees the global prompts and itself; the global prompts see every token (DGL).
- dynamic:  [G global prompts] + frame 0, gap 0, frame 1, ..., frame T-1 with P slots per gap, and a key
  mask (B, S) for the inactive slots (DECISIONS §1.1.6).
Q, K and V are projected once for the whole sequence; each group then attends to its own key set.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .insert_op import deinterleave, interleave


def _heads(block: nn.Module) -> int:
    return block.attn.num_heads


def _project_qkv(block: nn.Module, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, S, D) -> q, k, v each (B, H, S, hd)."""
    b, s, d = h.shape
    qkv = F.linear(h, block.attn.in_proj_weight, block.attn.in_proj_bias)
    qkv = qkv.view(b, s, 3, _heads(block), d // _heads(block)).permute(2, 0, 3, 1, 4)
    return qkv[0], qkv[1], qkv[2]


def _project_out(block: nn.Module, o: torch.Tensor) -> torch.Tensor:
    """(B, H, S, hd) -> (B, S, D)."""
    return F.linear(o.transpose(1, 2).flatten(2), block.attn.out_proj.weight, block.attn.out_proj.bias)


def _groups(x: torch.Tensor, frames: int) -> torch.Tensor:
    """(B, H, T*F, hd) -> (B, T, H, F, hd)."""
    return x.unflatten(2, (frames, -1)).transpose(1, 2)


def official_attention(block: nn.Module, h: torch.Tensor, globals_: int, frames: int) -> torch.Tensor:
    """DGL global-local attention on the official layout. h: LN'd tokens (B, S, D)."""
    q, k, v = _project_qkv(block, h)
    b, nh, _, hd = q.shape
    g = globals_
    out_g = F.scaled_dot_product_attention(q[:, :, :g], k, v)  # globals see everything
    kg = k[:, :, :g].unsqueeze(1).expand(b, frames, nh, g, hd)
    vg = v[:, :, :g].unsqueeze(1).expand(b, frames, nh, g, hd)
    qf, kf, vf = _groups(q[:, :, g:], frames), _groups(k[:, :, g:], frames), _groups(v[:, :, g:], frames)
    kf = torch.cat([kg, kf], dim=3)  # (B, T, H, G+F, hd)
    vf = torch.cat([vg, vf], dim=3)
    out_f = F.scaled_dot_product_attention(qf.flatten(0, 1), kf.flatten(0, 1), vf.flatten(0, 1))
    out_f = out_f.unflatten(0, (b, frames)).transpose(1, 2).flatten(2, 3)  # (B, H, T*F, hd)
    return _project_out(block, torch.cat([out_g, out_f], dim=2))


def dynamic_attention(
    block: nn.Module, h: torch.Tensor, key_mask: torch.Tensor, globals_: int, frames: int, frame_len: int, gap_len: int
) -> torch.Tensor:
    """Attention on the dynamic layout. h (B, S, D); key_mask (B, S) bool, True = attend."""
    q, k, v = _project_qkv(block, h)
    b, nh, _, hd = q.shape
    g, t, f, p = globals_, frames, frame_len, gap_len

    def split(x: torch.Tensor):  # (B, H, S-G, hd) -> frames (B, T, H, F, hd), gaps (B, T-1, H, P, hd)
        fr, gp = deinterleave(x.transpose(1, 2), t, f, p)  # (B, T, F, H, hd), (B, T-1, P, H, hd)
        return fr.transpose(2, 3), gp.transpose(2, 3)

    q_fr, q_gp = split(q[:, :, g:])
    k_fr, k_gp = split(k[:, :, g:])
    v_fr, v_gp = split(v[:, :, g:])
    _, m_gp = deinterleave(key_mask[:, g:].unsqueeze(-1), t, f, p)
    m_gp = m_gp.squeeze(-1)  # (B, T-1, P)
    m_glob = key_mask[:, :g]  # (B, G)

    # frame t: globals, its own group, gap t-1 and gap t (missing gaps at the ends are masked out)
    no_gap_k = k_gp.new_zeros((b, 1, nh, p, hd))
    no_gap_m = m_gp.new_zeros((b, 1, p))
    k_prev, k_next = torch.cat([no_gap_k, k_gp], 1), torch.cat([k_gp, no_gap_k], 1)  # (B, T, H, P, hd)
    v_prev, v_next = torch.cat([no_gap_k, v_gp], 1), torch.cat([v_gp, no_gap_k], 1)
    m_prev, m_next = torch.cat([no_gap_m, m_gp], 1), torch.cat([m_gp, no_gap_m], 1)
    kg = k[:, :, :g].unsqueeze(1)
    vg = v[:, :, :g].unsqueeze(1)
    keys = torch.cat([kg.expand(b, t, nh, g, hd), k_fr, k_prev, k_next], dim=3)
    vals = torch.cat([vg.expand(b, t, nh, g, hd), v_fr, v_prev, v_next], dim=3)
    mask = torch.cat([m_glob.unsqueeze(1).expand(b, t, g), _ones(m_gp, b, t, f), m_prev, m_next], dim=2)
    out_fr = F.scaled_dot_product_attention(
        q_fr.flatten(0, 1), keys.flatten(0, 1), vals.flatten(0, 1), attn_mask=mask.flatten(0, 1)[:, None, None]
    ).unflatten(0, (b, t))  # (B, T, H, F, hd)

    # gap i: globals, frames i and i+1, and itself
    keys = torch.cat([kg.expand(b, t - 1, nh, g, hd), k_fr[:, :-1], k_fr[:, 1:], k_gp], dim=3)
    vals = torch.cat([vg.expand(b, t - 1, nh, g, hd), v_fr[:, :-1], v_fr[:, 1:], v_gp], dim=3)
    mask = torch.cat([m_glob.unsqueeze(1).expand(b, t - 1, g), _ones(m_gp, b, t - 1, 2 * f), m_gp], dim=2)
    out_gp = F.scaled_dot_product_attention(
        q_gp.flatten(0, 1), keys.flatten(0, 1), vals.flatten(0, 1), attn_mask=mask.flatten(0, 1)[:, None, None]
    ).unflatten(0, (b, t - 1))  # (B, T-1, H, P, hd)

    out_glob = F.scaled_dot_product_attention(q[:, :, :g], k, v, attn_mask=key_mask[:, None, None])
    body = interleave(out_fr.transpose(2, 3), out_gp.transpose(2, 3)).transpose(1, 2)  # (B, H, S-G, hd)
    return _project_out(block, torch.cat([out_glob, body], dim=2))


def _ones(like: torch.Tensor, *shape: int) -> torch.Tensor:
    return torch.ones(shape, dtype=torch.bool, device=like.device)


def text_attention(block: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """Causal self-attention (CLIP text tower)."""
    q, k, v = _project_qkv(block, h)
    return _project_out(block, F.scaled_dot_product_attention(q, k, v, is_causal=True))


def global_attention(
    block: nn.Module, h: torch.Tensor, globals_: int, key_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Only the global prompts' outputs (B, G, D): they attend to every (active) token, in both layouts."""
    d = h.shape[-1]
    nh = _heads(block)
    w, bias = block.attn.in_proj_weight, block.attn.in_proj_bias
    q = F.linear(h[:, :globals_], w[:d], bias[:d]).unflatten(-1, (nh, -1)).transpose(1, 2)
    kv = F.linear(h, w[d:], bias[d:]).unflatten(-1, (2, nh, -1)).permute(2, 0, 3, 1, 4)
    mask = None if key_mask is None else key_mask[:, None, None]
    return _project_out(block, F.scaled_dot_product_attention(q, kv[0], kv[1], attn_mask=mask))


def run_block(
    block: nn.Module,
    x: torch.Tensor,
    attend,
    adapter: nn.Module | None,
    adapter_scale: float,
    rows: slice = slice(None),
) -> torch.Tensor:
    """x + attn(ln_1 x); then x + mlp(ln_2 x) + s * adapter(x) (the adapter reads the raw residual stream).

    With `rows`, only those tokens are updated and returned (`attend` must return their outputs only).
    """
    x = x[:, rows] + block.ls_1(attend(block, block.ln_1(x)))
    out = x + block.ls_2(block.mlp(block.ln_2(x)))
    if adapter is not None:
        out = out + adapter_scale * adapter(x)
    return out
