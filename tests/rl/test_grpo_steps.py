"""Engine records → PolicySteps → replayed log-probs → one GRPO update, end to end."""

from __future__ import annotations

import pytest
import torch

from dllm_viz.engine import EngineConfig, generate
from dllm_viz.policy import DiTConfidencePolicy, PolicyConfig
from dllm_viz.rl import GRPOConfig, PolicySteps, build_optimizer, group_advantages, grpo_update, replay_log_probs
from dllm_viz.strategies import build_strategy
from dllm_viz.strategies.learned import LearnedPolicy, LearnedPolicyConfig

SMALL = PolicyConfig(hidden_size=16, num_heads=2, ffn_size=32, time_embed_dim=8, smart_init=-1.0)
L = 8


def confidence_by_position(pos, canvas):
    return 2 + pos % 5, 0.3 + 0.08 * (pos % 8)


def rollout(scripted, strategy, prompts, block_length=L, seed=0):
    config = EngineConfig(gen_length=L, block_length=block_length, fallback=False, seed=seed)
    return list(generate(scripted(fn=confidence_by_position), prompts, strategy, config))


@pytest.mark.parametrize(
    "sampling",
    [
        LearnedPolicyConfig(mode="bernoulli"),
        LearnedPolicyConfig(mode="bernoulli", temperature=0.5, beta=1.5),
        LearnedPolicyConfig(mode="bernoulli-plus-one"),
        LearnedPolicyConfig(mode="bernoulli-plus-one", temperature=0.5, beta=1.5),
    ],
)
def test_replayed_log_probs_equal_those_recorded_at_rollout(scripted, sampling):
    torch.manual_seed(0)
    strategy = LearnedPolicy(DiTConfidencePolicy(SMALL), sampling)
    policy = strategy.policy
    records = rollout(scripted, strategy, [[2, 3], [4], [3, 3, 3]], block_length=4)
    steps = PolicySteps.from_records(records, L, strategy)
    assert steps.sampling == sampling  # replay reads τ_π and β from the rollout, not from a default
    n, t = len(records[0].active), len(records)
    assert steps.confidence.shape == (n, t, L, 1) and steps.action.shape == (n, t, L)
    assert (steps.time[:, 0] == 0).all()
    assert torch.equal(steps.active.sum(1), records[-1].nfe)  # one active step per NFE
    assert not (steps.action & ~steps.eligible).any()
    replayed = replay_log_probs(policy, steps, chunk_size=3)
    assert torch.allclose(replayed, steps.old_log_prob, atol=1e-5)
    assert (replayed[~steps.active] == 0).all()


def test_replay_with_the_entropy_input_equals_the_rollout(scripted):
    torch.manual_seed(0)
    config = PolicyConfig(**{**SMALL.to_dict(), "entropy_input": True, "top_p": 2})
    strategy = LearnedPolicy(DiTConfidencePolicy(config), LearnedPolicyConfig(mode="bernoulli-plus-one"))
    records = rollout(scripted, strategy, [[2, 3], [4]], block_length=4)
    steps = PolicySteps.from_records(records, L, strategy)
    assert steps.confidence.shape[-1] == 3
    assert torch.equal(steps.confidence[:, 0, :, -1], records[0].features.entropy)
    assert torch.allclose(replay_log_probs(strategy.policy, steps), steps.old_log_prob, atol=1e-5)


def test_expert_records_use_every_masked_position_and_need_replay(scripted):
    records = list(
        generate(
            scripted(fn=confidence_by_position),
            [[2, 3]],
            build_strategy("threshold", threshold=0.5),
            EngineConfig(gen_length=L, block_length=4),
        )
    )
    strategy = LearnedPolicy(DiTConfidencePolicy(SMALL), mode="bernoulli")
    steps = PolicySteps.from_records(records, L, strategy, expert=True)
    assert steps.old_log_prob is None
    assert torch.equal(steps.eligible[0, 0], torch.ones(L, dtype=torch.bool))  # not just block 0
    assert torch.equal(steps.action[0], torch.stack([r.committed[0] for r in records]))


def test_cat_pads_shorter_rollouts_with_inactive_steps(scripted):
    torch.manual_seed(0)
    policy = DiTConfidencePolicy(SMALL)
    strategy = LearnedPolicy(policy, mode="bernoulli")
    a = PolicySteps.from_records(rollout(scripted, strategy, [[2, 3]]), L, strategy)
    b = PolicySteps.from_records(rollout(scripted, strategy, [[3]], seed=1), L, strategy)
    both = PolicySteps.cat([a, b])
    horizon = max(a.active.shape[1], b.active.shape[1])
    assert both.active.shape == (2, horizon)
    assert both.active.sum() == a.active.sum() + b.active.sum()
    swapped = both.index(torch.tensor([1, 0]))
    assert torch.equal(swapped.action[0], both.action[1])


def test_one_grpo_iteration_moves_every_parameter(scripted):
    torch.manual_seed(0)
    policy = DiTConfidencePolicy(SMALL)
    cfg = GRPOConfig(num_generations=4, learning_rate=1e-2, warmup_steps=0, total_steps=10)
    strategy = LearnedPolicy(policy, mode="bernoulli")
    steps = PolicySteps.from_records(rollout(scripted, strategy, [[2, 3]] * 4), L, strategy)
    adv = group_advantages(torch.tensor([1.0, 0.0, 0.5, 0.0]), cfg.num_generations)
    opt, sched = build_optimizer(policy, cfg)
    before = {k: v.clone() for k, v in policy.state_dict().items()}
    stats = grpo_update(policy, steps, adv, cfg, opt, sched)  # 2 passes: adaLN-gated parameters move on the second
    assert set(stats) == {"loss", "clip_fraction", "grad_norm"} and sched.last_epoch == cfg.num_iterations
    unchanged = [k for k, v in policy.state_dict().items() if torch.equal(v, before[k])]
    assert unchanged == []


def test_dpls_rollouts_are_refused_by_replay(scripted):
    torch.manual_seed(0)
    strategy = LearnedPolicy(DiTConfidencePolicy(SMALL), mode="dpls")
    steps = PolicySteps.from_records(rollout(scripted, strategy, [[2, 3]]), L, strategy)
    with pytest.raises(ValueError, match="DPLS rollouts cannot be replayed"):
        replay_log_probs(strategy.policy, steps)


def test_a_group_rolls_out_the_same_alone_or_beside_other_groups(tiny_backend):
    """Training rollouts are batch-invariant: a prompt's G rollouts do not depend on which other
    prompts share the rollout batch (or the process, under torchrun)."""
    from dllm_viz.rl.rollout import collect_rollouts
    from dllm_viz.tasks import generate as problem

    policy = DiTConfidencePolicy(SMALL)
    grpo = GRPOConfig(num_generations=3, prompts_per_batch=2)
    engine = EngineConfig(gen_length=16, block_length=16)
    first, second = problem(1, 1), problem(2, 1)
    together = collect_rollouts(tiny_backend, policy, [first, second], grpo, engine, seed=5)
    alone = collect_rollouts(tiny_backend, policy, [second], grpo, engine, seed=5)
    assert together.texts[3:] == alone.texts and torch.equal(together.nfe[3:], alone.nfe)
    assert len(set(together.texts[:3])) > 1 or len(set(together.nfe[:3].tolist())) > 1  # copies differ
