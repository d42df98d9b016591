"""The policy's action distributions over eligible positions, and their log-likelihoods.

Pure tensor functions, shared by the learned strategy (sampling at decode time) and GRPO
(re-scoring stored actions under new parameters). Symbols follow paper §1.3–1.4:
b = policy logits, τ_π = policy temperature, s = σ(b/τ_π), β = test-time probability
scaling (paper v4), u = the step's binary action.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..rng import RowDraws, uniform

PROB_EPS = 1e-6  # clamp for log s and log(1 - s) in float32


def unmask_probs(logits: torch.Tensor, temperature: float = 1.0, beta: float = 1.0) -> torch.Tensor:
    """Per-position Bernoulli parameter ``min(1, β · σ(b / τ_π))`` in float32.

    Args:
        logits: (B, L) policy logits b.
        temperature: τ_π > 0; < 1 sharpens towards 0/1 (paper: 0.5 for semi-AR eval).
        beta: β > 0; > 1 unmasks more per step (fewer NFE), < 1 fewer (v4 Fig. 6).

    Returns:
        (B, L) float32 probabilities s.
    """
    probs = torch.sigmoid(logits.float() / temperature)
    return probs if beta == 1.0 else (beta * probs).clamp(max=1.0)


def sample_bernoulli(
    probs: torch.Tensor, eligible: torch.Tensor, generator: torch.Generator | RowDraws | None = None
) -> torch.Tensor:
    """Independent ``u_k ~ Bernoulli(s_k)`` on eligible positions; (B, L) bool, False elsewhere."""
    return (uniform(probs.shape, probs.device, generator) < probs) & eligible


def argmax_fallback(action: torch.Tensor, probs: torch.Tensor, eligible: torch.Tensor) -> torch.Tensor:
    """Test-time fallback: a row that unmasks nothing but has eligible positions unmasks the
    eligible position with the largest ``s`` (leftmost on ties). Training never uses it."""
    empty = ~action.any(1) & eligible.any(1)  # (B,)
    best = probs.masked_fill(~eligible, float("-inf")).argmax(1)  # (B,) first max wins
    forced = F.one_hot(best, probs.shape[1]).bool() & empty.unsqueeze(1)
    return action | forced


def bernoulli_log_prob(
    probs: torch.Tensor, action: torch.Tensor, eligible: torch.Tensor, eps: float = PROB_EPS
) -> torch.Tensor:
    """Joint log-likelihood of one step's action, ``Σ_{k eligible} u log s + (1−u) log(1−s)``.

    Positions that are not eligible contribute nothing (the paper excludes them). ``s`` is
    clamped to ``[eps, 1 − eps]`` in float32, so a deterministic ``s = 1`` (β scaling) or a
    saturated sigmoid gives a large finite value instead of −inf.

    Args:
        probs: (B, L) Bernoulli parameters s (e.g. from :func:`unmask_probs`).
        action: (B, L) bool/0-1, the unmask decision u.
        eligible: (B, L) bool.

    Returns:
        (B,) float32; 0 for rows with no eligible position.
    """
    s = probs.float().clamp(eps, 1.0 - eps)
    u = action.float()
    per_pos = u * torch.log(s) + (1.0 - u) * torch.log1p(-s)
    return torch.where(eligible, per_pos, torch.zeros_like(per_pos)).sum(1)


def _gumbel(shape: torch.Size, device: torch.device, generator: torch.Generator | RowDraws | None) -> torch.Tensor:
    u = uniform(shape, device, generator).clamp(1e-20, 1.0 - 1e-7)
    return -torch.log(-torch.log(u))


def sample_dpls(
    logits: torch.Tensor,
    eligible: torch.Tensor,
    stop_logit: float = 0.0,
    temperature: float = 1.0,
    generator: torch.Generator | RowDraws | None = None,
) -> torch.Tensor:
    """Dynamic Plackett–Luce sampling (paper App. E): an ordered set of positions to unmask.

    Stage 1 forces one pick from ``softmax(b/τ)`` over the eligible positions. Stage 2 ranks
    the remaining eligible positions together with a STOP item of utility ``stop_logit``
    (Plackett–Luce without replacement, via Gumbel-perturbed sorting with fresh noise) and
    keeps the positions ranked before STOP.

    Returns:
        (B, L) int64 pick order: 0 for the forced pick, 1, 2, ... for stage-2 picks, −1 for
        positions not unmasked. Rows without eligible positions are all −1.
    """
    batch, length = logits.shape
    z = (logits.float() / temperature).masked_fill(~eligible, float("-inf"))  # (B, L)
    has_any = eligible.any(1)
    first = (z + _gumbel(z.shape, z.device, generator)).argmax(1)  # (B,)
    first_hot = F.one_hot(first, length).bool() & has_any.unsqueeze(1)
    stop = torch.full((batch, 1), stop_logit / temperature, device=z.device)
    keys = torch.cat([z.masked_fill(first_hot, float("-inf")), stop], 1)  # (B, L+1)
    keys = keys + _gumbel(keys.shape, z.device, generator)
    rank = torch.argsort(torch.argsort(keys, dim=1, descending=True, stable=True), dim=1)  # (B, L+1)
    stop_rank = rank[:, length:]  # (B, 1)
    remaining = eligible & ~first_hot
    picked = remaining & (rank[:, :length] < stop_rank)
    order = torch.where(picked, rank[:, :length] + 1, torch.full_like(rank[:, :length], -1))
    return torch.where(first_hot, torch.zeros_like(order), order)


def dpls_log_prob(
    logits: torch.Tensor,
    order: torch.Tensor,
    eligible: torch.Tensor,
    stop_logit: float = 0.0,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Log-likelihood of a DPLS pick order (see :func:`sample_dpls`).

    ``log softmax_elig(z)[first] + Σ_j [z_{p_j} − LSE(z over not-yet-picked ∪ STOP)]
    + [z_STOP − LSE(z over never-picked ∪ STOP)]`` with z = b/τ. The order matters: this is
    the likelihood of the ordered picks, which is what the sampler draws.

    Args:
        logits: (B, L) policy logits.
        order: (B, L) int64 from :func:`sample_dpls` (0 = forced pick, −1 = not picked).
        eligible: (B, L) bool.

    Returns:
        (B,) float32; 0 for rows with no eligible position.
    """
    batch, length = logits.shape
    has_any = eligible.any(1)
    # Rows without eligible positions return 0; treating all their positions as eligible
    # keeps every intermediate finite, so no NaN leaks into gradients through torch.where.
    eligible = eligible | ~has_any.unsqueeze(1)
    z = (logits.float() / temperature).masked_fill(~eligible, float("-inf"))
    is_first = (order == 0) & eligible
    first_term = torch.where(is_first, z - torch.logsumexp(z, 1, keepdim=True), torch.zeros_like(z)).sum(1)
    # Stage 2: sort positions by pick time (stage-2 picks first, in order, then never-picked
    # eligible ones); excluded positions get utility −inf so they drop out of every LSE.
    in_stage2 = eligible & ~is_first
    pick_time = torch.where(in_stage2 & (order > 0), order, torch.full_like(order, length + 1))
    sort_idx = torch.argsort(pick_time, dim=1, stable=True)
    zs = torch.gather(z.masked_fill(~in_stage2, float("-inf")), 1, sort_idx)  # (B, L)
    zs = torch.cat([zs, torch.full((batch, 1), float("-inf"), device=z.device)], 1)  # (B, L+1)
    suffix = torch.flip(torch.logcumsumexp(torch.flip(zs, [1]), 1), [1])  # LSE of zs[i:]
    stop = stop_logit / temperature
    denom = torch.logaddexp(suffix, torch.full_like(suffix, stop))  # (B, L+1)
    n_picks = (in_stage2 & (order > 0)).sum(1)  # (B,)
    idx = torch.arange(length + 1, device=z.device)
    pick_terms = torch.where(idx < n_picks.unsqueeze(1), zs - denom, torch.zeros_like(zs)).sum(1)
    stop_term = stop - denom.gather(1, n_picks.unsqueeze(1)).squeeze(1)
    return torch.where(has_any, first_term + pick_terms + stop_term, torch.zeros_like(first_term))


