"""Heuristic unmasking strategies: the baselines a learned policy is measured against.

Rules and defaults follow each method's paper and reference code (LLaDA ``generate.py``, Fast-dLLM,
Kim et al. 2025, Dream, EB-Sampler); tests/strategies compare them with reference loops.
Every strategy is a pure function of the
:class:`DecodeState`; the engine adds the argmax fallback and restricts commits to eligible
positions, but each rule here already reveals at least one token where its paper says so.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch

from ..rng import uniform
from .base import Decision, DecodeState, rank_desc, top_k_mask
from .schema import param


def linear_schedule(block_length: int, steps_per_block: int) -> torch.Tensor:
    """LLaDA's ``get_num_transfer_tokens``: tokens to reveal at each step of a block.

    Every step gets ``⌊BL / S_b⌋`` and the first ``BL mod S_b`` steps one more, the
    discretisation of the linear noise schedule.

    >>> linear_schedule(8, 3).tolist()
    [3, 3, 2]
    """
    base, extra = divmod(block_length, steps_per_block)
    counts = torch.full((steps_per_block,), base, dtype=torch.long)
    counts[:extra] += 1
    return counts


def dream_schedule(n_masked: torch.Tensor, step: torch.Tensor, steps: int, eps: float = 1e-3) -> torch.Tensor:
    """Dream's ``diffusion_generate`` count: ``int(n · (1 − s/t))`` tokens at step ``i``, where
    ``t, s`` are entries ``i, i + 1`` of ``linspace(1, eps, steps + 1)``; everything left on the last.

    Computed in float32 like the reference, so the truncation lands on the same integers. Unlike
    LLaDA's split it can ask for 0 tokens (the first step of 32 on 32 masks does).

    Args:
        n_masked: (B,) int64 masked positions the schedule applies to (the row's current block).
        step: (B,) int64 step index within the schedule.
        steps: number of steps of the schedule.

    >>> dream_schedule(torch.tensor([32]), torch.tensor([0]), 32).tolist()
    [0]
    """
    grid = torch.linspace(1, eps, steps + 1, device=n_masked.device)  # float32, as Dream builds it
    i = step.clamp(max=steps - 1)
    t, s = grid[i], grid[i + 1]
    k = (n_masked.float() * (1 - s / t)).long()  # int(): truncation; the product is ≥ 0
    return torch.where(step >= steps - 1, n_masked, k)


SCHEDULES = ("llada", "dream")


@dataclass(frozen=True)
class _TopKSchedule:
    """Shared core of the fixed-k strategies: rank eligible positions by a score and reveal
    the next ``k_t`` of a per-block schedule.

    Args:
        steps: total denoising steps over the whole generation (``None`` = L, one token per
            step). Must be a multiple of the number of blocks, with ``1 ≤ steps/blocks ≤ BL``.
        schedule: how many tokens each step reveals.
            ``"llada"`` (default): LLaDA's ``get_num_transfer_tokens``, ⌊BL/S_b⌋ per step and one
            more on the first ``BL mod S_b`` steps (:func:`linear_schedule`); never 0.
            ``"dream"``: Dream's ``int(n_masked · (1 − s/t))`` over ``linspace(1, eps, S_b + 1)``
            (:func:`dream_schedule`), everything left on the block's last step. It can reveal
            0 tokens at a step (then the engine applies no argmax fallback, as Dream does not).
            With BL = L this is Dream's own sampler: ``entropy`` = ``alg="entropy"``, ``margin`` =
            ``"topk_margin"``, ``confidence`` = ``"maskgit_plus"`` (``alg_temp`` 0). Dream counts
            masks per batch (their mean); here each row counts its own, which is the same at batch 1.
        eps: Dream's final time ``eps`` (its default 1e-3); used by ``schedule="dream"`` only.
    """

    steps: int | None = field(
        default=None,
        metadata=param("denoising steps over the whole generation (none: L, one token per step)", low=1),
    )
    schedule: str = field(
        default="llada",
        metadata=param("tokens per step: LLaDA's linear split or Dream's schedule", choices=SCHEDULES, advanced=True),
    )
    eps: float = field(
        default=1e-3, metadata=param("Dream's final time (schedule=dream)", low=0, high=1, advanced=True)
    )
    stochastic = False

    def validate(self, gen_length: int, block_length: int) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule ({self.schedule!r}) must be one of {', '.join(SCHEDULES)}")
        if not isinstance(self.eps, (int, float)) or not 0 < self.eps < 1:
            raise ValueError(f"eps ({self.eps!r}) must be in (0, 1)")
        if self.steps is None:
            return
        n_blocks = gen_length // block_length
        if not isinstance(self.steps, int) or self.steps < n_blocks or self.steps > gen_length:
            raise ValueError(
                f"steps ({self.steps}) must be an integer between the number of blocks "
                f"({n_blocks}) and gen_length ({gen_length})"
            )
        if self.steps % n_blocks:
            raise ValueError(
                f"steps ({self.steps}) must be a multiple of the number of blocks ({n_blocks} = "
                f"gen_length {gen_length} / block_length {block_length})"
            )

    def steps_per_block(self, gen_length: int, block_length: int) -> int:
        steps = gen_length if self.steps is None else self.steps
        return steps // (gen_length // block_length)

    def score(self, state: DecodeState) -> torch.Tensor:
        raise NotImplementedError

    def decide(self, state: DecodeState) -> Decision:
        s_b = self.steps_per_block(state.gen_length, state.block_length)
        if self.schedule == "dream":
            k = dream_schedule(state.eligible.sum(1), state.block_step, s_b, self.eps)
            return Decision(top_k_mask(self.score(state), state.eligible, k), allow_empty=True)
        schedule = linear_schedule(state.block_length, s_b).to(state.block_step.device)
        k = schedule[state.block_step.clamp(max=s_b - 1)]
        # On the last scheduled step of a block, reveal everything left in it.
        k = torch.where(state.block_step >= s_b - 1, torch.full_like(k, state.block_length), k)
        return Decision(top_k_mask(self.score(state), state.eligible, k))

    def params(self) -> dict:
        params = asdict(self)
        if self.schedule != "dream":
            del params["eps"]  # only Dream's schedule reads it
        return params


@dataclass(frozen=True)
class RandomK(_TopKSchedule):
    """Random-K (LLaDA ``remasking='random'``): uniform random scores, top-``k_t`` revealed."""

    name = "random"
    label = "Random-K"
    caption = "commits k random masked positions per step (a floor for comparison)"
    stochastic = True

    def score(self, state: DecodeState) -> torch.Tensor:
        return uniform(state.eligible.shape, state.eligible.device, state.generator)


@dataclass(frozen=True)
class HighConfidenceK(_TopKSchedule):
    """High-Confidence-K (LLaDA ``remasking='low_confidence'``): reveal the ``k_t`` positions
    whose candidate token is most probable, ``p_i(x̂_i)``."""

    name = "confidence"
    label = "High-Confidence-K (LLaDA low_confidence)"
    caption = "commits the k most confident positions per step (k from the steps schedule)"

    def score(self, state: DecodeState) -> torch.Tensor:
        return state.token_prob


@dataclass(frozen=True)
class MarginK(_TopKSchedule):
    """Margin-K (Kim et al. 2025, Dream ``topk_margin``): reveal the ``k_t`` largest
    ``p(top1) − p(top2)``."""

    name = "margin"
    label = "Margin-K"
    caption = "commits the k positions with the largest top-1 − top-2 probability gap"

    def score(self, state: DecodeState) -> torch.Tensor:
        return state.features.margin


@dataclass(frozen=True)
class EntropyK(_TopKSchedule):
    """Entropy-K (Dream ``entropy``): reveal the ``k_t`` lowest-entropy positions."""

    name = "entropy"
    label = "Entropy-K"
    caption = "commits the k positions with the lowest entropy"

    def score(self, state: DecodeState) -> torch.Tensor:
        return -state.features.entropy


def _check_unit_interval(name: str, value: float, *, open_low: bool = True) -> None:
    ok = (0 < value <= 1) if open_low else (0 <= value <= 1)
    if not isinstance(value, (int, float)) or not ok:
        raise ValueError(f"{name} ({value}) must be in (0, 1]")


@dataclass(frozen=True)
class FastDLLMThreshold:
    """Fast-dLLM threshold (Wu et al. 2025, ``get_transfer_index``): reveal every eligible
    position with ``p_i(x̂_i) ≥ λ``, and always the most confident one of each row.

    Args:
        threshold: λ in (0, 1]; 0.9 is Fast-dLLM's default (≈3.25 tokens/step on LLaDA GSM8K).
    """

    threshold: float = field(
        default=0.9, metadata=param("commit every position at least this confident", low=0, high=1, symbol="λ")
    )
    name = "threshold"
    label = "Fast-dLLM threshold λ"
    caption = "commits every masked position whose confidence ≥ λ (at least one per step)"
    stochastic = False

    def validate(self, gen_length: int, block_length: int) -> None:
        _check_unit_interval("threshold", self.threshold)

    def decide(self, state: DecodeState) -> Decision:
        one = torch.ones_like(state.nfe)
        best = top_k_mask(state.token_prob, state.eligible, one)  # per-row fallback
        return Decision(((state.token_prob >= self.threshold) & state.eligible) | best)

    def params(self) -> dict:
        return asdict(self)


FACTOR_VARIANTS = ("paper", "upstream")


@dataclass(frozen=True)
class FastDLLMFactor:
    """Fast-dLLM factor rule (Wu et al. 2025; ``get_transfer_index_dynamic`` in NVlabs/Fast-dLLM).

    Sort the eligible confidences descending ``c_(1) ≥ c_(2) ≥ … ≥ c_(N)``. Rank ``n`` (1-based)
    passes when ``c_(n) ≥ 1 − f/(n + 1)``, i.e. ``(n + 1)(1 − c_(n)) ≤ f``; rank 1 always passes.
    Reveal the passing prefix, ranks ``1 … m − 1`` where ``m`` is the first failing rank.

    The two variants differ only when the first failure is the last rank, ``m = N``:

    * ``"paper"`` (default): the formula as written; ranks ``1 … N − 1`` are revealed.
    * ``"upstream"``: the reference code, which after its scan adds one when the scan stopped at
      the last index (``if top_i == 0 or top_i == len(threshs) - 1: top_i += 1``), so the failing
      last-ranked position is revealed too. With two masks left in a block both are always
      revealed. Decodes equal the reference's token for token.

    Args:
        factor: f > 0 (ParallelBench sweeps 0.7–1.9); larger reveals more per step.
        variant: ``"paper"`` or ``"upstream"``, see above.
    """

    factor: float = field(
        default=1.0, metadata=param("larger commits more per step (ParallelBench: 0.7–1.9)", low=0, symbol="f")
    )
    variant: str = field(
        default="paper",
        metadata=param("the paper's rule or the reference code's", choices=FACTOR_VARIANTS, advanced=True),
    )
    name = "factor"
    label = "Fast-dLLM factor f"
    caption = "commits the most confident positions while (n + 1)(1 − confidence of the n-th) < f"
    stochastic = False

    def validate(self, gen_length: int, block_length: int) -> None:
        if not isinstance(self.factor, (int, float)) or not self.factor > 0:
            raise ValueError(f"factor ({self.factor}) must be > 0")
        if self.variant not in FACTOR_VARIANTS:
            raise ValueError(f"variant ({self.variant!r}) must be one of {', '.join(FACTOR_VARIANTS)}")

    def decide(self, state: DecodeState) -> Decision:
        conf = state.token_prob.masked_fill(~state.eligible, float("-inf"))
        ranks = rank_desc(conf)  # 0-based: n - 1
        passes = (conf >= 1 - self.factor / (ranks + 2).double()) | (ranks == 0)
        n_eligible = state.eligible.sum(1, keepdim=True)
        # First failing 0-based rank among eligible positions (N when every one passes).
        first_fail = torch.where(passes | ~state.eligible, n_eligible, ranks).amin(1, keepdim=True)
        if self.variant == "upstream":
            first_fail = torch.where(first_fail == n_eligible - 1, n_eligible, first_fail)
        return Decision(state.eligible & (ranks < first_fail))

    def params(self) -> dict:
        return asdict(self)


def eb_prefix(uncertainty: torch.Tensor, eligible: torch.Tensor, gamma: float) -> torch.Tensor:
    """EB-Sampler's set rule (Ben-Hamu et al. 2025): bool (B, L), per row the largest prefix ``U`` of
    the eligible positions sorted by ``uncertainty`` ascending with ``Σ_U u − max_U u ≤ γ``.

    Sorted ascending, the prefix's maximum is its last entry, so an entry joins when the sum of the
    entries before it is ≤ γ: the first eligible one always does (at least one token per step).
    ``uncertainty`` must be finite and ≥ 0 (entropy, −log max-prob), so the sums only grow along the order.
    Ties break towards the left position (stable sort).

    >>> eb_prefix(torch.tensor([[0.3, 0.1, 0.2, 0.0]]), torch.tensor([[True, True, True, False]]), 0.15).tolist()
    [[False, True, True, False]]
    """
    u = uncertainty.masked_fill(~eligible, float("inf"))  # (B, L) ineligible sort last
    sorted_u, order = torch.sort(u, dim=1, stable=True)
    sorted_eligible = eligible.gather(1, order)
    sorted_u = sorted_u.masked_fill(~sorted_eligible, 0.0)
    before = torch.cumsum(sorted_u, 1) - sorted_u  # Σ of the entries before each one
    keep_sorted = (before <= gamma) & sorted_eligible
    return torch.zeros_like(keep_sorted).scatter_(1, order, keep_sorted)


@dataclass(frozen=True)
class EBSampler:
    """EB-Sampler (Ben-Hamu et al. 2025): sort eligible positions by entropy ascending and
    reveal the largest prefix ``U`` with ``Σ_U H − max_U H ≤ γ`` (at least one token).

    Subclasses change only :meth:`uncertainty`, the quantity the set rule (:func:`eb_prefix`) bounds.

    Args:
        gamma: γ ≥ 0; 0 is one-at-a-time greedy-by-uncertainty, larger is more parallel
            (the paper sweeps about 1e-3 … 1).
    """

    gamma: float = field(
        default=0.01, metadata=param("uncertainty budget per step; 0 is one at a time", low=0, symbol="γ")
    )
    name = "eb"
    label = "EB-Sampler γ"
    caption = "commits low-entropy positions while their summed entropy stays within γ"
    stochastic = False

    def validate(self, gen_length: int, block_length: int) -> None:
        if not isinstance(self.gamma, (int, float)) or not (self.gamma >= 0 and math.isfinite(self.gamma)):
            raise ValueError(f"gamma ({self.gamma}) must be a finite number ≥ 0")

    def uncertainty(self, state: DecodeState) -> torch.Tensor:
        """(B, L) float32 ≥ 0 per position: the entropy in nats."""
        return state.features.entropy

    def decide(self, state: DecodeState) -> Decision:
        return Decision(eb_prefix(self.uncertainty(state), state.eligible, self.gamma))

    def params(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class EBMaxProb(EBSampler):
    """EB-Sampler's set rule on ``u = −log max-prob`` instead of entropy.

    Max-prob is all the learned policy sees of each position, so this is the baseline that isolates
    what the policy learned from what more information (the entropy) buys (policy-gap-notes.md).
    """

    name = "eb-maxprob"
    label = "EB-Sampler (max-prob)"
    caption = "commits confident positions while their summed −log max-prob stays within γ"

    def uncertainty(self, state: DecodeState) -> torch.Tensor:
        """(B, L) float32 ≥ 0 per position: −log of the top-1 probability (finite: a max-prob is ≥ 1/V)."""
        confidence = state.features.confidence
        return -torch.log(confidence.clamp_min(torch.finfo(confidence.dtype).tiny))
