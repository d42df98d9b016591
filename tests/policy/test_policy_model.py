"""DiT confidence policy: exact size, smart init, conditioning paths, RoPE, config checks."""

from __future__ import annotations

import math

import pytest
import torch

from dllm_viz.policy import DiTConfidencePolicy, PolicyConfig
from dllm_viz.policy.layers import apply_rope, rope_tables, timestep_embedding

SMALL = PolicyConfig(hidden_size=16, num_heads=2, ffn_size=32, time_embed_dim=8)


def inputs(batch=2, length=12, seed=0, p=1):
    g = torch.Generator().manual_seed(seed)
    conf = torch.rand(batch, length, p, generator=g)
    masked = torch.rand(batch, length, generator=g) < 0.5
    time = torch.rand(batch, generator=g)
    return conf, masked, time


def test_default_config_has_exactly_the_released_parameter_count():
    policy = DiTConfidencePolicy(PolicyConfig())
    assert sum(p.numel() for p in policy.parameters()) == 331_265
    # Breakdown from the spec: time MLP, confidence projection, mask embedding, block, head.
    sizes = {name: sum(p.numel() for p in m.parameters()) for name, m in policy.named_children()}
    assert sizes == {
        "conf_proj": 256,
        "mask_embed": 256,
        "time_mlp": 33_024,
        "blocks": 297_344,
        "final_norm": 256,
        "head": 129,
    }


def test_smart_init_zeroes_adaln_and_sets_output_bias():
    policy = DiTConfidencePolicy(PolicyConfig())
    block = policy.blocks[0]
    assert torch.count_nonzero(block.ada_ln.weight) == 0 and torch.count_nonzero(block.ada_ln.bias) == 0
    assert policy.head.bias.item() == -2.0
    probs = torch.sigmoid(policy(*inputs(4, 64)))
    assert 0.03 < probs.mean().item() < 0.4  # ≈ σ(−2) ≈ 0.12 up to the random head weights


def test_smart_init_none_keeps_default_bias():
    policy = DiTConfidencePolicy(PolicyConfig(smart_init=None))
    assert policy.head.bias.item() != -2.0


def test_zeroed_adaln_makes_mask_and_time_irrelevant_until_trained():
    torch.manual_seed(0)
    policy = DiTConfidencePolicy(SMALL)
    conf, masked, time = inputs()
    base = policy(conf, masked, time)
    assert torch.allclose(base, policy(conf, ~masked, time + 0.3))
    torch.nn.init.normal_(policy.blocks[0].ada_ln.weight, std=0.5)
    assert not torch.allclose(base, policy(conf, ~masked, time))
    assert not torch.allclose(policy(conf, masked, time), policy(conf, masked, time + 0.3))


def test_attention_is_bidirectional():
    torch.manual_seed(0)
    policy = DiTConfidencePolicy(SMALL)
    conf, masked, time = inputs()
    changed = conf.clone()
    changed[:, -1] = 1 - changed[:, -1]  # only the last position changes
    out_a, out_b = policy(conf, masked, time), policy(changed, masked, time)
    assert not torch.allclose(out_a[:, 0], out_b[:, 0])  # the first position sees it


def test_time_embedding_with_period_one_is_cos_then_sin_repeated():
    t = torch.tensor([0.0, 0.25, 0.9])
    emb = timestep_embedding(t, 8, max_period=1.0)
    expected = torch.cat([t.cos()[:, None].expand(3, 4), t.sin()[:, None].expand(3, 4)], 1)
    assert torch.allclose(emb, expected)
    multi = timestep_embedding(t, 8, max_period=10000.0)
    assert not torch.allclose(multi[:, 1], multi[:, 0])  # a real period gives several frequencies


