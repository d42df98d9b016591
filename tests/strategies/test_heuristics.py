"""Hand-checked examples of every heuristic rule, on crafted features."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dllm_viz.backends.hf import MaskedLMBackend
from dllm_viz.engine import EngineConfig, run
from dllm_viz.features import Features, compute_features
from dllm_viz.strategies import DecodeState, build_strategy
from dllm_viz.strategies.heuristics import linear_schedule


def state(token_prob=None, entropy=None, margin=None, eligible=None, block_step=0, BL=None):
    values = next(v for v in (token_prob, entropy, margin) if v is not None)
    x = torch.tensor([values], dtype=torch.float32)
    L = x.shape[1]
    zeros = torch.zeros_like(x)
    feats = Features(
        confidence=torch.tensor([token_prob]) if token_prob else zeros,
        margin=torch.tensor([margin]) if margin else zeros,
        entropy=torch.tensor([entropy]) if entropy else zeros,
        topk_ids=torch.zeros(1, L, 2, dtype=torch.long),
        topk_probs=torch.zeros(1, L, 2),
    )
    return _one_row(feats, eligible, block_step, BL)


def _one_row(feats: Features, eligible=None, block_step: int = 0, BL=None) -> DecodeState:
    """A one-row decode state around ``feats`` (every position masked; eligible as given or all)."""
    L = feats.confidence.shape[1]
    elig = torch.ones(1, L, dtype=torch.bool) if eligible is None else torch.tensor([eligible])
    return DecodeState(
        features=feats,
        tokens=torch.zeros(1, L, dtype=torch.long),
        token_prob=feats.confidence,
        masked=elig.clone(),
        eligible=elig,
        block_step=torch.tensor([block_step]),
        nfe=torch.tensor([0]),
        gen_length=L,
        block_length=BL or L,
        generator=torch.Generator().manual_seed(0),
    )


def picks(strategy, s):
    return strategy.decide(s).unmask[0].nonzero().squeeze(1).tolist()


def test_threshold_commits_above_lambda():
    s = state(token_prob=[0.95, 0.5, 0.91, 0.2, 0.9])
    assert picks(build_strategy("threshold", threshold=0.9), s) == [0, 2, 4]


def test_threshold_falls_back_to_the_most_confident_per_row():
    s = state(token_prob=[0.3, 0.5, 0.8, 0.2], eligible=[True, True, False, True])
    assert picks(build_strategy("threshold", threshold=0.9), s) == [1]


def test_factor_takes_longest_passing_prefix():
    # f = 1: n=1: 2·0.01 ✓, n=2: 3·0.10 ✓, n=3: 4·0.20 ✓, n=4: 5·0.50 ✗ (sorted 0.99, 0.9, 0.8, 0.5).
    s = state(token_prob=[0.8, 0.5, 0.99, 0.9])
    assert picks(build_strategy("factor", factor=1.0), s) == [0, 2, 3]
    # A failing rank stops the prefix even if a later one would pass on its own.
    assert picks(build_strategy("factor", factor=0.05), s) == [2]


@pytest.mark.parametrize("variant", ["paper", "upstream"])
def test_factor_variants_differ_only_when_the_last_rank_alone_fails(variant):
    up = variant == "upstream"
    rule = build_strategy("factor", factor=1.0, variant=variant)
    # Sorted 0.9, 0.8, 0.3: rank 2 needs ≥ 1 − 1/3 ✓, rank 3 needs ≥ 0.75 ✗ and is the last.
    assert picks(rule, state(token_prob=[0.3, 0.9, 0.8])) == ([0, 1, 2] if up else [1, 2])
    # Two masks left: rank 2 (the last) fails, so upstream reveals both.
    assert picks(rule, state(token_prob=[0.1, 0.9])) == ([0, 1] if up else [1])
    # A failure before the last rank stops both at the passing prefix.
    assert picks(rule, state(token_prob=[0.4, 0.95, 0.5, 0.3])) == [1]
    # All pass: all revealed; one mask: it is revealed.
    assert picks(rule, state(token_prob=[0.99, 0.995, 0.999])) == [0, 1, 2]
    assert picks(rule, state(token_prob=[0.2, 0.9], eligible=[True, False])) == [0]
    # The bound is inclusive, as upstream compares c < 1 − f/(n+1) to fail: 0.75 at rank 3 passes.
    assert picks(rule, state(token_prob=[0.75, 1.0, 0.9, 0.1])) == ([0, 1, 2, 3] if up else [0, 1, 2])


def transcribe_factor_upstream(conf: list[float], factor: float) -> list[int]:
    """Fast-dLLM's ``get_transfer_index_dynamic`` selection, written out as its loop reads."""
    order = sorted(range(len(conf)), key=lambda i: -conf[i])
    thresholds = [-1] + [1 - factor / (n + 1) for n in range(2, len(conf) + 1)]
    for top_i in range(len(thresholds)):
        if conf[order[top_i]] < thresholds[top_i]:
            break
    if top_i == 0 or top_i == len(thresholds) - 1:
        top_i += 1
    return sorted(order[:top_i])


