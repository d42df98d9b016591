"""Engine invariants, checked over random lengths, blocks, strategies and seeds."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dllm_viz.engine import EngineConfig, generate, run
from dllm_viz.strategies import HEURISTICS, Decision, build_strategy


@dataclass(frozen=True)
class NeverUnmask:
    """Proposes nothing: exercises the fallback and the forced end of a block."""

    name = "never"

    def decide(self, state):
        return Decision(torch.zeros_like(state.eligible))

    def validate(self, gen_length, block_length):
        pass

    def params(self):
        return {}


def _strategy(name, L, BL, draw):
    if name in ("random", "confidence", "margin", "entropy"):
        n_blocks = L // BL
        steps = draw(st.sampled_from([n_blocks * s for s in range(1, BL + 1)]))
        return build_strategy(name, steps=steps)
    if name == "threshold":
        return build_strategy(name, threshold=draw(st.floats(0.01, 1.0)))
    if name == "factor":
        return build_strategy(name, factor=draw(st.floats(0.1, 3.0)))
    if name in ("eb", "eb-maxprob"):
        return build_strategy(name, gamma=draw(st.floats(0.0, 2.0)))
    return NeverUnmask()


@st.composite
def scenarios(draw):
    L = draw(st.sampled_from([4, 6, 8, 12, 16, 24]))
    BL = draw(st.sampled_from([d for d in range(1, L + 1) if L % d == 0]))
    name = draw(st.sampled_from(sorted(HEURISTICS) + ["never"]))
    strategy = _strategy(name, L, BL, draw)
    config = EngineConfig(
        gen_length=L,
        block_length=BL,
        seed=draw(st.integers(0, 2**16)),
        temperature=draw(st.sampled_from([0.0, 0.0, 0.7])),
        fallback=draw(st.booleans()),
    )
    prompts = draw(st.lists(st.sampled_from(["one plus two", "a b", "three is 4 5 6 7", "c"]), min_size=1, max_size=3))
    return prompts, strategy, config


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenarios())
def test_engine_invariants(tiny_backend, scenario):
    prompts, strategy, config = scenario
    L, BL = config.gen_length, config.block_length
    mask = tiny_backend.mask_id
    records = list(generate(tiny_backend, prompts, strategy, config))
    B = len(prompts)
    previous = torch.full((B, L), mask)
    active_steps = torch.zeros(B, dtype=torch.long)
    for rec in records:
        tokens = rec.tokens.cpu()
        committed = rec.committed.cpu()
        # Only eligible (masked, current block) positions are committed...
        assert not (committed & ~rec.eligible).any()
        assert not (rec.eligible & ~rec.masked).any()
        # ...and eligibility is exactly the masked part of the row's first unfinished block.
        for b in range(B):
            if rec.active[b]:
                blocks = (rec.eligible[b].nonzero().squeeze(1) // BL).unique()
                assert blocks.tolist() == [int(rec.block[b])]
                assert not rec.masked[b, : int(rec.block[b]) * BL].any()
        # Committed tokens never change; new ones are the proposals.
        was_committed = previous != mask
        assert torch.equal(tokens[was_committed], previous[was_committed])
        assert torch.equal(tokens[committed], rec.proposed.cpu()[committed])
        assert torch.equal(tokens[~committed & ~was_committed], previous[~committed & ~was_committed])
        if config.fallback:
            assert committed[rec.active].any(1).all(), "every active row commits at least one token"
        active_steps += rec.active.long()
        assert torch.equal(rec.nfe.cpu(), active_steps)
        previous = tokens
    assert (previous != mask).all(), "every row terminates fully unmasked"
    assert len(records) <= L and (records[-1].nfe <= L).all()


def test_same_seed_same_output_different_seed_differs(tiny_backend):
    strategy = build_strategy("random", steps=8)
    prompts = ["one plus two", "a b c"]
    a = run(tiny_backend, prompts, strategy, EngineConfig(gen_length=16, block_length=4, temperature=1.0, seed=3))
    b = run(tiny_backend, prompts, strategy, EngineConfig(gen_length=16, block_length=4, temperature=1.0, seed=3))
    c = run(tiny_backend, prompts, strategy, EngineConfig(gen_length=16, block_length=4, temperature=1.0, seed=4))
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.nfe, b.nfe)
    assert not torch.equal(a.tokens, c.tokens)


def test_no_fallback_forces_block_completion_within_block_length(tiny_backend):
    config = EngineConfig(gen_length=12, block_length=4, fallback=False)
    records = list(generate(tiny_backend, ["a b"], NeverUnmask(), config))
    assert len(records) == 12 and int(records[-1].nfe[0]) == 12
    # Each block's masks are all committed on its 4th step.
    assert [int(r.committed.sum()) for r in records] == [0, 0, 0, 4] * 3


def test_fallback_commits_one_argmax_per_step(tiny_backend):
    records = list(generate(tiny_backend, ["a b"], NeverUnmask(), EngineConfig(gen_length=8, block_length=8)))
    assert len(records) == 8
    for rec in records:
        (pos,) = rec.committed[0].nonzero().squeeze(1).tolist()
        eligible_prob = rec.token_prob[0].masked_fill(~rec.eligible[0], -1)
        assert pos == int(eligible_prob.argmax())


def test_finished_rows_stop_paying_nfe(scripted):
    # Row 0 is all-confident (done in one threshold step); row 1 never is.
    def fn(pos, canvas):
        return (5, 0.99) if canvas[0] == 2 else (6, 0.3)

    backend = scripted(fn=fn)
    result = run(
        backend,
        [[2, 3], [3, 3]],
        build_strategy("threshold", threshold=0.9),
        EngineConfig(gen_length=6, block_length=6),
    )
    assert result.nfe.tolist() == [1, 6]
    assert result.steps == 6


def test_batched_rows_match_single_row_runs(tiny_backend):
    """Left padding must not change a row's result."""
    strategy = build_strategy("threshold", threshold=0.5)
    config = EngineConfig(gen_length=8, block_length=4)
    batch = run(tiny_backend, ["one plus two is", "a"], strategy, config)
    for i, prompt in enumerate(["one plus two is", "a"]):
        single = run(tiny_backend, [prompt], strategy, config)
        assert torch.equal(single.tokens[0], batch.tokens[i])
        assert int(single.nfe[0]) == int(batch.nfe[i])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(gen_length=10, block_length=4), "block_length (4) must divide gen_length (10)"),
        (dict(gen_length=0), "gen_length (0) must be a positive integer"),
        (dict(gen_length=8, block_length=16), "block_length (16) must be an integer in [1, gen_length=8]"),
        (dict(temperature=-1.0), "temperature (-1.0) must be a finite number"),
    ],
)
def test_bad_engine_config(kwargs, message):
    with pytest.raises(ValueError) as err:
        EngineConfig(**kwargs)
    assert message in str(err.value)


