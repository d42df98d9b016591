"""Building blocks of the DiT confidence policy: time embedding, RoPE, one adaLN RoPE-DiT block.

Shapes use B = batch, L = generation length, H = heads, D = head dim, d = hidden size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

ROPE_BASE = 10000.0  # as in the released policy_layers.py


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float) -> torch.Tensor:
    """DiT-style sinusoidal features of a scalar time, ``[cos(t·f), sin(t·f)]``.

    Frequencies are ``f_i = max_period^(-i/(dim/2))``. With the released ``max_period = 1``
    every ``f_i`` is 1, so the result is cos(t) repeated dim/2 times, then sin(t) repeated
    (see :class:`~dllm_viz.policy.config.PolicyConfig`, ``time_period``).

    Args:
        t: (B,) float time in [0, 1), the fraction of L spent as NFE so far.
        dim: even output width.
        max_period: > 0.

    Returns:
        (B, dim) float32.
    """
    half = dim // 2
    exponent = -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half
    args = t.float()[:, None] * torch.exp(exponent)[None]  # (B, dim/2)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def rope_tables(length: int, head_dim: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin) tables of shape (L, D) for rotate-half RoPE over positions 0..L-1."""
    inv_freq = ROPE_BASE ** (-torch.arange(0, head_dim, 2, dtype=torch.float32, device=device) / head_dim)
    angles = torch.arange(length, dtype=torch.float32, device=device)[:, None] * inv_freq[None]
    angles = torch.cat([angles, angles], dim=-1)  # (L, D)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (B, H, L, D) queries or keys so that q·k depends on positions only via i − j."""
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


class DiTBlock(nn.Module):
    """Pre-LN transformer block modulated by adaLN, bidirectional, with RoPE.

    One ``Linear(d → 6d)`` on the per-position condition yields (γ1, β1, α1, γ2, β2, α2).
    Each branch input is ``LN(x)·(1+γ) + β`` and each branch output is scaled by ``(1+α)``
    (not DiT's plain α gate), so with the projection zeroed (smart init) the block is an
    ordinary pre-LN block and the condition has no effect until training moves it. Following
    the code digest, the condition enters the projection directly (no SiLU before it).
    """

    def __init__(self, hidden_size: int, num_heads: int, ffn_size: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.norm1 = nn.LayerNorm(hidden_size)
        self.q_proj = nn.Linear(hidden_size, hidden_size)
        self.k_proj = nn.Linear(hidden_size, hidden_size)
        self.v_proj = nn.Linear(hidden_size, hidden_size)
        self.o_proj = nn.Linear(hidden_size, hidden_size)
        self.norm2 = nn.LayerNorm(hidden_size)
        self.ffn = nn.Sequential(nn.Linear(hidden_size, ffn_size), nn.GELU(), nn.Linear(ffn_size, hidden_size))
        self.ada_ln = nn.Linear(hidden_size, 6 * hidden_size)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """x, cond: (B, L, d); cos, sin: (L, D). Returns (B, L, d)."""
        g1, b1, a1, g2, b2, a2 = self.ada_ln(cond).chunk(6, dim=-1)
        h = self.norm1(x) * (1 + g1) + b1
        x = x + (1 + a1) * self._attend(h, cos, sin)
        h = self.norm2(x) * (1 + g2) + b2
        return x + (1 + a2) * self.ffn(h)

    def _attend(self, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        batch, length, width = h.shape

        def heads(t: torch.Tensor) -> torch.Tensor:  # (B, L, d) -> (B, H, L, D)
            return t.view(batch, length, self.num_heads, -1).transpose(1, 2)

        q = apply_rope(heads(self.q_proj(h)), cos, sin)
        k = apply_rope(heads(self.k_proj(h)), cos, sin)
        # No attention mask: every position sees the whole buffer (bidirectional).
        out = F.scaled_dot_product_attention(q, k, heads(self.v_proj(h)))
        return self.o_proj(out.transpose(1, 2).reshape(batch, length, width))