def test_factor_upstream_equals_the_reference_loop_on_random_confidences():
    g = torch.Generator().manual_seed(0)
    for trial in range(200):
        n = 1 + trial % 9
        conf = (1 - torch.rand(n, generator=g) ** 3).tolist()  # mostly high, as late in a block
        factor = [0.5, 1.0, 1.9][trial % 3]
        assert picks(
            build_strategy("factor", factor=factor, variant="upstream"), state(token_prob=conf)
        ) == transcribe_factor_upstream(conf, factor), (conf, factor)


def test_dream_schedule_counts():
    from dllm_viz.strategies.heuristics import dream_schedule

    # 32 steps on 32 masks: 0 first, then one per step (n shrinks as tokens land), the rest at the end.
    n, counts = 32, []
    for i in range(32):
        k = int(dream_schedule(torch.tensor([n]), torch.tensor([i]), 32))
        counts.append(k)
        n -= k
    assert counts == [0] + [1] * 30 + [2]
    # The same float32 arithmetic as Dream's: int(n * (1 - s / t)) over linspace(1, 1e-3, steps + 1).
    grid = torch.linspace(1, 1e-3, 9)
    for i, masked in enumerate([64, 57, 50, 40, 33, 20, 10, 4]):
        expected = int(torch.tensor(float(masked)) * (1 - grid[i + 1] / grid[i])) if i < 7 else masked
        assert int(dream_schedule(torch.tensor([masked]), torch.tensor([i]), 8)) == expected


def test_dream_schedule_may_ask_for_nothing_and_says_so():
    s = state(entropy=[0.5, 0.1, 0.3, 0.2], BL=4)
    decision = build_strategy("entropy", schedule="dream").decide(s)
    assert decision.allow_empty and not decision.unmask.any()  # int(4 · (1 − s/t)) = 0 at step 0 of 4
    s = state(entropy=[0.5, 0.1, 0.3, 0.2], BL=4, block_step=3)
    assert picks(build_strategy("entropy", schedule="dream"), s) == [0, 1, 2, 3]  # the last step takes the rest


def test_eb_sampler_entropy_budget():
    # Sorted entropies 0.001, 0.005, 0.01, 0.2 → sums before each: 0, 0.001, 0.006, 0.016.
    s = state(entropy=[0.001, 0.005, 0.2, 0.01])
    assert picks(build_strategy("eb", gamma=0.01), s) == [0, 1, 3]
    assert picks(build_strategy("eb", gamma=0.0), s) == [0]


def _distributions_state(rows: list[list[float]]) -> DecodeState:
    """A one-row state whose features come from real per-position distributions (so entropy and
    max-prob agree with each other, as the engine computes them)."""
    probs = torch.tensor([rows], dtype=torch.float32)  # (1, L, V)
    return _one_row(compute_features(probs.log(), k=2))


