"""The one interface shared by heuristic and learned unmasking strategies.

A strategy is a scheduler in the diffusers sense: it looks at the features of the current
step and says which positions to commit. It never calls the model and keeps no state
between steps (all per-row progress lives in :class:`DecodeState`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from ..features import Features
from ..rng import RowDraws


@dataclass
class DecodeState:
    """What a strategy sees at one denoising step (all tensors on the logits' device).

    Only active rows (rows that still have masked positions) are present, so B here may be
    smaller than the batch the engine was given.

    Attributes:
        features: per-position confidence features, (B, L) / (B, L, k).
        tokens: (B, L) int64 candidate token per position (argmax or sampled).
        token_prob: (B, L) float32, probability of the candidate token (= max-prob when greedy).
        masked: (B, L) bool, positions still masked before this step.
        eligible: (B, L) bool, masked positions of each row's current block.
        block_step: (B,) int64, steps this row has already spent in its current block.
        nfe: (B,) int64, forward passes this row has used before this step.
        gen_length: L.
        block_length: BL (= L for full diffusion).
        generator: RNG for stochastic strategies: the engine passes its rows' own streams
            (:class:`~dllm_viz.rng.RowDraws`; draw with :func:`~dllm_viz.rng.uniform`).
    """

    features: Features
    tokens: torch.Tensor
    token_prob: torch.Tensor
    masked: torch.Tensor
    eligible: torch.Tensor
    block_step: torch.Tensor
    nfe: torch.Tensor
    gen_length: int
    block_length: int
    generator: torch.Generator | RowDraws | None = None

    @property
    def time(self) -> torch.Tensor:
        """(B,) float32, NFE used so far / L: the paper's policy time input (rises from 0)."""
        return self.nfe.float() / self.gen_length


@dataclass
class Decision:
    """A strategy's answer for one step.

    Attributes:
        unmask: (B, L) bool, positions to commit (the engine intersects it with ``eligible``).
        probs: (B, L) float32 per-position unmask probability, learned strategies only.
        log_prob: (B,) float32 log-likelihood of ``unmask`` under the policy, learned only.
        allow_empty: True when an empty row in ``unmask`` is deliberate (a schedule that asks for
            0 tokens at this step, as Dream's does); the engine then applies no argmax fallback.
        tokens: (B, L) int64 token to commit instead of the proposal where ≥ 0 (−1 keeps the
            proposal), or None. Set by a user's forced commit (:mod:`.override`), never by a heuristic.
        hold: (B, L) bool positions that may not be committed this step, not even by the engine's
            fallback or a block's forced end, or None. A user's "hold back" (:mod:`.override`).
    """

    unmask: torch.Tensor
    probs: torch.Tensor | None = None
    log_prob: torch.Tensor | None = None
    allow_empty: bool = False
    tokens: torch.Tensor | None = None
    hold: torch.Tensor | None = None


@runtime_checkable
class Strategy(Protocol):
    """``decide(state) -> Decision``; ``validate`` checks parameters against L and BL."""

    @property
    def name(self) -> str: ...  # read-only: a class attribute or a property (a wrapper's) both satisfy it

    def decide(self, state: DecodeState) -> Decision: ...

    def validate(self, gen_length: int, block_length: int) -> None: ...

    def params(self) -> dict: ...


def top_k_mask(scores: torch.Tensor, eligible: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Bool (B, L): the ``k[b]`` highest-scoring eligible positions of each row.

    Ties break towards the left position (stable sort), so results are deterministic.
    """
    scores = scores.masked_fill(~eligible, float("-inf"))
    return (rank_desc(scores) < k.unsqueeze(1)) & eligible


def rank_desc(scores: torch.Tensor) -> torch.Tensor:
    """(B, L) int64 rank of each entry when its row is sorted descending (0 = best, stable)."""
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(scores.shape[1], device=scores.device).expand_as(order))
    return ranks
