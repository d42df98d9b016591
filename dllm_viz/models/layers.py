"""Pieces the native LLaDA and Dream share: rotary embeddings, padding masks, attention.

Both are bidirectional transformers with RoPE. They differ in where RoPE runs (LLaDA in float32,
Dream in the model dtype), in norm and MLP details, and in parameter names, which live in each
model's own module so that the official checkpoints load as published.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def rope_inverse_frequencies(head_dim: int, theta: float, device: torch.device) -> torch.Tensor:
    """(head_dim / 2,) float32 ``1 / θ^(2i / d)``, the standard ("default") RoPE frequencies."""
    exponents = torch.arange(0, head_dim, 2, dtype=torch.int64, device=device).float() / head_dim
    return 1.0 / (theta**exponents)


def rope_cos_sin(positions: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Float32 (B, 1, T, head_dim) cosines and sines for integer positions (B, T).

    The angle table is built in float32 whatever the model dtype, as both references do.
    """
    inv_freq = rope_inverse_frequencies(head_dim, theta, positions.device)
    angles = positions.float()[..., None] * inv_freq  # (B, T, d/2)
    angles = torch.cat([angles, angles], dim=-1).unsqueeze(1)
    return angles.cos(), angles.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat([-second, first], dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """``x · cos + rotate_half(x) · sin`` in the dtype of ``cos``/``sin`` (the caller casts)."""
    return x * cos + rotate_half(x) * sin


def positions_from_mask(
    attention_mask: torch.Tensor | None, batch: int, length: int, device: torch.device
) -> torch.Tensor:
    """(B, T) int64 positions: 0, 1, … from each row's first real token (padding gets 0).

    RoPE is relative, so counting from the first real token rather than from the padding only
    changes rounding; it keeps a left-padded row's arithmetic the same as the unpadded row's.
    """
    if attention_mask is None:
        return torch.arange(length, device=device).expand(batch, length)
    return (attention_mask.long().cumsum(-1) - 1).clamp_min(0)


def key_padding_mask(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """(B, 1, 1, T) bool "may attend" mask over keys from an integer or bool (B, T) padding mask,
    or None when nothing is padded (the unmasked SDPA path)."""
    if attention_mask is None:
        return None
    keep = attention_mask.bool()
    if bool(keep.all()):
        return None
    return keep[:, None, None, :]


def rope_and_mask(
    input_ids: torch.Tensor, attention_mask: torch.Tensor | None, start: int, head_dim: int, theta: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """What every layer of a forward pass shares: RoPE (cos, sin) for the window ``input_ids`` that
    begins at canvas position ``start`` (0 without a KV cache), and the key padding mask over the
    whole canvas (``attention_mask`` is the canvas's)."""
    B, T = input_ids.shape
    positions = positions_from_mask(attention_mask, B, start + T, input_ids.device)[:, start:]
    cos, sin = rope_cos_sin(positions, head_dim, theta)
    return cos, sin, key_padding_mask(attention_mask)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Bidirectional SDPA: q (B, H, Tq, d), k/v (B, H_kv, Tk, d) → (B, Tq, H·d).

    Grouped-query heads are repeated to H (head h reads kv head h // (H / H_kv)), as both
    references do; no causal mask, ever.
    """
    heads, kv_heads = q.shape[1], k.shape[1]
    if kv_heads != heads:
        k = k.repeat_interleave(heads // kv_heads, dim=1)
        v = v.repeat_interleave(heads // kv_heads, dim=1)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=False)
    return out.transpose(1, 2).flatten(2)