def sample_plus_one(
    probs: torch.Tensor,
    scores: torch.Tensor,
    eligible: torch.Tensor,
    generator: torch.Generator | RowDraws | None = None,
) -> torch.Tensor:
    """Independent Bernoulli draws, then exactly one more position: drawn from
    ``softmax(scores)`` over the eligible positions the draws left out (none if they took all).

    The action EB-Sampler takes by rule (every near-certain token plus one uncertain one), which
    independent draws can only express by saturating: with ``s ≈ 1`` on the certain positions
    and ``s ≈ 0`` elsewhere, the step commits the certain ones plus the best-scored uncertain one.
    A step is never empty, so no fallback is needed.

    Args:
        probs: (B, L) Bernoulli parameters s. scores: (B, L) pick logits (``b / τ_π``).
        eligible: (B, L) bool.

    Returns:
        (B, L) bool action.
    """
    action = sample_bernoulli(probs, eligible, generator)
    rest = eligible & ~action
    keys = scores.float().masked_fill(~rest, float("-inf")) + _gumbel(scores.shape, scores.device, generator)
    pick = F.one_hot(keys.argmax(1), scores.shape[1]).bool() & rest.any(1, keepdim=True)
    return action | pick


def plus_one_log_prob(
    probs: torch.Tensor, scores: torch.Tensor, action: torch.Tensor, eligible: torch.Tensor, eps: float = PROB_EPS
) -> torch.Tensor:
    """Exact log-probability of the *set* :func:`sample_plus_one` commits, whichever member was the pick.

    For a set S of the eligible positions E (O = E \\ S), summing over the member j that was picked:
    ``P(S) = P_S · [Σ_{j∈S} (1−s_j)/s_j · e^{z_j} / (e^{z_j} + Σ_{l∈O} e^{z_l}) + 1{O = ∅}]`` with
    ``P_S = Π_{i∈S} s_i Π_{i∈O} (1−s_i)`` (the last term: the draws took everything). Computed in
    log space; ``s`` is clamped to ``[eps, 1 − eps]`` as in :func:`bernoulli_log_prob`.

    Returns:
        (B,) float32; 0 for rows with no eligible position, −inf for a set the form cannot
        produce (an empty action where positions were eligible).
    """
    s = probs.float().clamp(eps, 1.0 - eps)
    z = scores.float()
    taken = action.bool() & eligible
    left = eligible & ~taken
    base = bernoulli_log_prob(probs, taken, eligible, eps)
    log_left = z.masked_fill(~left, float("-inf")).logsumexp(1, keepdim=True)  # (B, 1), −inf if none left
    per_pick = torch.log1p(-s) - torch.log(s) + z - torch.logaddexp(z, log_left)
    per_pick = per_pick.masked_fill(~taken, float("-inf"))
    all_taken = torch.where(~left.any(1, keepdim=True), 0.0, float("-inf"))
    total = base + torch.cat([per_pick, all_taken], 1).logsumexp(1)
    return torch.where(eligible.any(1), total, torch.zeros_like(total))