def test_bad_prompts(tiny_backend):
    s = build_strategy("confidence")
    with pytest.raises(ValueError, match="the prompt is empty"):  # one prompt: no index to confuse a user
        run(tiny_backend, ["   "], s, EngineConfig(gen_length=8))
    with pytest.raises(ValueError, match="prompt 1 is empty"):
        run(tiny_backend, ["a", "   "], s, EngineConfig(gen_length=8))
    with pytest.raises(ValueError, match="non-empty list"):
        run(tiny_backend, [], s, EngineConfig(gen_length=8))
    long_prompt = " ".join(["a"] * 130)
    with pytest.raises(
        ValueError,
        match=r"the prompt is 134 tokens \(with the chat template\); "
        r"with gen_length 8 that exceeds the model's context of 128",
    ):
        run(tiny_backend, [long_prompt], s, EngineConfig(gen_length=8))


def test_setting_presets_name_the_setting_in_one_place():
    from dllm_viz.engine import default_block_length, setting_label

    semi, full = EngineConfig.semi_ar(64, temperature=0.5), EngineConfig.full(64)
    assert (semi.block_length, semi.temperature, semi.setting) == (8, 0.5, "semi-AR BL=8")
    assert (full.block_length, full.full_diffusion, full.setting) == (64, True, "full diffusion")
    assert EngineConfig.semi_ar(256).block_length == 32 and EngineConfig.semi_ar(64, 16).block_length == 16
    # L/8 whenever it divides L (the old default); otherwise the nearest divisor below, never an error
    assert all(default_block_length(L) == L // 8 for L in range(8, 300) if L % (L // 8) == 0)
    assert all(L % default_block_length(L) == 0 for L in range(1, 300))
    assert setting_label(32, 4) == "semi-AR BL=4"
