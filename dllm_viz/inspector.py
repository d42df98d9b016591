"""Step inspector: why the learned policy unmasked what it did at one step.

At a recorded step the policy saw, per position, the dLLM's confidence (max-prob, or its top-p
probabilities), whether the position was masked, and the time t = NFE so far / L; it returned
unmask probabilities s = min(1, β·σ(b/τ_π)). The inspector rebuilds those inputs from the
trace (no dLLM needed), re-runs the policy, and attributes each eligible position's unmask logit
b to the inputs by gradient × input (Simonyan et al. 2013; Shrikumar et al. 2017):

    A[i, j, q] = ∂b_i/∂c_{j,q} · c_{j,q}   (confidence q of position j)
    A_t[i]     = ∂b_i/∂t · t               (time)

The logit, not s: s_i is an elementwise function of b_i, so both rank the inputs identically, but
s saturates (at τ_π = 0.5 a confident policy gives s = 0.9999 and gradients near 0). Multiply by
``ds_db[i]`` for the attribution to s_i itself.

The mask indicator enters through an embedding lookup, so it has no gradient and no score.
Confidences in a trace are rounded to 4 decimals, so recomputed probabilities can differ from the
recorded ones in the 4th decimal; both are reported.

Example:
    >>> from dllm_viz.policy import DiTConfidencePolicy  # doctest: +SKIP
    >>> result = inspect_step(policy, trace, step=3, temperature=0.5)  # doctest: +SKIP
    >>> result.top_inputs(result.positions[0])  # doctest: +SKIP
    [('confidence @ 12', 0.21), ('time', -0.04), ...]
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .branch import state_after
from .policy.sampling import unmask_probs
from .trace import Trace

MAX_EXPLAINED = 64  # positions attributed per step (one backward pass each); the rest are listed only


@dataclass(frozen=True)
class StepInputs:
    """What the policy saw at one step of a row.

    Attributes:
        confidence: (L, n) float32 per-position input: p probabilities, then the entropy when
            ``entropy``. masked: (L,) bool, masked before the step.
        eligible: (L,) bool, masked positions of the step's block. time: NFE before the step / L.
        recorded: (L,) the probabilities recorded in the trace, or None.
        committed: positions the step committed.
    """

    confidence: torch.Tensor
    masked: torch.Tensor
    eligible: torch.Tensor
    time: float
    recorded: list[float] | None
    committed: list[int]
    entropy: bool = False

    def input_names(self) -> list[str]:
        """A label per input column: "confidence" (or "confidence q" of the top p), then "entropy"."""
        p = self.confidence.shape[1] - int(self.entropy)
        names = ["confidence"] if p == 1 else [f"confidence {q + 1}" for q in range(p)]
        return names + ["entropy"] * int(self.entropy)


@dataclass(frozen=True)
class Attribution:
    """Gradient × input of the unmask probabilities of ``positions``.

    Attributes:
        inputs: the :class:`StepInputs`.
        probs: (L,) recomputed unmask probabilities, 0 off the eligible positions.
        logits: (L,) the policy's unmask logits b.
        positions: the explained positions (eligible, most probable first, at most MAX_EXPLAINED).
        confidence: (n, L, p) logit attributions to the confidence inputs, row r for ``positions[r]``.
        time: (n,) logit attributions to the time input.
        ds_db: (n,) ∂s_i/∂b_i, the factor from a logit attribution to a probability one.
    """

    inputs: StepInputs
    probs: torch.Tensor
    logits: torch.Tensor
    positions: list[int]
    confidence: torch.Tensor
    time: torch.Tensor
    ds_db: torch.Tensor

    def row(self, position: int) -> int:
        if position not in self.positions:
            raise ValueError(f"position {position} is not among the explained positions {self.positions[:12]}")
        return self.positions.index(position)

    def top_inputs(self, position: int, n: int = 8) -> list[tuple[str, float]]:
        """The ``n`` inputs that moved position ``position``'s unmask logit most, largest |A| first,
        as ("confidence @ j" | "confidence q @ j" | "entropy @ j" | "time", signed logit attribution)."""
        r = self.row(position)
        conf = self.confidence[r]  # (L, n)
        names = self.inputs.input_names()
        items = [(f"{name} @ {j}", float(conf[j, q])) for j in range(conf.shape[0]) for q, name in enumerate(names)]
        items.append(("time", float(self.time[r])))
        items.sort(key=lambda item: -abs(item[1]))
        return items[:n]


def step_inputs(trace: Trace, step: int, top_p: int = 1, entropy: bool = False) -> StepInputs:
    """The policy's inputs at 0-based ``step`` of ``trace`` (the decision that produced the
    canvas after ``step + 1`` steps), rebuilt from the recorded features: the ``top_p`` largest
    probabilities, then the entropy for a policy that reads it."""
    if not 0 <= step < trace.num_steps:
        raise ValueError(f"step {step + 1} is not a step of this run (1–{trace.num_steps})")
    s = trace.steps[step]
    if top_p == 1:
        confidence = torch.tensor(s.confidence, dtype=torch.float32).unsqueeze(-1)
    else:
        available = len(s.topk_probs[0]) if s.topk_probs else 0
        if top_p > available:
            raise ValueError(f"the policy reads the top {top_p} probabilities, but the trace keeps {available}")
        confidence = torch.tensor([row[:top_p] for row in s.topk_probs], dtype=torch.float32)
    if entropy:
        if s.entropy is None:
            raise ValueError(
                "the policy reads each position's entropy, but this trace did not record it; decode it again"
            )
        confidence = torch.cat([confidence, torch.tensor(s.entropy, dtype=torch.float32).unsqueeze(-1)], dim=-1)
    before = state_after(trace, step, s.remasked())  # a branch's first step saw its re-masks
    masked = torch.tensor([t == trace.mask_id for t in before.tokens])
    block = torch.arange(trace.gen_length) // trace.block_length == s.block
    return StepInputs(
        confidence, masked, masked & block, before.nfe / trace.gen_length, s.probs, list(s.committed), entropy
    )


def attribute(
    policy: nn.Module,
    inputs: StepInputs,
    temperature: float = 1.0,
    beta: float = 1.0,
    positions: list[int] | None = None,
) -> Attribution:
    """Recompute the policy's probabilities and their gradient × input attributions.

    Args:
        policy: a module ``policy(confidence (B, L, p), masked (B, L), time (B,)) -> logits (B, L)``
            with ``config.top_p`` (e.g. :class:`~dllm_viz.policy.DiTConfidencePolicy`).
        inputs: from :func:`step_inputs`.
        temperature, beta: the strategy's τ_π and β.
        positions: positions to explain (default: eligible ones, most probable first).
    """
    device = next(policy.parameters()).device
    conf = inputs.confidence.to(device).unsqueeze(0).requires_grad_(True)  # (1, L, p)
    time = torch.tensor([inputs.time], device=device, requires_grad=True)  # (1,)
    with torch.enable_grad():
        logits = policy(conf, inputs.masked.to(device).unsqueeze(0), time).float()  # (1, L)
        probs = unmask_probs(logits, temperature, beta)[0]  # (L,)
        # s_i depends on b_i alone, so the gradient of Σ s is the elementwise ds_i/db_i
        ds_db = torch.autograd.grad(probs.sum(), logits, retain_graph=True)[0][0]  # (L,)
        eligible = inputs.eligible.to(device)
        shown = torch.where(eligible, probs, torch.zeros_like(probs)).detach()
        if positions is None:
            order = torch.argsort(shown.masked_fill(~eligible, -1.0), descending=True, stable=True)
            positions = [int(p) for p in order[: int(eligible.sum())]][:MAX_EXPLAINED]
        conf_attr, time_attr = [], []
        for i, pos in enumerate(positions):
            # allow_unused: a policy may ignore an input entirely (None = a zero gradient)
            g_conf, g_time = torch.autograd.grad(
                logits[0, pos], (conf, time), retain_graph=i < len(positions) - 1, allow_unused=True
            )
            conf_attr.append(torch.zeros_like(conf[0]) if g_conf is None else (g_conf * conf)[0].detach())
            time_attr.append(torch.zeros_like(time[0]) if g_time is None else (g_time * time)[0].detach())
    L, p = inputs.confidence.shape
    return Attribution(
        inputs=inputs,
        probs=shown.cpu(),
        logits=logits[0].detach().cpu(),
        positions=list(positions),
        confidence=torch.stack(conf_attr).cpu() if conf_attr else torch.zeros(0, L, p),
        time=torch.stack(time_attr).cpu() if time_attr else torch.zeros(0),
        ds_db=ds_db.detach().cpu()[list(positions)] if positions else torch.zeros(0),
    )


def inspect_step(
    policy: nn.Module,
    trace: Trace,
    step: int,
    temperature: float = 1.0,
    beta: float = 1.0,
    positions: list[int] | None = None,
) -> Attribution:
    """:func:`attribute` at 0-based ``step`` of ``trace`` (inputs from :func:`step_inputs`)."""
    config = getattr(policy, "config", None)
    top_p, entropy = int(getattr(config, "top_p", 1)), bool(getattr(config, "entropy_input", False))
    return attribute(policy, step_inputs(trace, step, top_p, entropy), temperature, beta, positions)
