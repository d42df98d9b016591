"""AdamW with linear warmup and cosine decay, as the released configs train the policy."""

from __future__ import annotations

import math

import torch

from .config import GRPOConfig


def warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    """Learning-rate factor: linear 0 → 1 over warmup, then cosine 1 → 0 at ``total_steps``
    (the curve of HF's ``get_cosine_schedule_with_warmup``).

    >>> [round(warmup_cosine(s, 2, 6), 3) for s in range(7)]
    [0.0, 0.5, 1.0, 0.854, 0.5, 0.146, 0.0]
    """
    if step < warmup_steps:
        return step / max(1, warmup_steps)
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0))))


def build_optimizer(
    policy: torch.nn.Module, config: GRPOConfig, total_steps: int | None = None
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW(lr, betas, weight decay) + warmup/cosine, grouped as HF's Trainer does.

    Like the HF Trainer behind the released code, biases and LayerNorm parameters are not
    decayed (decaying the output bias would drag the smart-init −2 towards 0).
    ``total_steps`` overrides ``config.total_steps``; one of them must be set.
    """
    total = total_steps if total_steps is not None else config.total_steps
    if total is None or total <= config.warmup_steps:
        raise ValueError(f"total_steps ({total}) must be set and exceed warmup_steps ({config.warmup_steps})")
    decay, no_decay = [], []
    for module in policy.modules():
        for name, param in module.named_parameters(recurse=False):
            exempt = isinstance(module, torch.nn.LayerNorm) or name.endswith("bias")
            (no_decay if exempt else decay).append(param)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.learning_rate,
        betas=config.adam_betas,
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine(step, config.warmup_steps, total)
    )
    return optimizer, schedule
