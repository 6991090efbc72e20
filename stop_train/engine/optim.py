"""How training steps: the device, the precision, the optimizer and its parameter groups, the learning-rate
schedule, and each rank's batches."""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch

from ..cpu import cpu_precision
from ..model import STOP
from .config import TrainConfig
from .distributed import DistInfo, shard


def resolve_device(name: str, info: DistInfo) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        return torch.device("cuda", info.local_rank)
    return torch.device(name)


def precision_context(precision: str, device: torch.device):
    """-> (autocast context factory, GradScaler): fp32 on CPU; bf16 by default on GPU; bf16 asked for on a CPU
    without native bf16 is fp32, with a warning (`stop_train.cpu.cpu_precision`)."""
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    if device.type == "cpu":
        precision = cpu_precision(precision, "--precision bf16")
    if precision == "fp32":
        return contextlib.nullcontext, torch.amp.GradScaler(device.type, enabled=False)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    return (lambda: torch.autocast(device.type, dtype=dtype)), scaler


def build_optimizer(model: STOP, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW; no weight decay on `model.no_weight_decay(cfg.decay_exclude)` (biases, published; or also
    norms and prompts, a deviation); the CLIP weights at `backbone_lr_scale` times the learning rate
    (published coef_lr)."""
    no_decay = model.no_weight_decay(cfg.decay_exclude)
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            groups.setdefault((name.startswith("clip."), name in no_decay), []).append(p)
    return torch.optim.AdamW(
        [
            {
                "params": params,
                "weight_decay": 0.0 if skip else cfg.weight_decay,
                "lr": cfg.lr * (cfg.backbone_lr_scale if backbone else 1.0),
            }
            for (backbone, skip), params in sorted(groups.items())
        ],
        lr=cfg.lr,
        betas=cfg.betas,
        eps=cfg.eps,
    )


def lr_factor(step: int, total: int, warmup: float) -> float:
    """Linear warm-up over `warmup` of the steps, then cosine to zero."""
    warm = max(1, int(total * warmup))
    if step < warm:
        return (step + 1) / warm
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))


def epoch_batches(n: int, batch: int, seed: int, epoch: int, info: DistInfo) -> list[list[int]]:
    """This rank's batches of an epoch: a seeded permutation, sharded across ranks."""
    order = np.random.default_rng([seed, epoch]).permutation(n).tolist()
    mine, _ = shard(order, info)
    return [mine[i : i + batch] for i in range(0, len(mine), batch)]
