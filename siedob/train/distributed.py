"""torchrun data parallelism: process-group setup, a resumable distributed sampler, rank-0 helpers.

Launch with ``torchrun --nproc_per_node N <stage>/train.py ...``: NCCL on CUDA, gloo on CPU; the
config's batch size is per process. Only rank 0 logs and writes checkpoints.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Iterator, Optional, Sized

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler

from siedob.device import resolve_device


@dataclass
class DistContext:
    """Where this process sits: rank, world size, and the device it trains on."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        """True when running under a process group of more than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0, the only process that logs and writes files."""
        return self.rank == 0


def init_distributed(device_choice: str = "auto") -> DistContext:
    """Join the torchrun process group when ``WORLD_SIZE`` > 1; otherwise a single-process context."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_choice, local_rank)
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world)
    return DistContext(rank, world, local_rank, device)


def shutdown_distributed() -> None:
    """Leave the process group if one was joined."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (no-op in a single process)."""
    if ctx.enabled:
        dist.barrier()


def broadcast_flag(ctx: DistContext, value: bool) -> bool:
    """Rank 0's boolean, on every rank."""
    if not ctx.enabled:
        return value
    t = torch.tensor([1 if value else 0], device=ctx.device if ctx.device.type == "cuda" else "cpu")
    dist.broadcast(t, 0)
    return bool(t.item())


class ResumableSampler(DistributedSampler):
    """DistributedSampler whose epoch order depends on (seed, epoch) only and that can start mid-epoch."""

    def __init__(self, dataset: Sized, ctx: DistContext, seed: int = 0, shuffle: bool = True) -> None:
        super().__init__(dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=shuffle, seed=seed)
        self.start = 0

    def set_start(self, start: int) -> None:
        """Skip the first ``start`` indices of this rank's share of the current epoch (once)."""
        self.start = int(start)

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        start, self.start = self.start, 0
        return iter(indices[start:])

    def __len__(self) -> int:
        return self.num_samples - self.start


def batches_per_epoch(num_samples: int, batch_size: int, world_size: int = 1) -> int:
    """Batches one process sees per epoch (DistributedSampler pads to a multiple of the world size)."""
    per_rank = math.ceil(num_samples / world_size)
    return math.ceil(per_rank / batch_size)


def all_equal(ctx: DistContext, value: torch.Tensor) -> Optional[bool]:
    """Whether a tensor is identical on every rank (None in a single process)."""
    if not ctx.enabled:
        return None
    gathered = [torch.empty_like(value) for _ in range(ctx.world_size)]
    dist.all_gather(gathered, value)
    return all(torch.equal(gathered[0], g) for g in gathered[1:])
