"""A cache-aware forward pass over transformers' ``ModernBertForMaskedLM`` (the built-in model).

transformers' ModernBERT has no key/value cache. This runs the same modules (embeddings, Wqkv,
rotary, Wo, MLP, norms, head, decoder) layer by layer on a window of the canvas with a
:class:`~dllm_viz.models.cache.PrefixKVCache`, so the built-in model can decode with the prefix
cache too. Only global-attention layers are supported (the built-in model's
``global_attn_every_n_layers`` is 1); a model with local sliding-window layers is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, cast

import torch
import torch.nn.functional as F
from torch import nn

from .layers import apply_rope, key_padding_mask

if TYPE_CHECKING:
    from transformers.models.modernbert.modeling_modernbert import ModernBertEncoderLayer, ModernBertForMaskedLM

    from .cache import PrefixKVCache


def _layers(model: ModernBertForMaskedLM) -> Iterable[ModernBertEncoderLayer]:
    """The encoder layers (an ``nn.ModuleList``, whose items type as plain modules)."""
    return cast("Iterable[ModernBertEncoderLayer]", model.model.layers)


def supports_cache(model: nn.Module) -> bool:
    """True for a ``ModernBertForMaskedLM`` with transformers 4.x's module layout (a rotary
    embedding and ``local_attention`` on each attention module) whose every layer attends globally.

    transformers 5 moved the rotary embedding to the model and renamed the window, so there this
    is False: the built-in model then decodes without the cache instead of failing to load.
    """
    if type(model).__name__ != "ModernBertForMaskedLM":
        return False
    attns = [getattr(layer, "attn", None) for layer in _layers(cast("ModernBertForMaskedLM", model))]
    return all(hasattr(a, "rotary_emb") and getattr(a, "local_attention", None) == (-1, -1) for a in attns)


def window_logits(
    model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, kv_cache: PrefixKVCache
) -> torch.Tensor:
    """(B, W, V) logits for the window ``input_ids`` (canvas positions ``kv_cache.start…``).

    ``attention_mask`` is the (B, T) padding mask of the whole canvas or None. Positions count
    from 0 at the canvas start, as transformers' ModernBERT numbers them (padding included).
    ``model`` is a ``ModernBertForMaskedLM`` for which :func:`supports_cache` holds.
    """
    model = cast("ModernBertForMaskedLM", model)
    body = model.model
    B, W = input_ids.shape
    start = kv_cache.start
    positions = torch.arange(start, start + W, device=input_ids.device).expand(B, W)
    mask = key_padding_mask(attention_mask)
    h = body.embeddings(input_ids=input_ids)
    for i, layer in enumerate(_layers(model)):
        attn = layer.attn
        qkv = attn.Wqkv(layer.attn_norm(h)).view(B, W, 3, attn.num_heads, attn.head_dim)
        q, k, v = qkv.transpose(3, 1).unbind(dim=2)  # (B, H, W, d)
        cos, sin = attn.rotary_emb(qkv, position_ids=positions)
        q, k = apply_rope(q, cos.unsqueeze(1), sin.unsqueeze(1)), apply_rope(k, cos.unsqueeze(1), sin.unsqueeze(1))
        k, v = kv_cache.merge(i, k, v)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(B, W, attn.all_head_size)
        h = h + attn.out_drop(attn.Wo(out))
        h = h + layer.mlp(layer.mlp_norm(h))
    return model.decoder(model.head(body.final_norm(h)))
