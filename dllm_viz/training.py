"""What every trainer here shares: the warmup-cosine schedule, AdamW's no-decay grouping and
atomic, pickle-free checkpoints (weights and optimiser moments as safetensors, the rest JSON).

Both the tiny dLLM pre-trainer (:mod:`dllm_viz.tiny.train`) and the GRPO policy trainer
(:mod:`dllm_viz.rl.trainer`) use these, so a fix to one (say, a crash mid-save) fixes both.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

OPTIMIZER_TENSORS, OPTIMIZER_GROUPS, TRAINER_STATE = "optimizer.safetensors", "optimizer.json", "trainer_state.json"


def warmup_cosine(
    step: int, warmup: int, total: int, min_ratio: float = 0.0, *, peak: float = 1.0, warm_first_step: bool = False
) -> float:
    """Learning rate (``peak`` = 1: the factor) at ``step``: linear warmup, then cosine from ``peak``
    down to ``peak * min_ratio`` at ``total`` (the curve of HF's ``get_cosine_schedule_with_warmup``).

    Warmup is ``step / warmup`` (HF: the first step has lr 0) or, with ``warm_first_step``,
    ``(step + 1) / warmup`` (the first step already learns). ``peak`` is multiplied in before the
    division, so a caller that wants the rate itself gets the same float as ``lr * (step + 1) / warmup``.

    >>> [round(warmup_cosine(s, 2, 6), 3) for s in range(7)]
    [0.0, 0.5, 1.0, 0.854, 0.5, 0.146, 0.0]
    >>> [round(warmup_cosine(s, 2, 6, 0.1, warm_first_step=True), 3) for s in range(7)]
    [0.5, 1.0, 1.0, 0.868, 0.55, 0.232, 0.1]
    """
    if step < warmup:
        return peak * (step + int(warm_first_step)) / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    cosine = max(0.0, 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0))))
    return peak * (min_ratio + (1 - min_ratio) * cosine)


def adamw(model: torch.nn.Module, lr: float, betas: tuple[float, float], weight_decay: float) -> torch.optim.AdamW:
    """AdamW with two groups, as HF's Trainer: biases and LayerNorm parameters are not decayed
    (decaying a bias such as the policy's smart-init −2 would drag it towards 0).

    A parameter shared by two modules (tied embeddings) is listed once, in ``model.parameters()``
    order, so the optimiser state indices match a plain ``AdamW(model.parameters())``.
    """
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    seen: set[int] = set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if id(param) in seen:
                continue
            seen.add(id(param))
            exempt = isinstance(module, torch.nn.LayerNorm) or name.endswith("bias")
            (no_decay if exempt else decay).append(param)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr,
        betas=betas,
    )


@contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield an empty ``<path>.tmp`` to fill; on success it replaces ``path``, so a crash
    mid-write leaves the previous folder intact."""
    tmp, old = path.with_name(path.name + ".tmp"), path.with_name(path.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    yield tmp
    if path.exists():
        path.rename(old)
    tmp.rename(path)
    shutil.rmtree(old, ignore_errors=True)


def save_checkpoint(path: Path, model: Any, optimizer: torch.optim.Optimizer, state: dict, *also: Any) -> None:
    """Atomically write a resumable checkpoint folder: ``model`` (and each of ``also``, e.g. a
    tokenizer) via ``save_pretrained``, the optimiser moments, and ``state`` as JSON."""
    with atomic_dir(path) as tmp:
        for obj in (model, *also):
            obj.save_pretrained(tmp)
        opt = optimizer.state_dict()
        tensors = {
            f"{i}.{k}": v.detach().cpu().contiguous()
            for i, s in opt["state"].items()
            for k, v in s.items()
            if torch.is_tensor(v)
        }
        save_file(tensors, str(tmp / OPTIMIZER_TENSORS))
        (tmp / OPTIMIZER_GROUPS).write_text(json.dumps({"param_groups": opt["param_groups"]}, indent=1))
        (tmp / TRAINER_STATE).write_text(json.dumps(state, indent=1))


def read_state(path: Path) -> dict:
    """The JSON state saved with a checkpoint (what the trainer needs to continue)."""
    return json.loads((path / TRAINER_STATE).read_text())


def load_optimizer(path: Path, optimizer: torch.optim.Optimizer, device: str = "cpu") -> None:
    """Restore the moments and param groups written by :func:`save_checkpoint`."""
    state: dict[int, dict] = {}
    for key, value in load_file(str(path / OPTIMIZER_TENSORS), device=device).items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    groups = json.loads((path / OPTIMIZER_GROUPS).read_text())["param_groups"]
    optimizer.load_state_dict({"state": state, "param_groups": groups})
