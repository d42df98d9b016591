"""Per-step policy data of a batch of rollouts, and re-scoring it under new parameters.

GRPO needs, for every step of every rollout, the policy's inputs (c, m, t), the eligible set,
the action taken and its log-likelihood at rollout time (paper §6.2: "every stored step is
replayed through the policy"). :class:`PolicySteps` holds them as (N, T, ...) tensors; T is
padded with inactive steps, so rollouts of different length stack. It also holds the sampling
settings the rollout used, so a replay scores actions exactly as they were drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..policy.sampling import bernoulli_log_prob, plus_one_log_prob, unmask_probs
from ..strategies.learned import LearnedPolicy, LearnedPolicyConfig, policy_inputs_from

TENSORS = ("confidence", "masked", "time", "eligible", "action", "active", "old_log_prob")


@dataclass
class PolicySteps:
    """Stored steps of N rollouts (N = rows, T = steps, L = gen length, p = policy top_p).

    Attributes:
        sampling: how the policy's probabilities became actions at rollout time (τ_π, β, mode);
            :func:`replay_log_probs` reads it, so replay cannot drift from sampling.
        confidence: (N, T, L, p) float32 policy input c at every generation position.
        masked: (N, T, L) bool, masked positions before the step (full context).
        time: (N, T) float32, NFE used before the step / L.
        eligible: (N, T, L) bool, positions the action ranged over.
        action: (N, T, L) bool, the sampled unmask decision u (before any forced commit).
        active: (N, T) bool, steps in 𝒯_g: the row ran the step and had eligible positions.
        old_log_prob: (N, T) float32 log π_old(u | s) from rollout time, or None when the
            rollout came from a heuristic (expert steering): fill it with
            ``replay_log_probs(policy, steps).detach()`` before the first update.
    """

    sampling: LearnedPolicyConfig
    confidence: torch.Tensor
    masked: torch.Tensor
    time: torch.Tensor
    eligible: torch.Tensor
    action: torch.Tensor
    active: torch.Tensor
    old_log_prob: torch.Tensor | None = None

    @classmethod
    def from_records(
        cls, records: Sequence, gen_length: int, strategy: LearnedPolicy, *, expert: bool = False
    ) -> PolicySteps:
        """Stack the engine's ``StepRecord``s of one batched run (rows = the run's batch).

        ``strategy`` is the learned policy that decoded the run (its inputs' top_p and its
        sampling settings are kept). ``record.nfe`` counts the step itself, so the time input is
        built from ``nfe − 1`` for rows active at that step. With ``expert=True`` (an
        expert-steering rollout decoded by a heuristic; ``strategy`` is then the policy whose
        likelihood is wanted) the action is everything committed and the eligible set is every
        masked position, so the policy learns a block-agnostic copy of the expert (appendix F).
        """
        if not records:
            raise ValueError("no step records to stack")
        per_step = []
        for rec in records:
            active_row = rec.active.bool()
            eligible = (rec.masked if expert else rec.eligible).bool() & active_row.unsqueeze(1)
            action = (rec.committed if expert else rec.action).bool() & eligible
            log_prob = None if (expert or rec.log_prob is None) else rec.log_prob.float()
            confidence, masked, time = policy_inputs_from(
                rec.features, rec.masked, rec.nfe - active_row.long(), gen_length, strategy.policy.config
            )
            per_step.append(
                dict(
                    confidence=confidence.float(),
                    masked=masked.bool(),
                    time=time,
                    eligible=eligible,
                    action=action,
                    active=active_row & eligible.any(1),
                    old_log_prob=log_prob,
                )
            )
        stacked: dict = {"sampling": strategy.config}
        for name in TENSORS:
            values = [step[name] for step in per_step]
            if any(v is None for v in values):
                stacked[name] = None
            else:
                stacked[name] = torch.stack(values, dim=1)
        return cls(**stacked)

    def index(self, rows: torch.Tensor) -> PolicySteps:
        """Rows in a new order (e.g. to interleave expert rollouts into their groups)."""
        picked: dict[str, Any] = {
            name: None if getattr(self, name) is None else getattr(self, name)[rows] for name in TENSORS
        }
        return PolicySteps(sampling=self.sampling, **picked)

    @classmethod
    def cat(cls, parts: Sequence[PolicySteps]) -> PolicySteps:
        """Concatenate rows of several batches, padding T with inactive steps."""
        if not parts:
            raise ValueError("nothing to concatenate")
        if any(p.sampling != parts[0].sampling for p in parts):
            raise ValueError(f"parts were sampled differently ({sorted({str(p.sampling) for p in parts})})")
        horizon = max(p.active.shape[1] for p in parts)
        out: dict = {"sampling": parts[0].sampling}
        for name in TENSORS:
            values = [getattr(p, name) for p in parts]
            if any(v is None for v in values):
                if any(v is not None for v in values):
                    raise ValueError(f"`{name}` is set in some parts and None in others; fill it first")
                out[name] = None
                continue
            padded = []
            for v in values:
                pad = horizon - v.shape[1]
                if pad:
                    v = torch.cat([v, torch.zeros((v.shape[0], pad, *v.shape[2:]), dtype=v.dtype, device=v.device)], 1)
                padded.append(v)
            out[name] = torch.cat(padded, 0)
        return cls(**out)


def replay_log_probs(
    policy: torch.nn.Module,
    steps: PolicySteps,
    chunk_size: int = 512,
) -> torch.Tensor:
    """Step log-likelihoods of the stored actions under the policy's current weights, with the
    rollout's own action form, τ_π and β (``steps.sampling``).

    Only active steps go through the network, ``chunk_size`` steps per forward pass (each step
    is one (L,) sequence); the result keeps the autograd graph for the GRPO loss. ``policy`` is
    the network or, under ``torchrun``, its DistributedDataParallel wrapper.

    Returns:
        (N, T) float32; 0 on inactive steps.
    """
    if chunk_size < 1:
        raise ValueError(f"`chunk_size` ({chunk_size}) must be ≥ 1")
    sampling = steps.sampling
    if sampling.mode == "dpls":
        raise ValueError("DPLS rollouts cannot be replayed from stored steps (they keep no pick order)")
    device = next(policy.parameters()).device
    active = steps.active.to(device)
    idx = active.nonzero(as_tuple=True)  # K active (row, step) pairs
    flat = [getattr(steps, name).to(device)[idx] for name in ("confidence", "masked", "time", "action", "eligible")]
    pieces = []
    for start in range(0, flat[0].shape[0], chunk_size):
        conf, masked, time, action, eligible = (t[start : start + chunk_size] for t in flat)
        logits = policy(conf, masked, time)
        probs = unmask_probs(logits, sampling.temperature, sampling.beta)
        if sampling.mode == "bernoulli-plus-one":
            pieces.append(plus_one_log_prob(probs, logits / sampling.temperature, action, eligible))
        else:
            pieces.append(bernoulli_log_prob(probs, action, eligible))
    out = torch.zeros(active.shape, dtype=torch.float32, device=device)
    if pieces:
        out = out.index_put(idx, torch.cat(pieces))
    return out
