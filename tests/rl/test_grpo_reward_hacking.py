"""Reward hacking on a toy environment (paper §1.5, Fig. 9a/b), with the real policy and loss.

Environment: L positions, all masked, full diffusion; confidences are noise. Each step the
policy unmasks a Bernoulli subset; at step L everything left is committed. Committing m > 1
tokens in one step corrupts the answer: it is correct with probability ρ^(Σ_t max(m_t − 1, 0)),
so taking more steps makes a correct answer likelier, as with a real dLLM. Correct answers
are rare, so among wrong answers the additive reward r − NFE/L ranks "fast" above "slow" and
the policy learns to unmask everything at once; the multiplicative reward gives every wrong
answer 0 and so never pays for speed alone.
"""

from __future__ import annotations

import pytest
import torch

from dllm_viz.policy import DiTConfidencePolicy, PolicyConfig
from dllm_viz.policy.sampling import bernoulli_log_prob, sample_bernoulli, unmask_probs
from dllm_viz.rl import (
    GRPOConfig,
    PolicySteps,
    build_optimizer,
    get_reward_function,
    group_advantages,
    grpo_update,
    should_skip_update,
)
from dllm_viz.strategies.learned import LearnedPolicyConfig

L, RHO, GROUPS, UPDATES = 8, 0.5, 16, 40
SAMPLING = LearnedPolicyConfig(mode="bernoulli")  # what unmask_probs' defaults draw with
TINY = PolicyConfig(hidden_size=16, num_heads=2, ffn_size=32, time_embed_dim=8, smart_init=0.0)


def toy_rollouts(policy, n, generator):
    """n episodes; returns stacked PolicySteps, NFE, correctness and mean unmask probability."""
    masked = torch.ones(n, L, dtype=torch.bool)
    nfe, excess = torch.zeros(n, dtype=torch.long), torch.zeros(n)
    steps, prob_sum, prob_count = [], 0.0, 0
    for t in range(L):
        active = masked.any(1)
        conf = torch.rand(n, L, 1, generator=generator)
        time = nfe.float() / L
        with torch.no_grad():
            probs = unmask_probs(policy(conf, masked, time))
        eligible = masked & active.unsqueeze(1)
        action = sample_bernoulli(probs, eligible, generator)
        log_prob = bernoulli_log_prob(probs, action, eligible)
        steps.append(
            dict(
                confidence=conf,
                masked=masked.clone(),
                time=time,
                eligible=eligible,
                action=action,
                active=active,
                old_log_prob=log_prob,
            )
        )
        prob_sum += float(probs[eligible].sum())
        prob_count += int(eligible.sum())
        commit = eligible if t == L - 1 else action  # forced end, as the engine without fallback
        excess += (commit.sum(1) - 1).clamp(min=0).float()
        nfe += active.long()
        masked &= ~commit
    correct = (torch.rand(n, generator=generator) < RHO**excess).float()
    stacked = PolicySteps(SAMPLING, **{k: torch.stack([s[k] for s in steps], 1) for k in steps[0]})
    return stacked, nfe, correct, prob_sum / prob_count


def train(reward_name, seed=0):
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    policy = DiTConfidencePolicy(TINY)
    torch.nn.init.zeros_(policy.head.weight)  # every seed starts at exactly σ(0) = 0.5
    cfg = GRPOConfig(
        reward=reward_name, alpha=1.0, learning_rate=1e-2, warmup_steps=0, total_steps=2 * UPDATES, max_grad_norm=1.0
    )
    opt, sched = build_optimizer(policy, cfg)
    reward_fn = get_reward_function(cfg.reward)
    history = []
    for _ in range(UPDATES):
        steps, nfe, correct, mean_prob = toy_rollouts(policy, GROUPS * cfg.num_generations, generator)
        history.append((mean_prob, nfe.float().mean().item()))
        rewards = torch.tensor(reward_fn(correct.tolist(), nfe.tolist(), gen_length=L, alpha=cfg.alpha))
        adv = group_advantages(rewards, cfg.group_size)
        if should_skip_update(adv, cfg.skip_advantage_tol):
            continue
        grpo_update(policy, steps, adv, cfg, opt, sched)
    return history


@pytest.fixture
def one_thread():
    """Tiny tensors: one intra-op thread avoids OpenMP stalls on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_additive_reward_hacks_towards_unmasking_everything_multiplicative_does_not(one_thread):
    additive, multiplicative = train("additive"), train("multiplicative")
    assert additive[0] == multiplicative[0] and additive[0][0] == pytest.approx(0.5)  # same start
    start_prob, start_nfe = additive[0]
    add_prob = sum(p for p, _ in additive[-3:]) / 3
    mult_prob = sum(p for p, _ in multiplicative[-3:]) / 3
    assert add_prob > 0.95, additive  # collapses to unmasking everything at once ...
    assert additive[-1][1] < 1.5 < start_nfe - 2, additive  # ... in about one NFE
    assert mult_prob < start_prob, multiplicative  # speed alone is never paid for
    assert multiplicative[-1][1] > 3, multiplicative
