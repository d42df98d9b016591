"""Multi-process GRPO with torch.distributed: launch the trainer under ``torchrun``.

    torchrun --standalone --nproc_per_node 2 -m dllm_viz.rl.train --out-dir outputs/p --prompts 16

Each process decodes its share of the iteration's prompt groups (``prompts[rank::world]``,
whole groups, so group advantages stay exact), the policy is wrapped in
``DistributedDataParallel`` (gloo on CPU, NCCL on GPUs), which averages the gradients. Every
rank holds the same number of rollouts, so the average of per-rank mean losses is the
single-process loss over all rollouts. Rank 0 alone writes metrics, checkpoints and runs the
held-out evaluation; logged metrics are averaged over ranks.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class Processes:
    """This process's place in the group: ``rank`` of ``world`` (0 of 1 when not distributed)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes files."""
        return self.rank == 0

    def device(self, requested: str | None) -> str | None:
        """One GPU per process under torchrun (``cuda:<local rank>``); otherwise as requested."""
        if self.world > 1 and torch.cuda.is_available() and requested in (None, "cuda"):
            return f"cuda:{self.local_rank}"
        return requested

    def check_prompts(self, prompts: int) -> None:
        if prompts % self.world:
            raise ValueError(
                f"--prompts ({prompts}) must be a multiple of the number of processes ({self.world}), "
                "so every process decodes whole groups"
            )

    def shard(self, items: Sequence) -> list:
        """This rank's share of ``items``."""
        return list(items[self.rank :: self.world])

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """Each value averaged over ranks (identity for one process)."""
        if self.world == 1:
            return dict(values)
        keys = sorted(values)
        t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
        dist.all_reduce(t)
        return {k: float(v) / self.world for k, v in zip(keys, t.tolist(), strict=True)}

    def all(self, flag: bool) -> bool:
        """Whether ``flag`` holds on every rank (so all ranks skip an update together, or none)."""
        if self.world == 1:
            return flag
        t = torch.tensor([1 if flag else 0])
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        return bool(t.item())

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """The module whose backward averages gradients across ranks (itself for one process)."""
        if self.world == 1:
            return module
        device = next(module.parameters()).device
        return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)

    def barrier(self) -> None:
        """Wait for every rank (no-op for one process)."""
        if self.world > 1:
            dist.barrier()

    def close(self) -> None:
        if self.world > 1 and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


def setup() -> Processes:
    """Join the process group ``torchrun`` describes in the environment (or run alone)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Processes()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return Processes(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=int(os.environ.get("LOCAL_RANK", 0)))
