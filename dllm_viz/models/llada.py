"""LLaDA (GSAI-ML/LLaDA-8B-Base, -8B-Instruct, LLaDA-1.5), written natively.

Loads the official safetensors with their published parameter names
(``model.transformer.blocks.{i}.q_proj.weight``, …) from a folder whose ``config.json`` says
``"model_type": "llada"``, without running the checkpoint's own modelling code. The forward pass
is the reference's for the configuration those checkpoints use (``block_type`` "llama", RoPE,
RMS norm, SiLU-gated MLP, no biases, untied output), with two differences:

* a padding mask is honoured (the reference builds an attention bias from it but then calls
  attention with ``attn_mask=None``, so padded rows of a batch attend to their padding);
* an optional :class:`~dllm_viz.models.cache.PrefixKVCache` lets a forward pass run on a
  window of the canvas and reuse the stored keys/values of the positions before it.

Configurations this module does not implement (ALiBi, the "sequential" block, QK-norm, block
groups) are refused by name when the model is built.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import MaskedLMOutput

from .layers import apply_rope, attend, rope_and_mask

if TYPE_CHECKING:
    from .cache import PrefixKVCache


class LLaDAConfig(PretrainedConfig):
    """The fields of LLaDA's ``config.json`` that the forward pass reads (others are kept as-is).

    Defaults are the reference ``ModelConfig``'s, so a field missing from a file means what it
    means upstream. The 8B checkpoints set: d_model 4096, n_heads = n_kv_heads = 32, n_layers 32,
    mlp_hidden_size 12288, activation "silu", block_type "llama", layer_norm_type "rms",
    rms_norm_eps 1e-5, rope_theta 500000, vocab/embedding 126464, weight_tying false,
    mask_token_id 126336, eos/pad 126081, max_sequence_length 4096.
    """

    model_type = "llada"

    def __init__(
        self,
        d_model: int = 768,
        n_heads: int = 12,
        n_kv_heads: int | None = None,
        multi_query_attention: bool | None = None,
        n_layers: int = 12,
        mlp_ratio: int = 4,
        mlp_hidden_size: int | None = None,
        activation_type: str = "swiglu",
        block_type: str = "sequential",
        block_group_size: int = 1,
        alibi: bool = False,
        rope: bool = False,
        rope_theta: float = 10000.0,
        rope_full_precision: bool = True,
        attention_layer_norm: bool = False,
        input_emb_norm: bool = False,
        layer_norm_type: str = "default",
        layer_norm_with_affine: bool = True,
        bias_for_layer_norm: bool | None = None,
        rms_norm_eps: float = 1e-5,
        include_bias: bool = False,
        include_qkv_bias: bool = False,
        scale_logits: bool = False,
        vocab_size: int = 50257,
        embedding_size: int | None = 50304,
        weight_tying: bool = True,
        max_sequence_length: int = 1024,
        mask_token_id: int = 50256,
        eos_token_id: int = 50256,
        pad_token_id: int = 50256,
        init_std: float = 0.02,
        **kwargs: Any,
    ) -> None:
        self.d_model, self.n_heads, self.n_kv_heads, self.n_layers = d_model, n_heads, n_kv_heads, n_layers
        self.multi_query_attention = multi_query_attention
        self.mlp_ratio, self.mlp_hidden_size, self.activation_type = mlp_ratio, mlp_hidden_size, activation_type
        self.block_type, self.block_group_size, self.alibi, self.rope = block_type, block_group_size, alibi, rope
        self.rope_theta, self.rope_full_precision = rope_theta, rope_full_precision
        self.attention_layer_norm, self.input_emb_norm = attention_layer_norm, input_emb_norm
        self.layer_norm_type, self.layer_norm_with_affine = layer_norm_type, layer_norm_with_affine
        self.bias_for_layer_norm, self.rms_norm_eps = bias_for_layer_norm, rms_norm_eps
        self.include_bias, self.include_qkv_bias, self.scale_logits = include_bias, include_qkv_bias, scale_logits
        self.vocab_size, self.embedding_size, self.weight_tying = vocab_size, embedding_size, weight_tying
        self.max_sequence_length, self.init_std = max_sequence_length, init_std
        self.mask_token_id = mask_token_id
        kwargs.setdefault("tie_word_embeddings", False)  # LLaDA ties through weight_tying, not the HF flag
        super().__init__(eos_token_id=eos_token_id, pad_token_id=pad_token_id, **kwargs)

    @property
    def kv_heads(self) -> int:
        if self.n_kv_heads is not None:
            return self.n_kv_heads
        return 1 if self.multi_query_attention else self.n_heads

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def hidden_size(self) -> int:
        return self.d_model

    @property
    def num_hidden_layers(self) -> int:
        return self.n_layers

    @property
    def max_position_embeddings(self) -> int:
        return self.max_sequence_length

    def check_supported(self) -> None:
        """Refuse configurations whose reference forward pass this module does not implement."""
        wanted = dict(block_type="llama", rope=True, alibi=False, attention_layer_norm=False, block_group_size=1)
        for name, value in wanted.items():
            if getattr(self, name) != value:
                raise ValueError(
                    f"native LLaDA supports {name}={value!r} only (this config has {getattr(self, name)!r}); "
                    "load it with its own code instead (trust_remote_code)"
                )
        if self.layer_norm_type not in ("rms", "default"):
            raise ValueError(f"native LLaDA supports layer_norm_type 'rms' or 'default', not {self.layer_norm_type!r}")
        if self.activation_type not in _ACTIVATIONS:
            raise ValueError(
                f"native LLaDA supports activation_type {sorted(_ACTIVATIONS)}, not {self.activation_type!r}"
            )
        if self.d_model % self.n_heads or self.n_heads % self.kv_heads:
            raise ValueError(
                f"d_model ({self.d_model}) must divide into n_heads ({self.n_heads}) heads, "
                f"and n_heads into n_kv_heads ({self.kv_heads}) groups"
            )


_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"silu": F.silu, "gelu": F.gelu, "relu": F.relu}


class LLaDANorm(nn.Module):
    """The reference's RMS norm (float32 statistics, scale applied in the input dtype) or LayerNorm."""

    def __init__(self, config: LLaDAConfig):
        super().__init__()
        self.rms = config.layer_norm_type == "rms"
        self.eps = config.rms_norm_eps if self.rms else 1e-5
        self.size = config.d_model
        use_bias = config.include_bias if config.bias_for_layer_norm is None else config.bias_for_layer_norm
        self.weight = nn.Parameter(torch.ones(self.size)) if config.layer_norm_with_affine else None
        self.bias = nn.Parameter(torch.zeros(self.size)) if config.layer_norm_with_affine and use_bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.rms:
            return F.layer_norm(x, (self.size,), self.weight, self.bias, self.eps)
        h = x.float()
        h = (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype)
        if self.weight is not None:
            h = self.weight * h
        return h + self.bias if self.bias is not None else h


