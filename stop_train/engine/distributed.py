"""torchrun detection and the few collectives the loop needs (single process: all no-ops)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group when started by torchrun (RANK/WORLD_SIZE/LOCAL_RANK set)."""
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def shard(indices: list[int], info: DistInfo) -> tuple[list[int], list[bool]]:
    """Pad to a multiple of the world size by repeating from the start, then take this rank's share.

    Returns (indices, valid): padded repeats are marked invalid so metrics count each sample once.
    """
    n = len(indices)
    total = -(-n // info.world) * info.world
    padded = [indices[i % n] for i in range(total)] if n else []
    valid = [i < n for i in range(total)]
    return padded[info.rank :: info.world], valid[info.rank :: info.world]


def all_gather_arrays(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Concatenate a per-rank tensor (same shape on every rank) across ranks, rank order interleaved back."""
    if info.world == 1:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(info.world)]
    dist.all_gather(parts, tensor.contiguous())
    # shard() dealt samples round-robin: sample j of rank r is global position j * world + r
    return torch.stack(parts, dim=1).flatten(0, 1)


def all_reduce_mean(value: float, info: DistInfo, device: torch.device) -> float:
    if info.world == 1:
        return value
    t = torch.tensor([value], device=device, dtype=torch.float64)
    dist.all_reduce(t)
    return t.item() / info.world


def barrier(info: DistInfo) -> None:
    if info.world > 1:
        dist.barrier()


def finalize() -> None:
    """Leave the process group (if any) before exiting; gloo aborts the process when it is left open."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
