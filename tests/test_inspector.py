"""The step inspector's attributions, on hand-built policies whose answer is known."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
import torch
from torch import nn

from dllm_viz.branch import record_run
from dllm_viz.engine import EngineConfig
from dllm_viz.inspector import attribute, inspect_step, step_inputs
from dllm_viz.policy import DiTConfidencePolicy, PolicyConfig
from dllm_viz.strategies.learned import LearnedPolicy


@dataclass(frozen=True)
class _Config:
    top_p: int = 1


class OwnConfidence(nn.Module):
    """b_i = w·(c_i − ½): each position's logit depends on its own confidence only."""

    config = _Config()

    def __init__(self, w: float = 6.0):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))

    def forward(self, confidence, masked, time):
        return self.w * (confidence[..., 0] - 0.5)


class LeftNeighbour(OwnConfidence):
    """b_i = w·c_{i−1} (b_0 = 0): each position's logit depends on its left neighbour's confidence only."""

    def forward(self, confidence, masked, time):
        c = confidence[..., 0]
        return self.w * torch.cat([torch.zeros_like(c[:, :1]), c[:, :-1]], dim=1)


class TimeOnly(OwnConfidence):
    """b_i = w·t − 1: the time input alone."""

    def forward(self, confidence, masked, time):
        return (self.w * time - 1.0).unsqueeze(1).expand(confidence.shape[:2])


@pytest.fixture(scope="module")
def trace(tiny_backend):
    """A decode whose steps have several eligible positions and a time input above 0."""
    return record_run(
        tiny_backend,
        "one plus two",
        LearnedPolicy(_dit(), mode="bernoulli-argmax"),
        EngineConfig(gen_length=16, block_length=8),
    )


def _dit(zero_confidence: bool = False) -> DiTConfidencePolicy:
    torch.manual_seed(0)
    policy = DiTConfidencePolicy(
        PolicyConfig(hidden_size=16, num_heads=2, ffn_size=32, time_embed_dim=8, smart_init=0.0)
    )
    for block in policy.blocks:  # smart init zeroes adaLN: give time and mask a path to the logits
        nn.init.normal_(block.ada_ln.weight, std=0.5)
    if zero_confidence:
        nn.init.zeros_(policy.conf_proj.weight)
        nn.init.zeros_(policy.conf_proj.bias)
    return policy.eval()


def _step_with_choices(trace) -> int:
    return next(i for i, s in enumerate(trace.steps) if i > 0 and sum(step_inputs(trace, i).eligible) >= 3)


def test_own_confidence_policy_is_explained_by_its_own_confidence_alone(trace):
    k = _step_with_choices(trace)
    result = inspect_step(OwnConfidence(), trace, k, temperature=0.5)
    conf = result.inputs.confidence[:, 0]
    assert result.positions and all(result.inputs.eligible[p] for p in result.positions)
    for r, pos in enumerate(result.positions):
        expected = torch.zeros_like(result.confidence[r])
        expected[pos, 0] = 6.0 * conf[pos]  # ∂b_i/∂c_i · c_i
        assert torch.allclose(result.confidence[r], expected, atol=1e-6)
        assert float(result.time[r]) == 0.0
        assert result.top_inputs(pos, 1) == [(f"confidence @ {pos}", pytest.approx(6.0 * float(conf[pos]), abs=1e-5))]
        s = torch.sigmoid(6.0 * (conf[pos] - 0.5) / 0.5)
        assert float(result.probs[pos]) == pytest.approx(float(s), abs=1e-6)
        assert float(result.ds_db[r]) == pytest.approx(float(s * (1 - s) / 0.5), abs=1e-6)
    assert set(result.probs.nonzero().squeeze(1).tolist()) <= set(result.positions)  # 0 off the eligible ones


def test_neighbour_policy_points_at_the_left_neighbour(trace):
    k = _step_with_choices(trace)
    result = inspect_step(LeftNeighbour(), trace, k)
    for pos in result.positions:
        if pos > 0 and result.inputs.confidence[pos - 1, 0] > 0:
            assert result.top_inputs(pos, 1)[0][0] == f"confidence @ {pos - 1}"
            assert sum(abs(v) for _, v in result.top_inputs(pos, 20)[1:]) == 0


