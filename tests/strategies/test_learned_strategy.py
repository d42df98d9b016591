"""LearnedPolicy as a Strategy: eligibility, modes, τ_π/β, full-context inputs, log-probs."""

from __future__ import annotations

import pytest
import torch

from dllm_viz.features import compute_features
from dllm_viz.policy import DiTConfidencePolicy, PolicyConfig
from dllm_viz.policy.sampling import bernoulli_log_prob, dpls_log_prob, unmask_probs
from dllm_viz.strategies.base import DecodeState, Strategy
from dllm_viz.strategies.learned import LearnedPolicy, LearnedPolicyConfig, policy_inputs

SMALL = PolicyConfig(hidden_size=16, num_heads=2, ffn_size=32, time_embed_dim=8, smart_init=0.0)


def make_state(batch=64, length=16, block=(4, 8), seed=0, generator_seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, length, 10, generator=g) * 3
    masked = torch.rand(batch, length, generator=g) < 0.7
    masked[:, block[0] : block[1]] = True  # the current block is fully masked
    masked[0] = False  # row 0: a row without eligible positions
    eligible = masked.clone()
    eligible[:, : block[0]] = False
    eligible[:, block[1] :] = False
    feats = compute_features(logits)
    return DecodeState(
        features=feats,
        tokens=feats.topk_ids[..., 0],
        token_prob=feats.confidence,
        masked=masked,
        eligible=eligible,
        block_step=torch.zeros(batch, dtype=torch.long),
        nfe=torch.randint(0, length, (batch,), generator=g),
        gen_length=length,
        block_length=4,
        generator=torch.Generator().manual_seed(generator_seed),
    )


@pytest.fixture
def policy():
    torch.manual_seed(0)
    return DiTConfidencePolicy(SMALL)


def test_satisfies_the_strategy_protocol(policy):
    strategy = LearnedPolicy(policy)
    assert isinstance(strategy, Strategy) and strategy.name == "learned"
    assert strategy.params() == {
        "mode": "bernoulli-argmax",
        "temperature": 1.0,
        "beta": 1.0,
        "dpls_stop_logit": 0.0,
        "policy": SMALL.to_dict(),
    }


@pytest.mark.parametrize("mode", ["bernoulli", "bernoulli-argmax", "dpls"])
def test_actions_stay_within_eligible_and_log_prob_matches(policy, mode):
    state = make_state()
    decision = LearnedPolicy(policy, mode=mode).decide(state)
    assert decision.unmask.shape == decision.probs.shape == (64, 16)
    assert decision.log_prob.shape == (64,) and decision.log_prob.dtype == torch.float32
    assert not (decision.unmask & ~state.eligible).any()
    assert (decision.probs[~state.eligible] == 0).all()
    assert decision.log_prob[0] == 0  # nothing eligible, nothing to decide
    with torch.no_grad():
        logits = policy(*policy_inputs(state, PolicyConfig()))
    if mode == "dpls":
        expected = dpls_log_prob(logits, decision.pick_order, state.eligible)
    else:
        expected = bernoulli_log_prob(decision.probs, decision.unmask, state.eligible)
        assert torch.allclose(decision.probs[state.eligible], torch.sigmoid(logits)[state.eligible])
    assert torch.allclose(decision.log_prob, expected)


def test_training_mode_allows_empty_steps_eval_mode_does_not(policy):
    torch.nn.init.constant_(policy.head.bias, -4.0)  # s ≈ 0.02: empty draws are common
    state = make_state()
    has_eligible = state.eligible.any(1)
    train = LearnedPolicy(policy, mode="bernoulli").decide(state)
    assert (~train.unmask.any(1) & has_eligible).any()
    evaluate = LearnedPolicy(policy, mode="bernoulli-argmax").decide(make_state())
    assert (evaluate.unmask.any(1) == has_eligible).all()


def test_same_generator_seed_replays_the_decision(policy):
    first = LearnedPolicy(policy, mode="bernoulli").decide(make_state(generator_seed=5))
    second = LearnedPolicy(policy, mode="bernoulli").decide(make_state(generator_seed=5))
    third = LearnedPolicy(policy, mode="bernoulli").decide(make_state(generator_seed=6))
    assert torch.equal(first.unmask, second.unmask) and not torch.equal(first.unmask, third.unmask)