class LLaDALayer(nn.Module):
    """One "llama" block: pre-norm attention and SiLU-gated MLP, each with a residual."""

    def __init__(self, config: LLaDAConfig, index: int):
        super().__init__()
        self.config, self.index = config, index
        d, kv = config.d_model, config.kv_heads * config.head_dim
        hidden = config.mlp_hidden_size or config.mlp_ratio * d
        qkv_bias = config.include_bias or config.include_qkv_bias
        self.attn_norm, self.ff_norm = LLaDANorm(config), LLaDANorm(config)
        self.q_proj = nn.Linear(d, d, bias=qkv_bias)
        self.k_proj = nn.Linear(d, kv, bias=qkv_bias)
        self.v_proj = nn.Linear(d, kv, bias=qkv_bias)
        self.attn_out = nn.Linear(d, d, bias=config.include_bias)
        self.ff_proj = nn.Linear(d, hidden, bias=config.include_bias)
        self.up_proj = nn.Linear(d, hidden, bias=config.include_bias)
        self.ff_out = nn.Linear(hidden, d, bias=config.include_bias)
        self.act = _ACTIVATIONS[config.activation_type]

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor | None,
        kv_cache: PrefixKVCache | None = None,
    ) -> torch.Tensor:
        cfg = self.config
        B, T, _ = x.shape
        h = self.attn_norm(x)
        q = self.q_proj(h).view(B, T, cfg.n_heads, cfg.head_dim).transpose(1, 2)
        k = self.k_proj(h).view(B, T, cfg.kv_heads, cfg.head_dim).transpose(1, 2)
        v = self.v_proj(h).view(B, T, cfg.kv_heads, cfg.head_dim).transpose(1, 2)
        rope_dtype = torch.float32 if cfg.rope_full_precision else q.dtype
        q = apply_rope(q.to(rope_dtype), cos.to(rope_dtype), sin.to(rope_dtype)).to(h.dtype)
        k = apply_rope(k.to(rope_dtype), cos.to(rope_dtype), sin.to(rope_dtype)).to(h.dtype)
        if kv_cache is not None:
            k, v = kv_cache.merge(self.index, k, v)
        x = x + self.attn_out(attend(q, k, v, mask))
        h = self.ff_norm(x)
        return x + self.ff_out(self.act(self.ff_proj(h)) * self.up_proj(h))


