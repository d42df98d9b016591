"""Branching: continuing a run from any step, with and without overrides (property-based)."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_engine import NeverUnmask

from dllm_viz.branch import (
    BranchError,
    branch,
    check_overrides,
    record_run,
    replay,
    run_branch,
    state_after,
    vocab_size,
)
from dllm_viz.engine import DecodeStart, EngineConfig, encode_prompts, generate
from dllm_viz.policy import DiTConfidencePolicy, PolicyConfig
from dllm_viz.strategies import HEURISTICS, build_strategy
from dllm_viz.strategies.learned import LearnedPolicy
from dllm_viz.strategies.override import Override
from dllm_viz.trace import Trace, TraceBuilder, TraceError
from dllm_viz.views import frame_cells

SMALL = PolicyConfig(hidden_size=16, num_heads=2, ffn_size=32, time_embed_dim=8, smart_init=0.0)
PROMPTS = ["one plus two", "a b", "three is 4 5 6 7", "c"]


def _policy(seed: int) -> DiTConfidencePolicy:
    torch.manual_seed(seed)
    return DiTConfidencePolicy(SMALL).eval()


@dataclass(frozen=True)
class Spec:
    """A strategy by name and parameters (built in the test: hypothesis prints this, not a network)."""

    name: str
    params: tuple = ()

    def build(self):
        params = dict(self.params)
        if self.name.startswith("learned"):
            return LearnedPolicy(_policy(params.pop("seed")), mode=self.name.split(":")[1], **params)
        return NeverUnmask() if self.name == "never" else build_strategy(self.name, **params)


def _strategy(name, L, BL, draw) -> Spec:
    if name in ("random", "confidence", "margin", "entropy"):
        n_blocks = L // BL
        return Spec(name, (("steps", draw(st.sampled_from([n_blocks * s for s in range(1, BL + 1)]))),))
    if name in ("threshold", "factor", "eb", "eb-maxprob"):
        key, lo, hi = {
            "threshold": ("threshold", 0.01, 1.0),
            "factor": ("factor", 0.1, 3.0),
            "eb": ("gamma", 0.0, 2.0),
            "eb-maxprob": ("gamma", 0.0, 2.0),
        }[name]
        return Spec(name, ((key, draw(st.floats(lo, hi))),))
    if name.startswith("learned"):
        return Spec(name, (("seed", draw(st.integers(0, 3))), ("temperature", draw(st.sampled_from([0.5, 1.0])))))
    return Spec("never")


NAMES = sorted(HEURISTICS) + ["never", "learned:bernoulli", "learned:bernoulli-argmax", "learned:dpls"]


@st.composite
def runs(draw):
    L = draw(st.sampled_from([4, 6, 8, 12, 16]))
    BL = draw(st.sampled_from([d for d in range(1, L + 1) if L % d == 0]))
    strategy = _strategy(draw(st.sampled_from(NAMES)), L, BL, draw)
    config = EngineConfig(
        gen_length=L,
        block_length=BL,
        seed=draw(st.integers(0, 2**16)),
        temperature=draw(st.sampled_from([0.0, 0.7])),
        fallback=draw(st.booleans()),
    )
    return draw(st.sampled_from(PROMPTS)), strategy, config


def _recorded(backend, prompt, strategy, config):
    """The original run: its engine records and its trace (RNG kept where it moved)."""
    prompt_ids = encode_prompts(backend, [prompt], config.gen_length)[0]
    builder = TraceBuilder(backend, prompt, strategy, config, prompt_ids=prompt_ids)
    records = []
    for rec in generate(backend, [prompt_ids], strategy, config):
        builder.add(rec)
        records.append(rec)
    return records, builder.trace(builder.text())


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(runs(), st.data())
def test_continuing_without_overrides_reproduces_the_run(tiny_backend, run, data):
    """From the state after any step k, the same strategy replays steps k+1… token for token,
    including stochastic strategies and sampled tokens (same random stream)."""
    prompt, spec, config = run
    strategy = spec.build()
    original, trace = _recorded(tiny_backend, prompt, strategy, config)
    k = data.draw(st.integers(0, len(original) - 1), label="k")
    continued = list(branch(tiny_backend, trace, k, [], strategy))
    assert len(continued) == len(original) - k
    for mine, theirs in zip(continued, original[k:], strict=False):
        assert mine.step == theirs.step
        for name in ("tokens", "committed", "proposed", "nfe", "eligible", "rng_state"):
            assert torch.equal(getattr(mine, name), getattr(theirs, name)), (name, mine.step)
        assert (mine.probs is None) == (theirs.probs is None)
        if mine.probs is not None:
            assert torch.equal(mine.probs, theirs.probs)


@st.composite
def overrides_at(draw, trace: Trace, k: int, vocab: int):
    """Valid overrides for the state after ``k`` steps: re-masks of committed positions, then
    forced commits (token or the model's proposal) and holds among the eligible positions."""
    before = state_after(trace, k)
    committed = [p for p, t in enumerate(before.tokens) if t != trace.mask_id]
    remask = draw(st.lists(st.sampled_from(committed), unique=True, max_size=3)) if committed else []
    after = state_after(trace, k, remask)
    masked = [p for p, t in enumerate(after.tokens) if t == trace.mask_id]
    assume(masked)
    block = masked[0] // trace.block_length
    eligible = [p for p in masked if p // trace.block_length == block]
    force = draw(st.lists(st.sampled_from(eligible), unique=True, max_size=2))
    rest = [p for p in eligible if p not in force]
    hold = (
        draw(st.lists(st.sampled_from(rest), unique=True, max_size=max(0, len(rest) - (0 if force else 1))))
        if rest
        else []
    )
    tokens = [draw(st.one_of(st.none(), st.integers(0, vocab - 1).filter(lambda t: t != trace.mask_id))) for _ in force]
    return (
        [Override(p, "remask") for p in remask]
        + [Override(p, "force", t) for p, t in zip(force, tokens, strict=True)]
        + [Override(p, "hold") for p in hold]
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(runs(), st.data())
def test_branch_invariants_with_overrides(tiny_backend, run, data):
    prompt, spec, config = run
    strategy = spec.build()
    original, trace = _recorded(tiny_backend, prompt, strategy, config)
    L, mask = config.gen_length, tiny_backend.mask_id
    k = data.draw(st.integers(0, len(original)), label="k")
    overrides = data.draw(overrides_at(trace, k, vocab_size(tiny_backend)), label="overrides")
    start = state_after(trace, k, [o.position for o in overrides if o.action == "remask"])
    records = list(branch(tiny_backend, trace, k, overrides, strategy))

    masks_at_start = sum(t == mask for t in start.tokens)
    # one commit per step with the fallback (plus a held-back step); without it a block may take BL steps
    assert 1 <= len(records) <= (masks_at_start if config.fallback else L) + 1
    previous = torch.tensor([start.tokens])
    for i, rec in enumerate(records):
        assert rec.step == k + i
        # committed ⊆ eligible ⊆ masked, and the masks are exactly the canvas's
        assert not (rec.committed & ~rec.eligible).any() and not (rec.eligible & ~rec.masked).any()
        assert torch.equal(rec.masked, previous == mask)
        # committed tokens never change; new ones are the (possibly forced) proposals
        kept = previous != mask
        assert torch.equal(rec.tokens[kept], previous[kept])
        assert torch.equal(rec.tokens[rec.committed], rec.proposed[rec.committed])
        assert int(rec.nfe[0]) == start.nfe + i + 1  # one NFE per step, counted on from the parent
        previous = rec.tokens
    assert (previous != mask).all(), "the branch ends fully unmasked"

    first = records[0]
    for o in overrides:
        if o.action == "force":
            assert first.committed[0, o.position], "a forced position is committed at the branch step"
            token = o.token if o.token is not None else int(first.proposed[0, o.position])
            assert int(first.tokens[0, o.position]) == token
            assert all(int(r.tokens[0, o.position]) == token for r in records), "a forced commit never changes"
        elif o.action == "hold":
            assert first.eligible[0, o.position] and not first.committed[0, o.position]
        elif all(p.position != o.position or p.action != "force" for p in overrides):  # re-masked only
            assert first.masked[0, o.position]
            assert any(r.eligible[0, o.position] for r in records), "a re-masked position becomes eligible again"
            assert sum(int(r.committed[0, o.position]) for r in records) == 1


def _run(backend, strategy=None, L=16, BL=4, **kw):
    return record_run(
        backend,
        "one plus two",
        strategy or build_strategy("confidence"),
        EngineConfig(gen_length=L, block_length=BL, **kw),
    )


def test_forced_token_and_overrides_are_recorded_and_replay_exactly(tiny_backend):
    strategy = build_strategy("random")
    trace = _run(tiny_backend, strategy, temperature=0.8, seed=5)
    assert any(s.rng for s in trace.steps), "a stochastic run keeps its random state"
    committed = _committed(trace, 3)
    state = state_after(trace, 3, [committed[0]])
    masked = [p for p, t in enumerate(state.tokens) if t == trace.mask_id]
    eligible = [p for p in masked if p // 4 == masked[0] // 4]
    overrides = [Override(committed[0], "remask"), Override(eligible[1], "force", 7), Override(eligible[0], "hold")]
    child = run_branch(tiny_backend, trace, 3, overrides, strategy)
    assert child.meta["at_step"] == 3 and child.steps[3].overrides == [o.to_dict() for o in overrides]
    assert eligible[1] in child.steps[3].committed and child.steps[3].proposed[eligible[1]] == 7
    assert eligible[0] not in child.steps[3].committed
    assert child.tokens_at(child.num_steps - 1)[eligible[1]] == 7
    loaded = Trace.from_json(child.to_json())  # through JSON, as a file or a client would
    again = replay(tiny_backend, loaded, strategy)
    assert [(s.committed, s.proposed, s.nfe, s.rng) for s in again.steps] == [
        (s.committed, s.proposed, s.nfe, s.rng) for s in child.steps
    ]


def test_views_show_a_remasked_position_masked_after_the_branch_point(tiny_backend):
    trace = _run(tiny_backend, L=8, BL=8)
    pos = trace.steps[0].committed[0]
    child = run_branch(tiny_backend, trace, trace.num_steps, [Override(pos, "remask")], build_strategy("confidence"))
    k = trace.num_steps
    assert frame_cells(child, k)[pos].state == "committed"  # the shared history, as the parent had it
    assert frame_cells(child, k)[pos].commit_step == 1
    cell = frame_cells(child, k + 1)[pos]
    assert cell.state == "committed" and cell.commit_step == k + 1 and cell.new  # committed again at once
    assert child.commit_step()[pos] == k and child.tokens_at(k - 1)[pos] == trace.tokens_at(k - 1)[pos]


# ---- bad overrides: each gets its own message -------------------------------------------------------


@pytest.fixture(scope="module")
def recorded(tiny_backend):
    return _run(tiny_backend)  # L = 16, BL = 4, one token per step


def _check(trace, k, overrides, vocab=40):
    return check_overrides(trace, k, overrides, vocab_size=vocab)


def _committed(trace, k):
    return [p for p, t in enumerate(state_after(trace, k).tokens) if t != trace.mask_id]


@pytest.mark.parametrize(
    "k, message",
    [
        (17, "step 17 is past the end of the run: it has 16 steps (branch after 0–16)"),
        (-1, "step must be a whole number ≥ 0, not -1"),
        (2.5, "step must be a whole number ≥ 0, not 2.5"),
        (16, "nothing is left to decode after step 16: every position is committed; re-mask a position"),
    ],
)
def test_bad_step(recorded, k, message):
    with pytest.raises(BranchError) as err:
        _check(recorded, k, [])
    assert message in str(err.value)


def test_bad_overrides_get_specific_messages(recorded):
    k = 5
    done = _committed(recorded, k)
    token = recorded.tokens_at(k - 1)[done[0]]
    masked = [p for p in range(16) if p not in done]
    block = masked[0] // 4
    later = next(p for p in masked if p // 4 != block)
    cases = [
        (
            [{"position": 16, "action": "force"}],
            "override 0: position 16 is out of range: the generation has positions 0–15",
        ),
        ([{"position": -1, "action": "hold"}], "position -1 is out of range"),
        (
            [{"position": done[0], "action": "force", "token": (token + 1) % 40}],
            f"position {done[0]} is already committed to {recorded.token_text(token)!r} (token id {token}) "
            "after step 5; "
            "to force another token there, re-mask it in the same branch",
        ),
        (
            [{"position": masked[0], "action": "force", "token": 40}],
            "token id 40 is unknown: the model's vocabulary has ids 0–39",
        ),
        (
            [{"position": masked[0], "action": "force", "token": recorded.mask_id}],
            "is the mask token; to keep position",
        ),
        (
            [{"position": masked[0], "action": "remask"}],
            f"position {masked[0]} is still masked after step 5; only committed",
        ),
        (
            [{"position": later, "action": "force"}],
            f"position {later} is in block {later // 4}, but after step 5 the decode is in block {block}",
        ),
        (
            [{"position": done[0], "action": "hold"}],
            "already committed after step 5; only masked positions can be held back",
        ),
        (
            [{"position": masked[0], "action": "hold"}, {"position": masked[0], "action": "force"}],
            "give one per position",
        ),
        (
            [{"position": p, "action": "hold"} for p in masked if p // 4 == block],
            "holding back every eligible position",
        ),
        ([{"position": masked[0], "action": "skip"}], "action 'skip' must be one of force, hold, remask"),
        ([{"position": masked[0], "action": "hold", "token": 3}], "only a forced commit takes a token (hold does not)"),
        ([{"position": "3", "action": "force"}], "position must be an integer, not '3'"),
        ([{"position": True, "action": "force"}], "position must be an integer, not True"),
        (
            [{"position": masked[0], "action": "force", "token": "7"}],
            "token must be a token id (an integer) or null, not '7'",
        ),
        ([{"position": masked[0], "action": "force", "colour": "red"}], "unknown field(s) ['colour']"),
        ([7], "override 0 must be an object with position, action and token, not int"),
        ({"position": 3}, "overrides must be a list"),
        ([{"position": masked[0], "action": "hold"}] * 65, "a branch takes at most 64"),
    ]
    for overrides, message in cases:
        with pytest.raises(BranchError) as err:
            _check(recorded, k, overrides)
        assert message in str(err.value), (overrides, str(err.value))
    # the allowed pair: re-mask a committed position and force another token there
    ok = _check(
        recorded, 16, [{"position": done[0], "action": "remask"}, {"position": done[0], "action": "force", "token": 5}]
    )
    assert [o.action for o in ok] == ["remask", "force"]


def test_branch_refuses_another_kind_of_model(recorded, scripted):
    with pytest.raises(BranchError, match="mask/EOS ids are 2/3"):
        list(branch(scripted(), recorded, 2, [], build_strategy("confidence")))


def test_engine_checks_a_start_state(tiny_backend):
    config = EngineConfig(gen_length=4, block_length=4)
    good = dict(
        tokens=torch.full((1, 4), tiny_backend.mask_id),
        nfe=torch.zeros(1, dtype=torch.long),
        block_step=torch.zeros(1, dtype=torch.long),
    )
    for change, message in [
        (dict(tokens=torch.zeros(1, 5, dtype=torch.long)), "start.tokens must be a (1, 4) tensor"),
        (dict(nfe=torch.tensor([9])), "start.nfe ([9]) cannot exceed gen_length (4)"),
        (dict(block_step=torch.tensor([-1])), "start.block_step must be a (1,) tensor of counts ≥ 0"),
        (dict(step=-2), "start.step (-2) must be an integer ≥ 0"),
        (
            dict(rng_state=torch.zeros(3, dtype=torch.uint8)),
            "does not fit this batch: the random state must be 16 bytes",
        ),
    ]:
        with pytest.raises(ValueError) as err:
            list(
                generate(
                    tiny_backend, ["a"], build_strategy("confidence"), config, start=DecodeStart(**{**good, **change})
                )
            )
        assert message in str(err.value)


def test_trace_file_overrides_are_validated(tiny_backend, recorded):
    child = run_branch(
        tiny_backend, recorded, 4, [Override(_committed(recorded, 4)[0], "remask")], build_strategy("confidence")
    )
    data = Trace.from_json(child.to_json())
    assert data.steps[4].overrides == child.steps[4].overrides
    for change, message in [
        ([{"position": 99, "action": "remask", "token": None}], "override positions must be integers in [0, 16)"),
        ([{"position": 1, "action": "nudge", "token": None}], "override action 'nudge' must be one of"),
        ([{"position": 1, "action": "hold", "token": 4}], "only a forced commit has one"),
        ([{"position": 1}], "each override must be an object with position, action and token"),
    ]:
        bad = copy.deepcopy(child)
        bad.steps[4].overrides = change
        with pytest.raises(TraceError) as err:
            Trace.from_json(bad.to_json())
        assert message in str(err.value)
    bad = copy.deepcopy(child)
    bad.steps[0].overrides = [{"position": 15, "action": "remask", "token": None}]
    with pytest.raises(TraceError, match="position 15 is re-masked but was not committed"):
        Trace.from_json(bad.to_json())
    bad = copy.deepcopy(child)
    bad.steps[2].rng = "<not base64>"
    with pytest.raises(TraceError, match="rng must be base64 text"):
        Trace.from_json(bad.to_json())
    bad = copy.deepcopy(child)
    bad.steps[4].overrides = None  # a re-commit without its re-mask is a position committed twice
    with pytest.raises(TraceError, match="committed twice|more than gen_length \\(16\\)"):
        Trace.from_json(bad.to_json())


def test_a_forced_token_where_the_strategy_commits_anyway_is_a_divergence(tiny_backend):
    """Same positions, another token: the futures part there (views mark it)."""
    from dllm_viz.views import first_divergence

    trace = _run(tiny_backend, L=8, BL=8)
    (pos,) = trace.steps[2].committed
    token = next(t for t in range(5, 40) if t != trace.steps[2].proposed[pos])
    child = run_branch(tiny_backend, trace, 2, [Override(pos, "force", token)], build_strategy("confidence"))
    assert child.steps[2].committed == [pos]
    assert first_divergence(trace, child) == 3
    assert first_divergence(trace, run_branch(tiny_backend, trace, 2, [], build_strategy("confidence"))) is None


def test_a_stochastic_trace_without_random_state_is_flagged(tiny_backend):
    from dllm_viz.branch import lacks_random_state

    sampled = _run(tiny_backend, build_strategy("random"), temperature=0.5)
    assert not lacks_random_state(sampled) and not lacks_random_state(_run(tiny_backend))
    for step in sampled.steps:  # as an export written before traces kept random states has it
        step.rng = None
    assert lacks_random_state(sampled)