def test_temperature_and_beta_reshape_the_probabilities(policy):
    state = make_state()
    with torch.no_grad():
        logits = policy(*policy_inputs(state, PolicyConfig()))
    decision = LearnedPolicy(policy, mode="bernoulli", temperature=0.5, beta=1.7).decide(state)
    expected = unmask_probs(logits, 0.5, 1.7)
    assert torch.allclose(decision.probs[state.eligible], expected[state.eligible])
    base = LearnedPolicy(policy, mode="bernoulli").decide(state).probs
    assert decision.probs.sum() > base.sum()  # β > 1 unmasks more


def test_policy_sees_the_full_buffer_not_just_the_block(policy):
    seen = {}

    def spy(module, args):
        seen["masked"] = args[1].clone()

    policy.register_forward_pre_hook(spy)
    state = make_state()
    LearnedPolicy(policy).decide(state)
    assert torch.equal(seen["masked"], state.masked)
    assert (state.masked & ~state.eligible).any()  # masked positions outside the block were fed


def test_top_p_inputs_come_from_topk_probs():
    torch.manual_seed(0)
    policy = DiTConfidencePolicy(PolicyConfig(hidden_size=16, num_heads=2, ffn_size=32, time_embed_dim=8, top_p=3))
    state = make_state()
    conf, _, time = policy_inputs(state, PolicyConfig(top_p=3))
    assert torch.equal(conf, state.features.topk_probs[..., :3]) and torch.equal(time, state.nfe.float() / 16)
    LearnedPolicy(policy).decide(state)
    with pytest.raises(ValueError, match=r"top_p=9 .* keep only 5; raise EngineConfig.top_k"):
        policy_inputs(state, PolicyConfig(top_p=9))


@pytest.mark.parametrize("top_p", [1, 3])
def test_entropy_input_follows_the_probabilities(top_p):
    config = PolicyConfig(hidden_size=16, num_heads=2, ffn_size=32, time_embed_dim=8, top_p=top_p, entropy_input=True)
    state = make_state()
    conf, _, _ = policy_inputs(state, config)
    assert conf.shape == (*state.masked.shape, top_p + 1)
    assert torch.equal(conf[..., :top_p], policy_inputs(state, PolicyConfig(top_p=top_p))[0])
    assert torch.equal(conf[..., -1], state.features.entropy)
    decision = LearnedPolicy(DiTConfidencePolicy(config)).decide(state)
    assert not (decision.unmask & ~state.eligible).any()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            dict(mode="greedy"),
            r"unknown sampling mode 'greedy'; known: auto, bernoulli, bernoulli-argmax, bernoulli-plus-one, dpls",
        ),
        (dict(temperature=0.0), r"`temperature` \(0.0\) must be a finite number > 0"),
        (dict(beta=-1.0), r"`beta` \(-1.0\)"),
        (dict(mode="dpls", beta=2.0), r"`beta` \(2.0\) only applies to Bernoulli modes"),
        (dict(dpls_stop_logit=float("inf")), r"`dpls_stop_logit` \(inf\)"),
    ],
)
def test_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LearnedPolicyConfig(**kwargs)


def test_validate_and_constructor_errors(policy):
    strategy = LearnedPolicy(policy)
    strategy.validate(256, 32)  # any L and BL: the engine config checks that BL divides L, once
    with pytest.raises(ValueError, match="either `config` or keyword overrides"):
        LearnedPolicy(policy, LearnedPolicyConfig(), mode="dpls")


def test_from_pretrained_wraps_a_saved_policy(policy, tmp_path):
    policy.save_pretrained(tmp_path / "p")
    strategy = LearnedPolicy.from_pretrained(tmp_path / "p", mode="bernoulli", temperature=0.5)
    assert strategy.config == LearnedPolicyConfig(mode="bernoulli", temperature=0.5)
    state = make_state()
    assert torch.allclose(
        strategy.decide(state).probs, LearnedPolicy(policy, mode="bernoulli", temperature=0.5).decide(state).probs
    )


def test_docstring_example():
    import doctest

    import dllm_viz.strategies.learned

    result = doctest.testmod(dllm_viz.strategies.learned)
    assert result.attempted > 0 and result.failed == 0