def test_eb_on_entropy_and_on_max_prob_choose_different_sets():
    V = 22
    certain = [0.999] + [0.001 / (V - 1)] * (V - 1)  # H ≈ 0.008, −log p ≈ 0.001
    two_way = [0.6, 0.4] + [0.0] * (V - 2)  # H = 0.673, −log p = 0.511
    spread = [0.8] + [0.2 / (V - 1)] * (V - 1)  # H ≈ 1.10, −log p = 0.223: confident but spread out
    s = _distributions_state([two_way, spread, certain])
    assert s.features.entropy[0, 0] < s.features.entropy[0, 1] and s.features.confidence[0, 1] > 0.79
    # Order by entropy: certain, two_way, spread; by −log max-prob: certain, spread, two_way. γ = 0.05 admits
    # the first two of each order (the second joins because only the first's u ≤ γ lies before it).
    assert picks(build_strategy("eb", gamma=0.05), s) == [0, 2]
    assert picks(build_strategy("eb-maxprob", gamma=0.05), s) == [1, 2]
    # γ = 0.3 admits the third under max-prob (0.001 + 0.223 before it), not under entropy (0.008 + 0.673).
    assert picks(build_strategy("eb", gamma=0.3), s) == [0, 2]
    assert picks(build_strategy("eb-maxprob", gamma=0.3), s) == [0, 1, 2]
    assert picks(build_strategy("eb-maxprob", gamma=0.0), s) == [2]  # γ = 0: one at a time, the most confident


def reference_eb(uncertainty: list[float], eligible: list[bool], gamma: float) -> list[int]:
    """EB-Sampler's rule as a plain loop: grow the set in ascending order while Σ_U u − max_U u ≤ γ."""
    order = sorted((i for i in range(len(uncertainty)) if eligible[i]), key=lambda i: (uncertainty[i], i))
    chosen: list[int] = []
    for i in order:
        candidate = chosen + [i]
        values = [uncertainty[j] for j in candidate]
        if chosen and sum(values) - max(values) > gamma:
            break
        chosen = candidate
    return sorted(chosen)


@settings(max_examples=200, deadline=None)
@given(
    conf=st.lists(st.floats(0.02, 1.0), min_size=1, max_size=12),
    eligible_bits=st.lists(st.booleans(), min_size=12, max_size=12),
    gamma=st.floats(0.0, 3.0),
)
def test_eb_maxprob_equals_the_reference_loop(conf, eligible_bits, gamma):
    eligible = eligible_bits[: len(conf)]
    eligible[conf.index(min(conf))] = True  # at least one eligible position
    u = [-math.log(c) for c in conf]
    # Away from the boundary, float32 (the strategy) and float64 (the loop) must agree exactly.
    order = sorted(u[i] for i in range(len(u)) if eligible[i])
    assume(all(abs(sum(order[:k]) - gamma) > 1e-4 for k in range(1, len(order))))
    s = state(token_prob=conf, eligible=eligible)
    assert picks(build_strategy("eb-maxprob", gamma=gamma), s) == reference_eb(u, eligible, gamma)
    # the same loop on entropies checks that eb's rule is the shared one
    s.features.entropy = torch.tensor([u], dtype=torch.float32)
    assert picks(build_strategy("eb", gamma=gamma), s) == reference_eb(u, eligible, gamma)


