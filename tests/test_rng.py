"""Rows that reproduce alone: every random draw of a row comes from its own stream, so a problem
decodes the same alone, in any batch and at any batch position (engine, strategies, rollouts)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dllm_viz.engine import EngineConfig, generate
from dllm_viz.policy import DiTConfidencePolicy, PolicyConfig
from dllm_viz.rng import RowRNG, row_keys
from dllm_viz.strategies import build_strategy
from dllm_viz.strategies.learned import LearnedPolicy

# Equal-length prompts: left padding would change the model's arithmetic, which is not what is tested.
PROMPTS = ["a b c", "one plus two", "d e a", "two is 3", "Q : 7"]


def _strategy(kind: str):
    policy = DiTConfidencePolicy(PolicyConfig(hidden_size=16, ffn_size=32, num_heads=2, time_embed_dim=16))
    torch.manual_seed(0)
    for p in policy.parameters():
        torch.nn.init.normal_(p, std=0.3)  # a policy that is neither all-in nor all-out
    return {
        "random": lambda: build_strategy("random", steps=4),
        "sampled tokens": lambda: build_strategy("confidence", steps=4),
        "policy bernoulli": lambda: LearnedPolicy(policy, mode="bernoulli"),
        "policy dpls": lambda: LearnedPolicy(policy, mode="dpls"),
    }[kind]()


def _rows(backend, prompts, strategy, config):
    records = list(generate(backend, prompts, strategy, config))
    return [(tuple(t), int(n)) for t, n in zip(records[-1].tokens.tolist(), records[-1].nfe.tolist(), strict=True)]


def _with_copy_index(prompts):
    seen: dict[str, int] = {}
    out = []
    for p in prompts:
        out.append((p, seen.get(p, 0)))
        seen[p] = seen.get(p, 0) + 1
    return out


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from(["random", "sampled tokens", "policy bernoulli", "policy dpls"]),
    prompts=st.lists(st.sampled_from(PROMPTS), min_size=2, max_size=5),
    order=st.randoms(use_true_random=False),
    block_length=st.sampled_from([4, 16]),
    seed=st.integers(0, 1000),
)
def test_a_row_decodes_the_same_alone_and_in_any_batch(tiny_backend, kind, prompts, order, block_length, seed):
    config = EngineConfig(
        gen_length=16,
        block_length=block_length,
        seed=seed,
        temperature=0.8 if kind == "sampled tokens" else 0.0,
        fallback=kind != "policy bernoulli",
    )
    strategy = _strategy(kind)
    batch = dict(zip(_with_copy_index(prompts), _rows(tiny_backend, prompts, strategy, config), strict=True))
    shuffled = list(prompts)
    order.shuffle(shuffled)
    again = dict(zip(_with_copy_index(shuffled), _rows(tiny_backend, shuffled, strategy, config), strict=True))
    assert again == batch  # any batch position (copies of one prompt keep their order)
    for prompt in set(prompts):
        assert _rows(tiny_backend, [prompt], strategy, config)[0] == batch[(prompt, 0)]  # alone


def test_copies_of_a_prompt_get_different_streams_and_seeds_differ():
    keys = row_keys(0, [[1, 2], [1, 2], [3]])
    assert len(set(keys)) == 3
    assert row_keys(1, [[1, 2]]) != row_keys(0, [[1, 2]])
    assert row_keys(0, [[3], [1, 2]]) == [keys[2], keys[0]]


def test_a_state_continues_the_same_streams_and_rejects_an_old_one():
    rng = RowRNG([5, 9], "cpu", gen_length=8)
    rng.rows(slice(None)).rand((2, 8))
    state = rng.get_state()
    expected = rng.rows(torch.tensor([1])).rand((1, 8))
    other = RowRNG([0, 0], "cpu", gen_length=8)
    other.set_state(state)
    assert torch.equal(other.rows(torch.tensor([1])).rand((1, 8)), expected)
    # a KV-cache window over the last positions sees those positions' numbers of a full draw
    a, b = RowRNG([5], "cpu", 8), RowRNG([5], "cpu", 8)
    assert torch.equal(a.rows(slice(None)).rand((1, 3, 2)), b.rows(slice(None)).rand((1, 8, 2))[:, 5:])
    with pytest.raises(ValueError, match="must be 32 bytes"):
        other.set_state(torch.zeros(5056, dtype=torch.uint8))  # a shared mt19937 state of older traces
