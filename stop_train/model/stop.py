"""STOP: spatial-temporal dynamic prompting on a frozen CLIP ViT. Composes the parts; holds no state
between calls."""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..config import ModelConfig
from .attention import dynamic_attention, global_attention, official_attention, run_block, text_attention
from .backbone import build_clip
from .insert_op import deinterleave, frame_variation, interleave, normalize_variation, temporal_prompt_insert
from .layers import Adapter
from .prompts import build_prompt_generator, prompt_init_bound
from .spatial import SpatialPrompter
from .temporal import DynamicTemporalPrompter, OfficialTemporalPrompter

DECAY_EXCLUDE = ("bias", "bias-norm-prompt")


def dead_parameters(cfg: ModelConfig) -> tuple[str, ...]:
    """Name prefixes of trainable parameters that legitimately never receive a gradient, per mode."""
    if cfg.mode == "official":
        dead = [
            "spatial.score_net.",  # behind a hard comparison in the published code (B2)
            # a uniform shift of every frame's score (each frame masks the same number of cells) vanishes
            # in the per-video min-max: the gradient is round-off only
            "temporal.score_net.bias",
        ]
        if cfg.prompt_generator == "linear" and cfg.text_postfix_prompts:
            dead.append("prompts.postfix_proj.")  # only feeds the postfix text prompts, after EOT (B6)
        return tuple(dead)
    if cfg.prompts_per_gap == 0:  # no gap slots: the temporal prompter feeds nothing
        return ("temporal.", "gap_offsets")
    return ()


def straight_through_gate(frames: torch.Tensor, cfg: ModelConfig) -> torch.Tensor:
    """(B, T-1, 1, 1) ones whose gradient is that of the normalised variation W (DECISIONS §1.1.7).

    The counts are discrete, so every gap's content is multiplied by 1 + W - stop_grad(W) (= 1 in value);
    the loss then reaches W, and through it the frame tokens. dW/dv scales with 1 / (max v - min v): large
    when a video's gaps barely differ (gradient clipping, on in the training recipe, bounds the step).
    """
    w = normalize_variation(frame_variation(frames, cfg.num_patches), cfg.variation_tol)
    return (1.0 + (w - w.detach()))[:, :, None, None].to(frames.dtype)  # exactly 1 in value


