"""Rewards, GRPOConfig validation/round trip and the optimiser schedule."""

from __future__ import annotations

import doctest
import json

import pytest

import dllm_viz.rl.rewards
from dllm_viz.policy import DiTConfidencePolicy, PolicyConfig
from dllm_viz.rl import GRPOConfig, additive_reward, build_optimizer, get_reward_function, multiplicative_reward


@pytest.mark.parametrize("module", [dllm_viz.rl.rewards])
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_multiplicative_reward_values():
    out = multiplicative_reward([1, 1, 1, 0, 0.5], [1, 128, 400, 10, 64], gen_length=256, alpha=3.0)
    expected = [1.0, (129 / 256) ** 3, (1 / 256) ** 3, 0.0, 0.5 * (193 / 256) ** 3]
    assert out == pytest.approx(expected)
    # Faster is better only for correct answers; any wrong answer is worth 0.
    assert multiplicative_reward([0, 0], [1, 256], gen_length=256, alpha=1.0) == [0.0, 0.0]


def test_additive_reward_prefers_fast_wrong_over_slow_wrong():
    fast, slow = additive_reward([0, 0], [8, 200], gen_length=256, alpha=1.0)
    assert fast > slow and fast == pytest.approx(-8 / 256)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(correct=[1], nfe=[1, 2]), r"`correct` \(1 items\) and `nfe` \(2 items\)"),
        (dict(correct=[2], nfe=[1]), r"`correct\[0\]` \(2\) must be in \[0, 1\]"),
        (dict(correct=[1], nfe=[-1]), r"`nfe\[0\]` \(-1\)"),
        (dict(correct=[1], nfe=[1], alpha=-1.0), r"`alpha` \(-1.0\)"),
        (dict(correct=[1], nfe=[1], gen_length=0), r"`gen_length` \(0\)"),
    ],
)
def test_reward_errors(kwargs, message):
    args = dict(gen_length=256, alpha=1.0) | kwargs
    with pytest.raises(ValueError, match=message):
        multiplicative_reward(**args)


def test_reward_registry():
    assert get_reward_function("additive") is additive_reward
    with pytest.raises(ValueError, match="unknown reward 'speed'; known: multiplicative, additive"):
        get_reward_function("speed")


def test_defaults_follow_the_released_configs():
    cfg = GRPOConfig()
    assert (cfg.num_generations, cfg.learning_rate, cfg.adam_betas, cfg.weight_decay) == (8, 3e-5, (0.9, 0.99), 0.1)
    assert (cfg.max_grad_norm, cfg.warmup_steps, cfg.epsilon, cfg.num_iterations) == (0.2, 100, 0.5, 2)
    assert (cfg.reward, cfg.alpha, cfg.skip_advantage_tol, cfg.num_experts, cfg.group_size) == (
        "multiplicative",
        0.0,
        1e-6,
        0,
        8,
    )


def test_round_trip_through_json():
    cfg = GRPOConfig(alpha=3.0, reward="additive", es_thresholds=(0.9,), total_steps=500, epsilon=0.2)
    again = GRPOConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and again.es_thresholds == (0.9,) and again.group_size == 9
    with pytest.raises(ValueError, match=r"unknown GRPO config keys \['beta'\]"):
        GRPOConfig.from_dict({"beta": 0.04})


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_generations=1), r"`num_generations` \(1\) must be an integer ≥ 2"),
        (dict(reward="speed"), r"unknown reward 'speed'"),
        (dict(alpha=-0.5), r"`alpha` \(-0.5\) must be in \[0.0, inf\]"),
        (dict(epsilon=1.0), r"`epsilon` \(1.0\) must be in \(0.0, 1.0\)"),
        (dict(learning_rate=0.0), r"`learning_rate` \(0.0\)"),
        (dict(adam_betas=(0.9, 1.0)), r"`adam_betas` \(1.0\)"),
        (dict(adam_betas=(0.9,)), r"must be two numbers"),
        (dict(es_thresholds=(0.9, 0.0)), r"`es_thresholds` \(0.0\)"),
        (dict(total_steps=50), r"`total_steps` \(50\) must exceed `warmup_steps` \(100\)"),
        (dict(num_iterations=0), r"`num_iterations` \(0\)"),
    ],
)
def test_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GRPOConfig(**kwargs)


def test_expert_steering_needs_full_diffusion():
    cfg = GRPOConfig(es_thresholds=(0.9,), es_block_length=32)
    cfg.check_engine(256, 256)
    GRPOConfig().check_engine(256, 32)  # no ES: anything goes
    with pytest.raises(ValueError, match=r"`block_length` \(32\) must equal `gen_length` \(256\)"):
        cfg.check_engine(256, 32)
    with pytest.raises(ValueError, match=r"`es_block_length` \(32\) must divide `gen_length` \(80\)"):
        cfg.check_engine(80, 80)


def test_optimizer_groups_and_schedule():
    policy = DiTConfidencePolicy(PolicyConfig(hidden_size=16, num_heads=2, ffn_size=32, time_embed_dim=8))
    opt, sched = build_optimizer(policy, GRPOConfig(warmup_steps=2), total_steps=6)
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert any(p is policy.head.bias for p in no_decay["params"])
    assert any(p is policy.final_norm.weight for p in no_decay["params"])
    assert any(p is policy.head.weight for p in decay["params"])
    assert opt.defaults["betas"] == (0.9, 0.99)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.0, 1.5e-5, 3e-5, 3e-5 * 0.8536, 1.5e-5, 3e-5 * 0.1464], rel=1e-3)
    with pytest.raises(ValueError, match=r"total_steps \(None\) must be set"):
        build_optimizer(policy, GRPOConfig())