def test_rope_scores_depend_only_on_relative_position():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, 1, 1, 8, generator=g), torch.randn(1, 1, 1, 8, generator=g)
    cos, sin = rope_tables(20, 8, torch.device("cpu"))

    def score(i, j):
        qi = apply_rope(q, cos[i : i + 1], sin[i : i + 1])
        kj = apply_rope(k, cos[j : j + 1], sin[j : j + 1])
        return (qi * kj).sum().item()

    assert math.isclose(score(3, 1), score(13, 11), rel_tol=1e-5)
    assert not math.isclose(score(3, 1), score(3, 2), rel_tol=1e-3)
    rotated = apply_rope(q, cos[5:6], sin[5:6])
    assert torch.allclose(rotated.norm(), q.norm())


def test_top_p_input_width_and_shape_errors():
    policy = DiTConfidencePolicy(PolicyConfig(hidden_size=16, num_heads=2, ffn_size=32, time_embed_dim=8, top_p=3))
    conf, masked, time = inputs(p=3)
    assert policy(conf, masked, time).shape == (2, 12)
    with pytest.raises(ValueError, match=r"expected \(B, L, 3\) for top_p=3$"):
        policy(conf[..., 0], masked, time)
    with pytest.raises(ValueError, match="`masked`"):
        policy(conf, masked[:, :5], time)


def test_entropy_input_widens_the_input_by_one():
    config = PolicyConfig(hidden_size=16, num_heads=2, ffn_size=32, time_embed_dim=8, entropy_input=True)
    policy = DiTConfidencePolicy(config)
    assert config.input_size == 2 and policy.conf_proj.in_features == 2
    assert config.num_parameters() == sum(p.numel() for p in policy.parameters())
    conf, masked, time = inputs(p=2)
    assert policy(conf, masked, time).shape == (2, 12)
    with pytest.raises(ValueError, match=r"expected \(B, L, 2\) for top_p=1 plus the entropy"):
        policy(conf[..., 0], masked, time)
    with pytest.raises(ValueError, match=r"`entropy_input` \(1\) must be true or false"):
        PolicyConfig(entropy_input=1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(hidden_size=0), r"`hidden_size` \(0\) must be an integer between 1 and 1024"),
        (dict(num_heads=3), r"`num_heads` \(3\) must divide `hidden_size` \(128\)"),
        (dict(hidden_size=6, num_heads=2), r"must be even: RoPE"),
        (dict(time_embed_dim=7), r"`time_embed_dim` \(7\) must be even"),
        (dict(top_p=0), r"`top_p` \(0\)"),
        (dict(smart_init=float("nan")), r"`smart_init` \(nan\)"),
        (dict(time_period=0.0), r"`time_period` \(0.0\) must be a number in \(0, 1e\+09\]"),
        (dict(smart_init=3.402823466385289e38), r"`smart_init` \(3.4\d*e\+38\) must be a number in \[-10000, 10000\]"),
        (dict(num_blocks=1.5), r"`num_blocks` \(1.5\)"),
    ],
)
def test_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PolicyConfig(**kwargs)


def test_config_round_trip_and_unknown_keys():
    cfg = PolicyConfig(hidden_size=64, smart_init=None, time_period=10000.0)
    assert PolicyConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match=r"unknown policy config keys \['dropout'\]"):
        PolicyConfig.from_dict({**cfg.to_dict(), "dropout": 0.1})


def test_policy_is_trainable_end_to_end():
    torch.manual_seed(0)
    policy = DiTConfidencePolicy(SMALL)
    before = {n: p.detach().clone() for n, p in policy.named_parameters()}
    opt = torch.optim.SGD(policy.parameters(), lr=0.1)
    for _ in range(2):  # adaLN gets gradient only once something downstream of it is non-zero
        opt.zero_grad()
        policy(*inputs()).pow(2).mean().backward()
        opt.step()
    unchanged = [n for n, p in policy.named_parameters() if torch.equal(p, before[n])]
    assert unchanged == []


def test_docstring_example():
    import doctest

    import dllm_viz.policy.model

    result = doctest.testmod(dllm_viz.policy.model)
    assert result.attempted > 0 and result.failed == 0
