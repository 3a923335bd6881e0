"""Multi-process training with torch.distributed: `torchrun --nproc-per-node N -m digitlab train ...`.

torchrun starts N copies of the command and tells each who it is through environment
variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT), read here and nowhere else.
Each rank trains DistributedDataParallel on its shard of every epoch's permutation; the
gradients are averaged across ranks at each step, so all ranks hold the same weights.
Metrics are summed across ranks before they are recorded. Only rank 0 writes and prints.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from .callback import Callback


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> DistEnv:
        """What torchrun set; one process (rank 0 of 1) when it did not."""
        return cls(int(environ.get("RANK", 0)), int(environ.get("WORLD_SIZE", 1)), int(environ.get("LOCAL_RANK", 0)))

    def device(self, requested: str) -> str:
        """CUDA ranks each take their local GPU; CPU ranks share the CPU."""
        return f"cuda:{self.local_rank}" if requested.startswith("cuda") and self.enabled else requested


def init(env: DistEnv, device: str) -> None:
    """Join the process group once: nccl between GPUs, gloo on CPUs."""
    if env.enabled and not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(env.local_rank)
        dist.init_process_group(backend, rank=env.rank, world_size=env.world_size)


def shutdown() -> None:
    """Wait for every rank (rank 0 may still be saving), then leave the group."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def all_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The sum of `tensor` over all ranks (itself with one process)."""
    if dist.is_initialized():
        tensor = tensor.clone()
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


class DistributedCB(Callback):
    """Wrap the model in DistributedDataParallel for training; sum what is recorded across ranks.

    Validation runs on the plain module: ranks may hold different numbers of validation
    batches, and DDP's forward would wait for the others at every batch. The recorder's sums
    reach the other ranks through `all_reduce`, the Learner's reduction hook, which
    `learn.all_reduce` applies: no other callback's attributes or order are involved (the
    default order: DeviceCB, at -10 as always, has moved the model when DDP wraps it).
    """

    blocks_graphs = "several processes train together (DistributedDataParallel reduces gradients during backward)"

    def before_fit(self) -> None:
        self.module = self.learn.model
        device_ids = [self.module_device.index] if self.module_device.type == "cuda" else None
        self.ddp = DistributedDataParallel(self.module, device_ids=device_ids)

    @property
    def module_device(self) -> torch.device:
        return self.learn.device

    def before_epoch(self) -> None:
        self.learn.model = self.ddp if self.learn.training else self.module

    def all_reduce(self, tensor: torch.Tensor) -> torch.Tensor:
        return all_sum(tensor)

    def cleanup_fit(self) -> None:
        self.learn.model = self.module
