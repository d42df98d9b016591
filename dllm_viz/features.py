"""Per-position confidence features, computed where the logits live.

Strategies only ever see these O(L·k) numbers, never the vocabulary-sized logits; the logits
tensor stays on the device that produced it (copying 256×126k logits to the host costs
~5 forward passes of an 8B model).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .rng import RowDraws, uniform

TOP_K = 5  # alternatives kept per position for the trace and the UI tooltip


@dataclass
class Features:
    """Confidence features for the generation positions of one step.

    Attributes:
        confidence: (B, L) float32, max-prob ``max_v p_i(v)`` (the paper's policy input).
        margin: (B, L) float32, ``p_i(top1) - p_i(top2)`` (Kim et al. 2025).
        entropy: (B, L) float32, ``-Σ_v p_i(v) log p_i(v)`` in nats.
        topk_ids: (B, L, k) int64, the k most probable tokens, descending.
        topk_probs: (B, L, k) float32, their probabilities.
    """

    confidence: torch.Tensor
    margin: torch.Tensor
    entropy: torch.Tensor
    topk_ids: torch.Tensor
    topk_probs: torch.Tensor


def compute_features(logits: torch.Tensor, k: int = TOP_K) -> Features:
    """Max-prob, margin, entropy and top-k from raw logits (B, L, V), in float32.

    One log-softmax pass: probabilities of the top-k come from ``exp(logit - logsumexp)``
    so the full softmax is never materialised twice.
    """
    logits = logits.float()
    logp = torch.log_softmax(logits, dim=-1)  # (B, L, V)
    top_logp, topk_ids = logp.topk(max(k, 2), dim=-1)  # (B, L, k)
    top_p = top_logp.exp()
    # entr(0) = 0: a token the caller ruled out with a -inf logit (e.g. [MASK]) must add 0, not NaN.
    entropy = torch.special.entr(logp.exp()).sum(-1)
    return Features(
        confidence=top_p[..., 0],
        margin=top_p[..., 0] - top_p[..., 1],
        entropy=entropy,
        topk_ids=topk_ids[..., :k],
        topk_probs=top_p[..., :k],
    )


def restrict_top_k(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Logits (B, L, V) with everything below each position's k-th largest set to -inf.

    Dream's ``top_k_logits`` does this (with the dtype's minimum instead of -inf, which gives the
    same probabilities); ties with the k-th value are kept, as there.
    """
    if k >= logits.shape[-1]:
        return logits
    kth = logits.topk(k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def propose_tokens(
    logits: torch.Tensor,
    features: Features,
    temperature: float,
    generator: torch.Generator | RowDraws | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidate token per position and its (untempered) probability.

    Greedy (``temperature == 0``) takes the argmax. Otherwise Gumbel-max in float64 samples
    from ``softmax(logits / T)``, as LLaDA's ``generate.py`` does (low-precision Gumbel noise
    hurts quality, arXiv 2409.02908).

    Returns:
        tokens: (B, L) int64 candidate ids.
        token_prob: (B, L) float32, ``p_i(x̂_i)`` under the untempered distribution.
    """
    if temperature == 0:
        return features.topk_ids[..., 0], features.confidence
    u = uniform(logits.shape, logits.device, generator, torch.float64)
    gumbel = -torch.log(-torch.log(u.clamp_min(1e-300)))
    tokens = (logits.double() / temperature + gumbel).argmax(-1)
    logp = torch.log_softmax(logits.float(), dim=-1)
    token_prob = logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1).exp()
    return tokens, token_prob