def test_time_only_policy_is_explained_by_time(trace):
    k = _step_with_choices(trace)
    result = inspect_step(TimeOnly(w=3.0), trace, k)
    t = result.inputs.time
    assert t == trace.steps[k - 1].nfe / trace.gen_length > 0
    assert torch.count_nonzero(result.confidence) == 0
    assert torch.allclose(result.time, torch.full_like(result.time, 3.0 * t))
    assert result.top_inputs(result.positions[0], 1)[0][0] == "time"


def test_dit_without_a_confidence_path_gets_no_confidence_attribution(trace):
    k = _step_with_choices(trace)
    result = inspect_step(_dit(zero_confidence=True), trace, k)
    assert torch.count_nonzero(result.confidence) == 0
    assert torch.count_nonzero(result.time) > 0


def test_recomputed_inputs_are_what_the_policy_saw(trace):
    """Rebuilt from the trace (masks, time, rounded confidences), the policy gives back the
    probabilities the engine recorded at every step."""
    policy = _dit()
    for k, step in enumerate(trace.steps):
        result = inspect_step(policy, trace, k)
        assert result.inputs.committed == step.committed
        assert torch.allclose(result.probs, torch.tensor(step.probs), atol=2e-3), k


def test_top_p_policy_reads_the_top_probabilities(trace):
    policy = DiTConfidencePolicy(
        PolicyConfig(hidden_size=16, num_heads=2, ffn_size=32, time_embed_dim=8, top_p=3)
    ).eval()
    result = inspect_step(policy, trace, 1)
    assert result.confidence.shape[1:] == (16, 3)
    assert all(
        name.startswith(("confidence 1 @", "confidence 2 @", "confidence 3 @", "time"))
        for name, _ in result.top_inputs(result.positions[0], 10)
    )
    with pytest.raises(ValueError, match="reads the top 9 probabilities, but the trace keeps 5"):
        step_inputs(trace, 1, top_p=9)


def test_entropy_policy_reads_the_recorded_entropies_and_gets_back_its_probabilities(tiny_backend):
    """An entropy-input policy's decode, inspected from its trace alone, gives back the recorded
    probabilities (the entropies are stored, rounded like the confidences)."""
    torch.manual_seed(0)
    config = PolicyConfig(
        hidden_size=16, num_heads=2, ffn_size=32, time_embed_dim=8, smart_init=0.0, entropy_input=True
    )
    policy = DiTConfidencePolicy(config).eval()
    recorded = record_run(
        tiny_backend,
        "one plus two",
        LearnedPolicy(policy, mode="bernoulli-argmax"),
        EngineConfig(gen_length=16, block_length=8),
    )
    for k, step in enumerate(recorded.steps):
        result = inspect_step(policy, recorded, k)
        assert torch.equal(result.inputs.confidence[:, 1], torch.tensor(step.entropy))
        assert torch.allclose(result.probs, torch.tensor(step.probs), atol=2e-3), k
    first = inspect_step(policy, recorded, 0)
    names = [name for name, _ in first.top_inputs(first.positions[0], 2 * 16 + 1)]
    assert (
        sum(n.startswith("entropy @") for n in names) == 16 and sum(n.startswith("confidence @") for n in names) == 16
    )
    old = replace(recorded, steps=[replace(s, entropy=None) for s in recorded.steps])  # a trace from before 0.3
    with pytest.raises(ValueError, match="reads each position's entropy, but this trace did not record it"):
        inspect_step(policy, old, 0)


def test_bad_step_and_position(trace):
    with pytest.raises(ValueError, match=f"step 0 is not a step of this run \\(1–{trace.num_steps}\\)"):
        step_inputs(trace, -1)
    result = attribute(OwnConfidence(), step_inputs(trace, 0))
    with pytest.raises(ValueError, match="position 15 is not among the explained positions"):
        result.top_inputs(15)