class LLaDABody(nn.Module):
    """Holds ``transformer`` (wte, blocks, ln_f, ff_out) so parameter names match the checkpoints."""

    def __init__(self, config: LLaDAConfig):
        super().__init__()
        modules = dict(
            wte=nn.Embedding(config.embedding_size or config.vocab_size, config.d_model),
            blocks=nn.ModuleList(LLaDALayer(config, i) for i in range(config.n_layers)),
            ln_f=LLaDANorm(config),
        )
        if not config.weight_tying:
            modules["ff_out"] = nn.Linear(
                config.d_model, config.embedding_size or config.vocab_size, bias=config.include_bias
            )
        self.transformer = nn.ModuleDict(modules)


class LLaDAForMaskedDiffusion(PreTrainedModel):
    """LLaDA's mask predictor: (B, T) token ids → (B, T, V) logits, every position attending to every other.

    Example:
        >>> model = LLaDAForMaskedDiffusion.from_pretrained("GSAI-ML/LLaDA-8B-Instruct")  # doctest: +SKIP
        >>> model(input_ids).logits.shape  # (B, T, 126464)  # doctest: +SKIP
    """

    config_class = LLaDAConfig
    base_model_prefix = "model"
    _no_split_modules = ["LLaDALayer"]
    _supports_sdpa = True

    def __init__(self, config: LLaDAConfig):
        config.check_supported()
        super().__init__(config)
        self.model = LLaDABody(config)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.init_std
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.data.normal_(0.0, std)
            bias = getattr(module, "bias", None)  # nn.Embedding has none
            if bias is not None:
                bias.data.zero_()
        elif isinstance(module, LLaDANorm):
            if module.weight is not None:
                module.weight.data.fill_(1.0)
            if module.bias is not None:
                module.bias.data.zero_()

    def get_input_embeddings(self) -> nn.Module:
        return self.model.transformer.wte

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        kv_cache: PrefixKVCache | None = None,
        **kwargs: Any,
    ) -> MaskedLMOutput:
        """Logits for every position of ``input_ids``.

        Args:
            input_ids: (B, T) token ids; with ``kv_cache``, only the window ``canvas[:, kv_cache.start:]``.
            attention_mask: (B, T_canvas) 1 for real tokens, 0 for padding; None = no padding.
            kv_cache: a :class:`~dllm_viz.models.cache.PrefixKVCache` prepared for this call, or None.

        Returns:
            ``MaskedLMOutput`` whose ``logits`` is (B, T, V) in the model dtype.
        """
        cfg, t = self.config, self.model.transformer
        start = kv_cache.start if kv_cache is not None else 0
        cos, sin, mask = rope_and_mask(input_ids, attention_mask, start, cfg.head_dim, cfg.rope_theta)
        x = t.wte(input_ids)
        if cfg.input_emb_norm:
            x = x * cfg.d_model**0.5
        for block in t.blocks:
            x = block(x, cos, sin, mask, kv_cache)
        x = t.ln_f(x)
        logits = F.linear(x, t.wte.weight) if cfg.weight_tying else t.ff_out(x)
        if cfg.scale_logits:
            logits = logits * (1 / math.sqrt(cfg.d_model))
        return MaskedLMOutput(logits=cast(torch.FloatTensor, logits))  # transformers types logits as FloatTensor