class STOP(nn.Module):
    """Video and text encoders with STOP prompts; `mode` picks the temporal prompting (DECISIONS §1)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.vision.width
        self.dynamic = cfg.mode == "dynamic"
        self.clip = build_clip(cfg)
        self.prompts = build_prompt_generator(cfg)
        bound = prompt_init_bound(cfg.vision.patch_size, d)
        self.global_prompts = nn.Parameter(torch.empty(1, cfg.global_prompts, d).uniform_(-bound, bound))
        self.spatial = SpatialPrompter(cfg, trainable_mask=self.dynamic)
        if self.dynamic:
            self.temporal = DynamicTemporalPrompter(cfg)
            # per-layer offsets make the gap prompts deep: slot contents are rewritten before every layer
            depth = min(cfg.prompt_layers, cfg.vision.layers)  # deeper rows would never be used
            self.gap_offsets = nn.Parameter(torch.empty(depth, cfg.prompts_per_gap, d).uniform_(-bound, bound))
        else:
            self.temporal = OfficialTemporalPrompter(cfg)
            self.gap_offsets = None
        r = cfg.adapter_dim
        self.visual_adapters = nn.ModuleList(Adapter(d, r) for _ in range(cfg.vision.layers)) if r else None
        self.text_adapters = nn.ModuleList(Adapter(cfg.text.width, r) for _ in range(cfg.text.layers)) if r else None
        self.grad_checkpointing = False
        for p in self.clip.parameters():
            p.requires_grad_(not cfg.freeze_backbone)
        self.clip.logit_scale.requires_grad_(False)  # published: CLIP's value, frozen

    # ----------------------------------------------------------------------------------------- video
    def embed_frames(self, video: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) -> layer-0 tokens (B, T, 1+N, D): patch embedding, CLS, positions, ln_pre."""
        visual = self.clip.visual
        b, t = video.shape[:2]
        x = visual.conv1(video.flatten(0, 1)).flatten(2).transpose(1, 2)  # (B*T, N, D)
        cls = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + visual.positional_embedding.to(x.dtype)
        return visual.ln_pre(x).unflatten(0, (b, t))

    def forward_visual(
        self, video: torch.Tensor, all_tokens: bool = True
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """video (B, T, 3, H, W), CLIP-normalised -> hidden tokens (B, S, D) before ln_post, and overlays.

        all_tokens=False lets the last block compute only what the video feature reads: for the global-prompt
        features, hidden is then (B, G, D) (the global prompts), which `video_features` accepts.
        """
        cfg = self.cfg
        b, t = video.shape[:2]
        if t != cfg.frames or video.shape[2:] != (3, cfg.vision.image_size, cfg.vision.image_size):
            size = cfg.vision.image_size
            raise ValueError(f"expected video (B, {cfg.frames}, 3, {size}, {size}), got {tuple(video.shape)}")
        prompted, cells = self.spatial(video)
        tokens = self.embed_frames(prompted)  # (B, T, 1+N, D)
        local = self.prompts.visual().unflatten(1, (t, cfg.local_prompts))  # (layers, T, L, D)
        globals_only = not all_tokens and cfg.video_feature in ("global_prompt0", "average_global_prompt")
        if self.dynamic:
            hidden, aux = self._visual_dynamic(tokens, local, globals_only)
        else:
            hidden, aux = self._visual_official(tokens, cells, local, globals_only)
        aux["spatial_mask"] = cells
        return hidden, aux

    def _blocks(self):
        blocks = self.clip.visual.transformer.resblocks
        adapters = self.visual_adapters or [None] * len(blocks)
        return enumerate(zip(blocks, adapters))

    def _run(self, block, x, attend, adapter, rows: slice = slice(None)):
        if self.grad_checkpointing and self.training:
            return checkpoint(run_block, block, x, attend, adapter, self.cfg.adapter_scale, rows, use_reentrant=False)
        return run_block(block, x, attend, adapter, self.cfg.adapter_scale, rows)

    def _last_block(self, block, x, attend, adapter, globals_only: bool, key_mask=None):
        """The last block; for a global-prompt feature only the G global prompts are computed."""
        if not globals_only:
            return self._run(block, x, attend, adapter)
        g = self.cfg.global_prompts
        return self._run(block, x, partial(global_attention, globals_=g, key_mask=key_mask), adapter, slice(0, g))

    def _visual_official(self, tokens, cells, local, globals_only):
        cfg = self.cfg
        b, t = tokens.shape[:2]
        g, n_loc = cfg.global_prompts, cfg.local_prompts
        q, weight = self.temporal(tokens, cells)  # (B, T, L, D), (B, T)
        local = local.unsqueeze(1) + q  # (layers, B, T, L, D): the same q at every layer
        frames = torch.cat([tokens[:, :, :1], local[0], tokens[:, :, 1:]], dim=2)  # (B, T, F, D)
        x = torch.cat([self.global_prompts.expand(b, -1, -1), frames.flatten(1, 2)], dim=1)
        attend = partial(official_attention, globals_=g, frames=t)
        last = cfg.vision.layers - 1
        for i, (block, adapter) in self._blocks():
            if 0 < i < cfg.prompt_layers:  # deep prompts: overwrite the local slots of every frame
                fr = x[:, g:].unflatten(1, (t, -1))
                fr = torch.cat([fr[:, :, :1], local[i], fr[:, :, 1 + n_loc :]], dim=2)
                x = torch.cat([x[:, :g], fr.flatten(1, 2)], dim=1)
            if i == last:
                x = self._last_block(block, x, attend, adapter, globals_only)
            else:
                x = self._run(block, x, attend, adapter)
        return x, {"frame_weight": weight}

    def _visual_dynamic(self, tokens, local, globals_only):
        cfg = self.cfg
        b, t = tokens.shape[:2]
        g, n_loc, p = cfg.global_prompts, cfg.local_prompts, cfg.prompts_per_gap
        frames = torch.cat([tokens[:, :, :1], local[0].expand(b, -1, -1, -1), tokens[:, :, 1:]], dim=2)
        f = frames.shape[2]
        base = self.temporal(frames)  # (B, T-1, P, D)
        gate = straight_through_gate(frames, cfg) if torch.is_grad_enabled() else 1.0
        body, key_mask, variation, counts = temporal_prompt_insert(
            frames, (base + self.gap_offsets[0]) * gate, p, cfg.num_patches, cfg.variation_tol
        )
        active = (torch.arange(p, device=counts.device) < counts.unsqueeze(-1)).unsqueeze(-1).to(base.dtype)
        x = torch.cat([self.global_prompts.expand(b, -1, -1), body], dim=1)
        key_mask = torch.cat([key_mask.new_ones(b, g), key_mask], dim=1)
        attend = partial(dynamic_attention, key_mask=key_mask, globals_=g, frames=t, frame_len=f, gap_len=p)
        last = cfg.vision.layers - 1
        for i, (block, adapter) in self._blocks():
            if 0 < i < cfg.prompt_layers:  # deep prompts: rewrite local slots and active gap slots
                fr, _ = deinterleave(x[:, g:], t, f, p)
                fr = torch.cat([fr[:, :, :1], local[i].expand(b, -1, -1, -1), fr[:, :, 1 + n_loc :]], dim=2)
                gaps = (base + self.gap_offsets[i]) * gate * active
                x = torch.cat([x[:, :g], interleave(fr, gaps)], dim=1)
            if i == last:
                x = self._last_block(block, x, attend, adapter, globals_only, key_mask)
            else:
                x = self._run(block, x, attend, adapter)
        return x, {"gap_variation": variation, "gap_prompt_count": counts}

    def video_features(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden (B, S, D) -> video feature (B, E) per `cfg.video_feature` (ln_post and proj per token)."""
        cfg = self.cfg
        g, stride = cfg.global_prompts, self.frame_stride
        choice = cfg.video_feature
        if choice == "global_prompt0":
            tokens = hidden[:, :1]
        elif choice == "average_global_prompt":
            tokens = hidden[:, :g]
        elif choice == "average_frame_cls_token":
            tokens = hidden[:, g::stride]
        else:
            tokens = torch.cat([hidden[:, :g], hidden[:, g::stride]], dim=1)
        visual = self.clip.visual
        return (visual.ln_post(tokens) @ visual.proj).mean(dim=1)

    def frame_embeddings(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden (B, S, D) from `forward_visual` with all tokens -> (B, T, E): each frame's class token after the
        last block, through ln_post and proj, not normalised, in frame order (a clip and its time reversal give
        reversed rows, where every pooled video feature is nearly the same). What a label bank's examples are
        compared by (`stop_train.statistics`)."""
        visual = self.clip.visual
        return visual.ln_post(hidden[:, self.cfg.global_prompts :: self.frame_stride]) @ visual.proj

    @property
    def frame_stride(self) -> int:
        """Positions from one frame's class token to the next in `forward_visual`'s hidden tokens."""
        return self.cfg.frame_tokens + (self.cfg.prompts_per_gap if self.dynamic else 0)

    def encode_video(self, video: torch.Tensor, normalize: bool = True, return_aux: bool = False):
        """video (B, T, 3, H, W), CLIP-normalised -> embedding (B, E) [, overlays dict]."""
        hidden, aux = self.forward_visual(video, all_tokens=False)
        emb = self.video_features(hidden)
        emb = F.normalize(emb, dim=-1) if normalize else emb
        return (emb, aux) if return_aux else emb

    # ------------------------------------------------------------------------------------------ text
    def encode_text(self, ids: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """Token ids (K, n) from `tokenize` (start, tokens, end = largest id, zero padding) -> (K, E)."""
        cfg, clip = self.cfg, self.clip
        k, n = ids.shape
        pre = cfg.text_prefix_prompts
        text_prompts = self.prompts.text()  # (layers, pre+post, Wt)
        x = clip.token_embedding(ids) + clip.positional_embedding[:n].to(clip.token_embedding.weight.dtype)

        def with_prompts(x, i, keep):  # [start, prefix, tokens, postfix]; prompts get no position
            p = text_prompts[i].unsqueeze(0).expand(k, -1, -1)
            return torch.cat([x[:, :1], p[:, :pre], keep, p[:, pre:]], dim=1)

        x = with_prompts(x, 0, x[:, 1:])
        adapters = self.text_adapters or [None] * len(clip.transformer.resblocks)
        for i, (block, adapter) in enumerate(zip(clip.transformer.resblocks, adapters)):
            if 0 < i < cfg.prompt_layers:
                x = with_prompts(x, i, x[:, 1 + pre : pre + n])
            x = self._run(block, x, text_attention, adapter)
        x = clip.ln_final(x)
        pooled = x[torch.arange(k, device=x.device), ids.argmax(dim=-1) + pre]  # end token, shifted by the prefix
        proj = clip.text_projection
        emb = proj(pooled) if isinstance(proj, nn.Module) else pooled @ proj
        return F.normalize(emb, dim=-1) if normalize else emb

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        """CLIP BPE tokens, `cfg.text.max_tokens` long (truncated texts keep their end token)."""
        from open_clip.tokenizer import tokenize

        ids = tokenize(texts, context_length=self.cfg.text.max_tokens)
        if ids.numel() and int(ids.max()) >= self.cfg.text.vocab_size:
            raise ValueError(
                f"the text tower has a {self.cfg.text.vocab_size}-token vocabulary; CLIP's BPE tokenizer "
                f"gives ids up to {int(ids.max())}"
            )
        return ids

    def encode_labels(self, labels: list[str], template: str | None = None, normalize: bool = True) -> torch.Tensor:
        """Class keys -> prompt text (`stop_train.labels.label_to_text`) -> text embeddings (K, E)."""
        from ..labels import DEFAULT_TEMPLATE, label_texts

        ids = self.tokenize(label_texts(labels, template or DEFAULT_TEMPLATE)).to(self.global_prompts.device)
        return self.encode_text(ids, normalize=normalize)

    # --------------------------------------------------------------------------------------- scoring
    @property
    def logit_scale(self) -> torch.Tensor:
        return self.clip.logit_scale.exp()

    def get_logits(self, video_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
        """logit_scale * cos(video, text): (B, E), (K, E) -> (B, K)."""
        return self.logit_scale * F.normalize(video_emb, dim=-1) @ F.normalize(text_emb, dim=-1).t()

    def forward(self, video: torch.Tensor, text_ids: torch.Tensor, embeddings: bool = False):
        """Classify `video` (B, T, 3, H, W) against the texts `text_ids` (K, n), one per class: logits (B, K).
        `embeddings=True` returns the L2-normalised (video (B, E), text (K, E)) instead (retrieval training)."""
        video_emb, text_emb = self.encode_video(video), self.encode_text(text_ids)
        return (video_emb, text_emb) if embeddings else self.get_logits(video_emb, text_emb)

    # ----------------------------------------------------------------------------------- training aids
    def no_weight_decay(self, exclude: str = "bias") -> set[str]:
        """Names of the parameters trained without weight decay.

        'bias': names containing 'bias' (the published recipe); 'bias-norm-prompt' (a deviation): also every
        parameter of fewer than 2 dimensions (norms, scales), the prompts and the gap offsets.
        """
        if exclude not in DECAY_EXCLUDE:
            raise ValueError(f"decay_exclude {exclude!r} is not one of {', '.join(DECAY_EXCLUDE)}")
        names = set()
        for name, p in self.named_parameters():
            skip = "bias" in name
            if exclude == "bias-norm-prompt":
                skip = skip or p.ndim < 2 or "prompt" in name or "gap_offsets" in name or ".ln_" in name
            if skip:
                names.add(name)
        return names

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable
