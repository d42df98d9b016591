"""Terminal rewards that trade correctness against compute (paper Eq. 3.1, ``train/reward_func.py``).

Plain functions: per-rollout correctness r ∈ [0, 1] and NFE in, one float per rollout out.
Symbols: L = generation length (also the NFE budget T), α ≥ 0 = price of speed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence


def _check(correct: Sequence[float], nfe: Sequence[int], gen_length: int, alpha: float) -> None:
    if len(correct) != len(nfe):
        raise ValueError(f"`correct` ({len(correct)} items) and `nfe` ({len(nfe)} items) must have equal length")
    if isinstance(gen_length, bool) or not isinstance(gen_length, int) or gen_length < 1:
        raise ValueError(f"`gen_length` ({gen_length!r}) must be a positive integer")
    if not isinstance(alpha, (int, float)) or not (alpha >= 0 and math.isfinite(alpha)):
        raise ValueError(f"`alpha` ({alpha!r}) must be a finite number ≥ 0")
    for i, (r, n) in enumerate(zip(correct, nfe, strict=True)):
        if not 0.0 <= float(r) <= 1.0:
            raise ValueError(f"`correct[{i}]` ({r!r}) must be in [0, 1]")
        if int(n) != n or n < 0:
            raise ValueError(f"`nfe[{i}]` ({n!r}) must be a non-negative integer")


def multiplicative_reward(
    correct: Sequence[float], nfe: Sequence[int], *, gen_length: int, alpha: float, **kwargs: object
) -> list[float]:
    """``R = r · ((L − min(NFE, L) + 1) / L)^α``, the paper's main reward.

    A wrong answer earns 0 however fast it was, so speed only pays once answers are right;
    this is what prevents the reward hacking of :func:`additive_reward`. The ``+1`` keeps a
    correct answer that used all L steps at ``(1/L)^α > 0``; α = 0 is plain correctness.

    >>> multiplicative_reward([1, 1, 0], [64, 256, 8], gen_length=256, alpha=1.0)
    [0.75390625, 0.00390625, 0.0]
    >>> multiplicative_reward([1, 0], [300, 1], gen_length=256, alpha=0.0)
    [1.0, 0.0]
    """
    _check(correct, nfe, gen_length, alpha)
    return [
        float(r) * ((gen_length - min(int(n), gen_length) + 1) / gen_length) ** alpha
        for r, n in zip(correct, nfe, strict=True)
    ]


def additive_reward(
    correct: Sequence[float], nfe: Sequence[int], *, gen_length: int, alpha: float, **kwargs: object
) -> list[float]:
    """``R = r − α · NFE / L``, the ablation that reward-hacks at α = 1 (paper Fig. 9a/b).

    Early in training nearly every answer is wrong, and among wrong answers the fastest
    scores highest, so the group advantage pushes the policy to unmask everything at once.

    >>> additive_reward([1, 0, 0], [64, 128, 8], gen_length=256, alpha=1.0)
    [0.75, -0.5, -0.03125]
    """
    _check(correct, nfe, gen_length, alpha)
    return [float(r) - alpha * int(n) / gen_length for r, n in zip(correct, nfe, strict=True)]


RewardFunction = Callable[..., list]

REWARD_FUNCTIONS: dict[str, RewardFunction] = {
    "multiplicative": multiplicative_reward,
    "additive": additive_reward,
}


def get_reward_function(name: str) -> RewardFunction:
    """A reward function by name; unknown names raise and list the known ones."""
    try:
        return REWARD_FUNCTIONS[name]
    except KeyError:
        raise ValueError(f"unknown reward {name!r}; known: {', '.join(REWARD_FUNCTIONS)}") from None
