"""Action distributions of the policy: Bernoulli (+ fallback, τ_π, β) and DPLS likelihoods."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dllm_viz.policy.sampling import (
    argmax_fallback,
    bernoulli_log_prob,
    dpls_log_prob,
    sample_bernoulli,
    sample_dpls,
    unmask_probs,
)


def test_bernoulli_log_prob_matches_hand_computation():
    probs = torch.tensor([[0.2, 0.7, 0.5, 0.9], [0.1, 0.3, 0.6, 0.4]])
    action = torch.tensor([[1, 0, 1, 1], [0, 0, 0, 0]], dtype=torch.bool)
    eligible = torch.tensor([[1, 1, 0, 1], [0, 1, 1, 0]], dtype=torch.bool)
    # Row 0: u=1 at 0 (log .2), u=0 at 1 (log .3), position 2 not eligible, u=1 at 3 (log .9).
    # Row 1: u=0 at 1 (log .7) and 2 (log .4).
    expected = torch.tensor([math.log(0.2) + math.log(0.3) + math.log(0.9), math.log(0.7) + math.log(0.4)])
    assert torch.allclose(bernoulli_log_prob(probs, action, eligible), expected)


def test_bernoulli_log_prob_is_finite_at_saturated_probabilities():
    probs = torch.tensor([[1.0, 0.0]])
    out = bernoulli_log_prob(probs, torch.tensor([[False, True]]), torch.tensor([[True, True]]))
    assert torch.isfinite(out).all() and out.item() == pytest.approx(
        2 * math.log(1e-6), rel=1e-2
    )  # fp32 rounding of 1 - eps


def test_unmask_probs_temperature_and_beta():
    logits = torch.tensor([[-2.0, 0.0, 3.0]])
    assert torch.allclose(unmask_probs(logits), torch.sigmoid(logits))
    assert torch.allclose(unmask_probs(logits, temperature=0.5), torch.sigmoid(2 * logits))
    scaled = unmask_probs(logits, beta=3.0)
    assert torch.allclose(scaled, torch.minimum(3 * torch.sigmoid(logits), torch.ones(1)))
    assert scaled[0, 2] == 1.0


def test_bernoulli_samples_only_eligible_with_the_right_frequency_and_replays():
    probs = torch.tensor([0.2, 0.9, 0.5, 0.7]).expand(20_000, 4)
    eligible = torch.tensor([True, True, False, True]).expand(20_000, 4)
    draw = sample_bernoulli(probs, eligible, torch.Generator().manual_seed(0))
    assert not draw[:, 2].any()
    assert torch.allclose(draw.float().mean(0)[[0, 1, 3]], torch.tensor([0.2, 0.9, 0.7]), atol=0.015)
    again = sample_bernoulli(probs, eligible, torch.Generator().manual_seed(0))
    assert torch.equal(draw, again)


def test_argmax_fallback_only_for_empty_rows_with_eligible_positions():
    probs = torch.tensor([[0.1, 0.4, 0.9, 0.4], [0.1, 0.4, 0.9, 0.3], [0.5, 0.5, 0.5, 0.5]])
    eligible = torch.tensor([[1, 1, 0, 1], [1, 1, 1, 1], [0, 0, 0, 0]], dtype=torch.bool)
    action = torch.tensor([[0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)
    out = argmax_fallback(action, probs, eligible)
    # Row 0: position 2 is not eligible; tie 1 vs 3 goes left. Row 1 already acts. Row 2 has nothing.
    assert out.tolist() == [[False, True, False, False], [True, False, False, False], [False] * 4]


def _all_dpls_orders(eligible_idx, length):
    """Every possible DPLS outcome: a first pick, then an ordered subset of the rest."""
    for first in eligible_idx:
        rest = [i for i in eligible_idx if i != first]
        for size in range(len(rest) + 1):
            for seq in itertools.permutations(rest, size):
                order = [-1] * length
                order[first] = 0
                for j, pos in enumerate(seq, start=1):
                    order[pos] = j
                yield order


def test_dpls_log_prob_matches_hand_computation():
    logits = torch.tensor([[1.0, 0.0, 2.0, -1.0]])
    eligible = torch.tensor([[True, True, True, False]])
    order = torch.tensor([[1, -1, 0, -1]])  # first pick 2, then 0, then STOP (1 never picked)
    e = math.exp
    expected = (
        math.log(e(2) / (e(1) + e(0) + e(2)))
        + math.log(e(1) / (e(1) + e(0) + e(0.5)))  # remaining {0, 1} + STOP (utility 0.5)
        + math.log(e(0.5) / (e(0) + e(0.5)))
    )
    assert dpls_log_prob(logits, order, eligible, stop_logit=0.5).item() == pytest.approx(expected, rel=1e-5)


def test_dpls_likelihood_is_a_distribution_and_matches_the_sampler():
    logits = torch.tensor([[0.5, -1.0, 1.5, 0.0, 3.0]])
    eligible = torch.tensor([[True, True, True, False, True]])
    orders = torch.tensor(list(_all_dpls_orders([0, 1, 2, 4], 5)))
    n = orders.shape[0]
    log_p = dpls_log_prob(logits.expand(n, 5), orders, eligible.expand(n, 5), stop_logit=0.3, temperature=0.7)
    assert log_p.exp().sum().item() == pytest.approx(1.0, abs=1e-5)

    draws = sample_dpls(
        logits.expand(40_000, 5), eligible.expand(40_000, 5), 0.3, 0.7, torch.Generator().manual_seed(0)
    )
    assert ((draws >= 0) <= eligible).all() and ((draws == 0).sum(1) == 1).all()
    table = {tuple(o): p for o, p in zip(orders.tolist(), log_p.exp().tolist(), strict=True)}
    counts = {}
    for row in draws.tolist():
        counts[tuple(row)] = counts.get(tuple(row), 0) + 1
    assert set(counts) <= set(table)
    for outcome, p in table.items():
        if p > 0.02:
            assert counts.get(outcome, 0) / 40_000 == pytest.approx(p, abs=0.01)


def test_dpls_rows_without_eligible_positions_and_gradients():
    logits = torch.tensor([[0.3, -0.2, 1.0], [0.0, 0.0, 0.0]], requires_grad=True)
    eligible = torch.tensor([[True, True, True], [False, False, False]])
    order = sample_dpls(logits.detach(), eligible, generator=torch.Generator().manual_seed(3))
    assert (order[1] == -1).all()
    log_p = dpls_log_prob(logits, order, eligible)
    assert log_p[1].item() == 0.0
    log_p.sum().backward()
    assert torch.isfinite(logits.grad).all() and logits.grad[0].abs().sum() > 0


def _brute_force_plus_one(s: list[float], z: list[float]) -> dict[frozenset, float]:
    """P(set) of sample_plus_one by enumerating its generative process: every Bernoulli outcome B,
    then every pick j from the positions B left out."""
    import itertools
    import math

    n, out = len(s), {}
    for bits in itertools.product([0, 1], repeat=n):
        p_b = math.prod(s[i] if b else 1 - s[i] for i, b in enumerate(bits))
        taken = frozenset(i for i, b in enumerate(bits) if b)
        rest = [i for i in range(n) if not bits[i]]
        if not rest:
            out[taken] = out.get(taken, 0.0) + p_b
            continue
        norm = sum(math.exp(z[i]) for i in rest)
        for j in rest:
            key = taken | {j}
            out[key] = out.get(key, 0.0) + p_b * math.exp(z[j]) / norm
    return out


@settings(max_examples=25, deadline=None)
@given(
    s=st.lists(st.floats(0.02, 0.98), min_size=1, max_size=5),
    z_seed=st.integers(0, 10_000),
)
def test_plus_one_log_prob_equals_enumeration_of_its_sampling_process(s, z_seed):
    """The GRPO log-probability of the plus-one action is exact: it equals the probability of the
    committed set summed over every way the sampler can produce it, and sums to 1 over sets."""
    import itertools

    from dllm_viz.policy.sampling import plus_one_log_prob

    n = len(s)
    z = (torch.randn(n, generator=torch.Generator().manual_seed(z_seed)) * 2).tolist()
    truth = _brute_force_plus_one(s, z)
    sets = [frozenset(c) for k in range(1, n + 1) for c in itertools.combinations(range(n), k)]
    action = torch.tensor([[i in S for i in range(n)] for S in sets])
    probs = torch.tensor([s] * len(sets))
    scores = torch.tensor([z] * len(sets))
    eligible = torch.ones_like(action)
    got = plus_one_log_prob(probs, scores, action, eligible).exp()
    expected = torch.tensor([truth.get(S, 0.0) for S in sets])
    assert torch.allclose(got, expected.float(), rtol=1e-4, atol=1e-7)
    assert abs(float(got.sum()) - 1.0) < 1e-4
    # an empty step is impossible; ineligible positions take no part
    assert plus_one_log_prob(probs[:1], scores[:1], torch.zeros_like(action[:1]), eligible[:1]).item() == float("-inf")


def test_plus_one_sampler_draws_sets_with_the_probabilities_it_scores():
    from dllm_viz.policy.sampling import plus_one_log_prob, sample_plus_one

    s, z = [0.9, 0.1, 0.05, 0.6], [3.0, 1.0, -1.0, 0.0]
    n_draws = 40_000
    probs = torch.tensor([s] * n_draws)
    scores = torch.tensor([z] * n_draws)
    eligible = torch.tensor([[True, True, True, False]] * n_draws)  # the last position is off-block
    action = sample_plus_one(probs, scores, eligible, torch.Generator().manual_seed(0))
    assert not action[:, 3].any() and action.any(1).all()
    counts: dict[tuple, int] = {}
    for row in action.tolist():
        counts[tuple(row)] = counts.get(tuple(row), 0) + 1
    for row, count in counts.items():
        p = plus_one_log_prob(probs[:1], scores[:1], torch.tensor([row]), eligible[:1]).exp().item()
        assert abs(count / n_draws - p) < 4 * (p * (1 - p) / n_draws) ** 0.5 + 1e-3
