"""torchrun/DDP helpers: the same code runs on one process or under ``torchrun --nproc-per-node N``."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

__all__ = ["init_distributed", "shutdown", "is_main", "rank", "world_size", "barrier", "all_reduce_sum",
           "broadcast_buffers", "ShardSampler"]


def init_distributed(device: torch.device) -> bool:
    """Join the process group torchrun describes (``WORLD_SIZE > 1``); True when distributed."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return dist.is_initialized()
    if device.type == "cuda":  # this rank's GPU before NCCL starts, which otherwise guesses it
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return True


def shutdown() -> None:
    """Leave the process group, all ranks together (a no-op on one process). A gloo group left to
    the interpreter's exit can abort a rank ("terminate called without an active exception") while
    another still finishes; PyTorch asks for ``destroy_process_group`` before exit."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    """Only rank 0 writes files and prints."""
    return rank() == 0


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def broadcast_buffers(module: torch.nn.Module) -> None:
    """Rank 0's buffers (BatchNorm's running statistics) on every rank, as ``last.pt`` and ``best.pt``
    hold them: what DDP's first forward after training does, but called by every rank. Evaluating
    through the DDP wrapper left that broadcast to the first validation batch, which a rank with no
    validation image never ran: the ranks' collectives no longer matched and training hung."""
    if dist.is_initialized():
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)


class ShardSampler(Sampler[int]):
    """Rank ``r`` of ``w`` gets indices ``r, r+w, ...`` -- no padding, so evaluation never
    counts a sample twice (``DistributedSampler`` pads to equal shard sizes)."""

    def __init__(self, n: int):
        self.indices = list(range(rank(), n, world_size()))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