def test_eb_maxprob_round_trips_through_the_registry_cli_and_trace(tiny_model_dir, tmp_path, capsys):
    from dllm_viz.generate import main as generate_main
    from dllm_viz.strategies import REGISTRY, StrategySpec
    from dllm_viz.trace import Trace

    info = REGISTRY["eb-maxprob"]
    assert info.label == "EB-Sampler (max-prob)" and not info.stochastic
    assert info.params == REGISTRY["eb"].params  # γ: the same range, default and help as eb
    base = ["--model", str(tiny_model_dir), "--prompt", "Ann has 5 apples.", "--gen-length", "16"]
    trace_path = tmp_path / "t.json"
    assert generate_main([*base, "--strategy", "eb-maxprob", "--gamma", "0.5", "--save-trace", str(trace_path)]) == 0
    by_flag = capsys.readouterr().out.splitlines()[0]
    assert generate_main([*base, "--strategy", "eb-maxprob", "--param", "gamma=0.5"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == by_flag
    trace = Trace.load(trace_path)
    assert trace.strategy == {"name": "eb-maxprob", "gamma": 0.5}
    assert StrategySpec.from_dict(trace.strategy) == StrategySpec("eb-maxprob", {"gamma": 0.5})
    assert generate_main([*base, "--strategy", "eb-maxprob", "--gamma", "-1"]) == 2
    assert "gamma (-1.0) must be a finite number ≥ 0" in capsys.readouterr().err


def test_linear_schedule_matches_llada():
    assert linear_schedule(8, 3).tolist() == [3, 3, 2]
    assert linear_schedule(32, 32).tolist() == [1] * 32
    assert linear_schedule(4, 1).tolist() == [4]


def test_confidence_k_follows_schedule_and_ends_blocks():
    s = state(token_prob=[0.1, 0.9, 0.5, 0.7, 0.2, 0.3, 0.6, 0.8], BL=8)
    # steps=3 for one block of 8 → [3, 3, 2]: first step takes the 3 best.
    assert picks(build_strategy("confidence", steps=3), s) == [1, 3, 7]
    s_last = state(token_prob=[0.1, 0.9, 0.5, 0.7, 0.2, 0.3, 0.6, 0.8], block_step=2, BL=8)
    assert len(picks(build_strategy("confidence", steps=3), s_last)) == 8


def test_margin_and_entropy_rank_their_scores():
    assert picks(build_strategy("margin", steps=4), state(margin=[0.1, 0.6, 0.3, 0.2])) == [1]
    assert picks(build_strategy("entropy", steps=4), state(entropy=[0.9, 0.6, 0.05, 0.2])) == [2]


def test_random_k_draws_k_eligible_positions():
    s = state(token_prob=[0.5] * 8, eligible=[True, False] * 4)
    chosen = picks(build_strategy("random", steps=4), s)  # schedule [2, 2, 2, 2]
    assert len(chosen) == 2 and all(p % 2 == 0 for p in chosen)


def test_features_from_logits():
    logits = torch.log(torch.tensor([[[0.7, 0.2, 0.1], [1 / 3, 1 / 3, 1 / 3]]]))
    f = compute_features(logits, k=2)
    assert torch.allclose(f.confidence, torch.tensor([[0.7, 1 / 3]]))
    assert torch.allclose(f.margin, torch.tensor([[0.5, 0.0]]), atol=1e-6)
    h = -(0.7 * torch.log(torch.tensor(0.7)) + 0.2 * torch.log(torch.tensor(0.2)) + 0.1 * torch.log(torch.tensor(0.1)))
    assert torch.allclose(f.entropy, torch.stack([h, torch.log(torch.tensor(3.0))]).unsqueeze(0), atol=1e-6)
    assert f.topk_ids[0, 0].tolist() == [0, 1]


def test_confidence_one_per_step_is_llada_greedy_order(tiny_backend):
    """High-Confidence-K with steps = L reproduces a direct transcription of LLaDA's loop."""
    L, BL = 8, 4
    result = run(
        tiny_backend,
        ["one plus two"],
        build_strategy("confidence"),
        EngineConfig(gen_length=L, block_length=BL),
        keep_records=True,
    )
    prompt = tiny_backend.encode_prompt("one plus two")
    x = torch.tensor([prompt + [tiny_backend.mask_id] * L])
    order = []
    for block in range(L // BL):
        for _ in range(BL):
            logits = tiny_backend.model(input_ids=x).logits[0, len(prompt) :].float()
            logits[:, tiny_backend.mask_id] = float("-inf")  # the engine never predicts [MASK]
            probs = torch.softmax(logits, -1)
            conf, tok = probs.max(-1)
            lo, hi = block * BL, (block + 1) * BL
            masked = x[0, len(prompt) :] == tiny_backend.mask_id
            conf[~masked] = -1
            conf[:lo] = -1
            conf[hi:] = -1
            pos = int(conf.argmax())
            x[0, len(prompt) + pos] = tok[pos]
            order.append(pos)
    engine_order = [r.committed[0].nonzero().item() for r in result.records]
    assert engine_order == order
    assert result.tokens[0].tolist() == x[0, len(prompt) :].tolist()


@pytest.mark.parametrize(
    "name, params, message",
    [
        ("threshold", dict(threshold=0.0), "threshold (0.0) must be in (0, 1]"),
        ("threshold", dict(threshold=1.5), "threshold (1.5) must be in (0, 1]"),
        ("factor", dict(factor=-1), "factor (-1) must be > 0"),
        ("eb", dict(gamma=-0.1), "gamma (-0.1) must be a finite number"),
        (
            "confidence",
            dict(steps=100),
            "steps (100) must be an integer between the number of blocks (8) and gen_length (64)",
        ),
        ("confidence", dict(steps=4), "steps (4) must be an integer between the number of blocks (8)"),
        ("random", dict(steps=12), "steps (12) must be a multiple of the number of blocks (8"),
        ("entropy", dict(schedule="cosine"), "schedule ('cosine') must be one of llada, dream"),
        ("margin", dict(schedule="dream", eps=0), "eps (0) must be in (0, 1)"),
        ("factor", dict(variant="nvlabs"), "variant ('nvlabs') must be one of paper, upstream"),
    ],
)
def test_bad_strategy_parameters(name, params, message):
    with pytest.raises(ValueError) as err:
        build_strategy(name, **params).validate(64, 8)
    assert message in str(err.value)


def test_unknown_strategy_lists_known_names():
    with pytest.raises(
        ValueError,
        match="unknown strategy 'topp'; known: confidence, eb, eb-maxprob, entropy, factor, margin, policy, random, "
        "threshold",
    ):
        build_strategy("topp")
    with pytest.raises(ValueError, match=r"has no parameter\(s\) \['lam'\]"):
        build_strategy("threshold", lam=0.3)


def test_backend_rejects_a_model_with_no_mask_token_anywhere(tiny_model_dir):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    mask = tok.mask_token_id
    tok.mask_token = None
    model = AutoModelForMaskedLM.from_pretrained(tiny_model_dir)
    assert MaskedLMBackend(model, tok, "x").mask_id == mask  # config.json's mask_token_id stands in
    model.config.mask_token_id = None
    with pytest.raises(RuntimeError, match=r"neither its tokenizer \(no mask token\) nor its config"):
        MaskedLMBackend(model, tok, "x")


def test_entropy_ignores_tokens_ruled_out_with_minus_inf():
    """The engine sets the [MASK] logit to -inf; entropy must stay finite (a NaN silently turned
    EB-sampler into one token per step and scrambled Entropy-K's order)."""
    logits = torch.tensor([[[2.0, 0.5, float("-inf"), -1.0], [0.0, 0.0, float("-inf"), 0.0]]])
    feats = compute_features(logits, k=2)
    expected = torch.distributions.Categorical(logits=logits[..., [0, 1, 3]]).entropy()
    assert torch.isfinite(feats.entropy).all()
    assert torch.allclose(feats.entropy, expected)
    assert feats.entropy[0, 1].item() == pytest.approx(torch.log(torch.tensor(3.0)).item())
