"""GRPO math by hand: advantages, the clipped step-level loss, expert steering, skipping."""

from __future__ import annotations

import math

import pytest
import torch

from dllm_viz.rl import expert_mixture_log_prob, group_advantages, grpo_loss, should_skip_update


def test_group_advantages_subtract_the_group_mean_without_std():
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.2, 0.4, 0.6, 0.8])
    adv = group_advantages(rewards, group_size=4)
    assert torch.allclose(adv, torch.tensor([0.75, -0.25, -0.25, -0.25, -0.3, -0.1, 0.1, 0.3]))


@pytest.mark.parametrize(
    "rewards, size, message",
    [
        (torch.zeros(6), 4, r"number of rewards \(6\) must be a multiple of `group_size` \(4\)"),
        (torch.zeros(4), 1, r"`group_size` \(1\) must be an integer ≥ 2"),
        (torch.zeros(2, 2), 2, r"must be 1-D"),
    ],
)
def test_group_advantages_errors(rewards, size, message):
    with pytest.raises(ValueError, match=message):
        group_advantages(rewards, size)


def test_skip_update_only_when_every_advantage_vanishes():
    assert should_skip_update(group_advantages(torch.tensor([0.5, 0.5, 0.0, 0.0]), 2))
    assert not should_skip_update(torch.tensor([0.0, 1e-5]))
    assert should_skip_update(torch.tensor([0.0, 1e-5]), tol=1e-4)


def test_grpo_loss_matches_hand_computation_with_clipping():
    eps = 0.2
    # Rollout 0 (A = +1): steps with ratios 1.5 (clipped to 1.2) and 0.5, then padding.
    # Rollout 1 (A = −2): one step, ratio 0.5: min(0.5·−2, 0.8·−2) = −1.6 (clipped side).
    # Rollout 2 (A = −2): ratio 1.5: min(−3, −2.4) = −3 (unclipped: pessimism keeps it).
    old = torch.tensor([[-1.0, -2.0, 0.0], [-0.5, 0.0, 0.0], [-3.0, 0.0, 0.0]])
    ratios = torch.tensor([[1.5, 0.5, 1.0], [0.5, 1.0, 1.0], [1.5, 1.0, 1.0]])
    new = (old + ratios.log()).requires_grad_(True)
    new_with_junk = torch.where(
        torch.tensor([[True, True, False], [True, False, False], [True, False, False]]),
        new,
        torch.full_like(new, float("-inf")),
    )  # padding may hold anything
    active = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 0, 0]], dtype=torch.bool)
    adv = torch.tensor([1.0, -2.0, -2.0])
    out = grpo_loss(new_with_junk, old, adv, active, epsilon=eps)
    per_rollout = [(1.2 * 1 + 0.5 * 1) / 2, -1.6, -3.0]
    assert out.loss.item() == pytest.approx(-sum(per_rollout) / 3, rel=1e-6)
    assert out.clip_fraction == pytest.approx(2 / 4)  # rollout 0 step 0 and rollout 1
    assert out.mean_ratio == pytest.approx((1.5 + 0.5 + 0.5 + 1.5) / 4)
    out.loss.backward()
    # d/dlogπ of −(1/N)(1/|T|)ρA: zero where the clipped branch is active.
    expected = torch.tensor([[0.0, -0.5 * 1 / 2 / 3, 0.0], [0.0, 0.0, 0.0], [-1.5 * -2 / 3, 0.0, 0.0]])
    assert torch.allclose(new.grad, expected, atol=1e-7)


def test_grpo_loss_at_ratio_one_is_minus_mean_advantage():
    old = torch.randn(4, 5)
    active = torch.ones(4, 5, dtype=torch.bool)
    adv = torch.tensor([0.3, -0.1, 0.5, -0.7])
    assert grpo_loss(old.clone(), old, adv, active).loss.item() == pytest.approx(-adv.mean().item(), abs=1e-7)


def test_grpo_loss_errors():
    x = torch.zeros(2, 3)
    active = torch.ones(2, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"`epsilon` \(1.5\) must be in \(0, 1\)"):
        grpo_loss(x, x, torch.zeros(2), active, epsilon=1.5)
    with pytest.raises(ValueError, match=r"`advantages` \(3,\) must be \(N,\) = \(2,\)"):
        grpo_loss(x, x, torch.zeros(3), active)
    with pytest.raises(ValueError, match="must all be"):
        grpo_loss(x, x[:, :2], torch.zeros(2), active)


def test_expert_mixture_log_prob_is_stable_and_exact():
    g, e = 8, 1
    log_p = torch.tensor([math.log(0.3), -1e4, 0.0])
    out = expert_mixture_log_prob(log_p, g, e)
    expected = [math.log(8 / 9 * 0.3 + 1 / 9), math.log(1 / 9), 0.0]
    assert torch.allclose(out, torch.tensor(expected), atol=1e-6)
    assert torch.isfinite(expert_mixture_log_prob(torch.tensor([float("-inf")]), g, e)).all()
    with pytest.raises(ValueError, match=r"`num_experts` \(0\) must be ≥ 1"):
        expert_mixture_log_prob(log_p, g, 0)
