"""The shared training helpers: the schedule reproduces both trainers' former curves float for float,
AdamW groups parameters once each, and checkpoints are replaced atomically."""

from __future__ import annotations

import doctest
import math

import pytest
import torch

import dllm_viz.training
from dllm_viz.training import adamw, atomic_dir, load_optimizer, read_state, save_checkpoint, warmup_cosine


def test_docstring_examples():
    result = doctest.testmod(dllm_viz.training)
    assert result.attempted > 0 and result.failed == 0


def _former_rl(step, warmup, total):  # dllm_viz/rl/optim.py before the move
    if step < warmup:
        return step / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0))))


def _former_tiny(lr, step, warmup, total, min_ratio):  # dllm_viz/tiny/train.py learning_rate before the move
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(total - warmup, 1)
    cosine = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return lr * (min_ratio + (1 - min_ratio) * cosine)


@pytest.mark.parametrize("warmup,total", [(0, 10), (1, 6), (5, 100), (100, 300), (7, 7)])
def test_schedule_is_exactly_both_former_formulas(warmup, total):
    for step in [*range(0, total + 3), 2 * total]:
        assert warmup_cosine(step, warmup, total) == _former_rl(step, warmup, total)
        for lr, min_ratio in ((1e-3, 0.1), (3e-4, 0.0), (7e-5, 0.37)):
            new = warmup_cosine(step, warmup, total, min_ratio, peak=lr, warm_first_step=True)
            assert new == _former_tiny(lr, step, warmup, total, min_ratio)


class _Tied(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(5, 4)
        self.norm = torch.nn.LayerNorm(4)
        self.out = torch.nn.Linear(4, 5)
        self.out.weight = self.embed.weight


def test_adamw_skips_decay_on_biases_and_norms_and_lists_tied_weights_once():
    model = _Tied()
    opt = adamw(model, 1e-3, (0.9, 0.98), 0.01)
    decay, no_decay = opt.param_groups
    assert [id(p) for p in decay["params"]] == [id(model.embed.weight)]
    assert {id(p) for p in no_decay["params"]} == {id(model.norm.weight), id(model.norm.bias), id(model.out.bias)}
    assert [id(p) for g in opt.param_groups for p in g["params"]] == [id(p) for p in model.parameters()]
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0 and opt.defaults["betas"] == (0.9, 0.98)


class _Saveable(torch.nn.Linear):
    def save_pretrained(self, path):
        torch.save(self.state_dict(), path / "weights.pt")  # a test stand-in for safetensors weights


def test_checkpoint_round_trip_and_a_failed_save_keeps_the_previous_one(tmp_path):
    model = _Saveable(3, 2)
    opt = adamw(model, 1e-2, (0.9, 0.99), 0.1)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    save_checkpoint(tmp_path / "ckpt", model, opt, {"step": 1})
    fresh = adamw(model, 1e-2, (0.9, 0.99), 0.1)
    load_optimizer(tmp_path / "ckpt", fresh)
    assert read_state(tmp_path / "ckpt") == {"step": 1}
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "ckpt") as tmp:
        (tmp / "half.json").write_text("{")
        raise RuntimeError("crash mid-save")
    assert read_state(tmp_path / "ckpt") == {"step": 1} and not (tmp_path / "ckpt" / "half.json").exists()
    save_checkpoint(tmp_path / "ckpt", model, opt, {"step": 2})
    assert read_state(tmp_path / "ckpt") == {"step": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
