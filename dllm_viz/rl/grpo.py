"""GRPO pieces: group advantages, the clipped loss and expert steering as pure tensor functions,
and the optimiser and update step built from them (the one update the trainer and the tests run).

The GRPO unit is a denoising *step*, not a token: rollout g has steps t ∈ 𝒯_g (steps with at
least one eligible position) and each step has one joint action likelihood π(u_t | s_t).
Rollouts are laid out in contiguous groups: rows [k·S, (k+1)·S) share prompt k, S = G + E.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..training import adamw, warmup_cosine
from .config import GRPOConfig
from .steps import PolicySteps, replay_log_probs


def group_advantages(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """``A = R − mean(R over the rollout's group)``; no division by the group std (paper §1.6).

    Dividing by the std would blow up groups whose rewards barely differ; the code computes
    the std only for logging.

    Args:
        rewards: (N,) float, N a multiple of ``group_size``, contiguous groups.
        group_size: S = G + E ≥ 2.

    Returns:
        (N,) float32 advantages (each group sums to 0).
    """
    if rewards.dim() != 1:
        raise ValueError(f"`rewards` must be 1-D (N,), got shape {tuple(rewards.shape)}")
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 2:
        raise ValueError(f"`group_size` ({group_size!r}) must be an integer ≥ 2")
    if rewards.numel() % group_size:
        raise ValueError(f"number of rewards ({rewards.numel()}) must be a multiple of `group_size` ({group_size})")
    grouped = rewards.float().view(-1, group_size)
    return (grouped - grouped.mean(1, keepdim=True)).view(-1)


def should_skip_update(advantages: torch.Tensor, tol: float = 1e-6) -> bool:
    """True when every |A| < ``tol``: the batch carries no signal, so skip the optimiser step."""
    return bool((advantages.abs() < tol).all())


@dataclass
class GRPOLossOutput:
    """Result of :func:`grpo_loss`.

    Attributes:
        loss: scalar, differentiable w.r.t. ``new_log_prob``.
        clip_fraction: share of active steps whose term used the clipped ratio (logging).
        mean_ratio: mean ρ over active steps (logging; 1 on the first iteration).
    """

    loss: torch.Tensor
    clip_fraction: float
    mean_ratio: float


def grpo_loss(
    new_log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    active: torch.Tensor,
    epsilon: float = 0.5,
) -> GRPOLossOutput:
    """Clipped GRPO objective over per-step likelihoods (paper §1.6, no KL term):

    ``L = −(1/N) Σ_g (1/|𝒯_g|) Σ_{t∈𝒯_g} min(ρ_t^g A^g, clip(ρ_t^g, 1−ε, 1+ε) A^g)``,
    ``ρ = exp(log π_new − log π_old)``. The terminal reward is spread evenly over a rollout's
    active steps. Inactive entries may hold anything (padding, −inf); they are never used.

    Args:
        new_log_prob: (N, T) step log-likelihoods under the current parameters (with grad).
        old_log_prob: (N, T) the same actions' log-likelihoods stored at rollout time.
        advantages: (N,) per-rollout advantage.
        active: (N, T) bool, steps in 𝒯_g.
        epsilon: ε in (0, 1).

    Returns:
        :class:`GRPOLossOutput`.
    """
    if not 0 < epsilon < 1:
        raise ValueError(f"`epsilon` ({epsilon!r}) must be in (0, 1)")
    if new_log_prob.shape != old_log_prob.shape or new_log_prob.shape != active.shape:
        raise ValueError(
            f"`new_log_prob` {tuple(new_log_prob.shape)}, `old_log_prob` {tuple(old_log_prob.shape)} "
            f"and `active` {tuple(active.shape)} must all be (N, T)"
        )
    if advantages.shape != new_log_prob.shape[:1]:
        raise ValueError(f"`advantages` {tuple(advantages.shape)} must be (N,) = ({new_log_prob.shape[0]},)")
    active = active.bool()
    diff = torch.where(
        active,
        new_log_prob.float() - old_log_prob.float().detach(),
        torch.zeros_like(new_log_prob, dtype=torch.float32),
    )
    ratio = torch.exp(diff)  # (N, T), exactly 1 on inactive entries
    adv = advantages.float().detach().unsqueeze(1)  # (N, 1)
    unclipped = ratio * adv
    clipped = ratio.clamp(1 - epsilon, 1 + epsilon) * adv
    per_step = torch.where(active, torch.minimum(unclipped, clipped), torch.zeros_like(unclipped))
    n_active = active.sum(1)  # |𝒯_g|
    per_rollout = per_step.sum(1) / n_active.clamp(min=1)
    loss = -per_rollout.mean()
    with torch.no_grad():
        total = max(int(n_active.sum()), 1)
        used_clip = (clipped < unclipped) & active
        clip_fraction = float(used_clip.sum()) / total
        mean_ratio = float(ratio[active].sum()) / total
    return GRPOLossOutput(loss=loss, clip_fraction=clip_fraction, mean_ratio=mean_ratio)


def expert_mixture_log_prob(log_prob: torch.Tensor, num_generations: int, num_experts: int) -> torch.Tensor:
    """Behaviour likelihood of an expert rollout's step under expert steering (appendix F).

    ``log π_ES(a) = log( G/(G+E) · π_φ(a) + 1/(G+E) · 1 )``: the expert's own action has
    probability 1 under the (deterministic) expert, and the group is a G : E mixture of
    policy and expert. Computed as a logaddexp, so π_φ(a) ≈ 0 stays finite (→ log 1/(G+E)).
    Apply to both the new and the stored log-probs of expert rows; policy rows keep π_φ.

    Args:
        log_prob: any shape, log π_φ(a) of the expert's actions.
        num_generations: G ≥ 1 policy rollouts per group.
        num_experts: E ≥ 1 expert rollouts per group.
    """
    if num_generations < 1 or num_experts < 1:
        raise ValueError(f"`num_generations` ({num_generations}) and `num_experts` ({num_experts}) must be ≥ 1")
    total = num_generations + num_experts
    policy_part = log_prob.float() + math.log(num_generations / total)
    return torch.logaddexp(policy_part, torch.full_like(policy_part, -math.log(total)))


def build_optimizer(
    policy: torch.nn.Module, config: GRPOConfig, total_steps: int | None = None
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW (no decay on biases and LayerNorms) + warmup then cosine to 0, as the released configs.

    ``total_steps`` overrides ``config.total_steps``; one of them must be set.
    """
    total = total_steps if total_steps is not None else config.total_steps
    if total is None or total <= config.warmup_steps:
        raise ValueError(f"total_steps ({total}) must be set and exceed warmup_steps ({config.warmup_steps})")
    optimizer = adamw(policy, config.learning_rate, config.adam_betas, config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine(step, config.warmup_steps, total)
    )
    return optimizer, schedule


def grpo_update(
    policy: torch.nn.Module,
    steps: PolicySteps,
    advantages: torch.Tensor,
    config: GRPOConfig,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    expert: torch.Tensor | None = None,
) -> dict[str, float]:
    """The GRPO update of one rollout batch: ``num_iterations`` clipped-ratio optimiser steps,
    ratios always against the log-probs stored at rollout time (``steps.old_log_prob``).

    ``expert``, (N,) bool, marks expert-steering rows: their old and new log-probs both become
    the G : E mixture likelihood (:func:`expert_mixture_log_prob`). Returns the last step's
    loss, clip fraction and gradient norm (before clipping).
    """
    if steps.old_log_prob is None:
        raise ValueError("steps.old_log_prob is None; fill it with replay_log_probs(...).detach() first")
    old = steps.old_log_prob
    rows = None if expert is None or not config.num_experts else expert.unsqueeze(1).to(old.device)
    if rows is not None:
        old = torch.where(rows, expert_mixture_log_prob(old, config.num_generations, config.num_experts), old)
    stats: dict[str, float] = {}
    for _ in range(config.num_iterations):
        new = replay_log_probs(policy, steps)
        if rows is not None:
            new = torch.where(rows, expert_mixture_log_prob(new, config.num_generations, config.num_experts), new)
        out = grpo_loss(new, old, advantages, steps.active, config.epsilon)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), config.max_grad_norm)
        optimizer.step()
        schedule.step()
        stats = {"loss": out.loss.item(), "clip_fraction": float(out.clip_fraction), "grad_norm": float(grad_norm)}
    return stats
