"""Dream (Dream-org/Dream-v0-Base-7B, -Instruct-7B), written natively.

Loads the official safetensors with their published parameter names (``model.layers.{i}.
self_attn.q_proj.weight``, ``lm_head.weight``, …) from a folder whose ``config.json`` says
``"model_type": "Dream"``, without the checkpoint's own modelling code (which breaks under
transformers 5 on its RoPE table, ``KeyError: 'default'``). Dream is a Qwen2.5-shaped
transformer run without a causal mask: RMS norm, biased q/k/v, grouped-query attention,
SiLU-gated MLP, untied output. It is AR-initialised, so the logits at position i predict
position i + 1; the backend shifts them, not the model.

Differences from the reference: padding is given as a boolean key mask (the backend's integer
mask is converted, never handed to SDPA as integers), and an optional
:class:`~dllm_viz.models.cache.PrefixKVCache` lets a forward pass run on a window of the canvas.
Only the default RoPE (``rope_scaling`` null) and full attention (no sliding window) are
implemented; others are refused by name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import MaskedLMOutput

from .layers import apply_rope, attend, rope_and_mask

if TYPE_CHECKING:
    from .cache import PrefixKVCache


class DreamConfig(PretrainedConfig):
    """The fields of Dream's ``config.json`` that the forward pass reads.

    Defaults are the reference ``DreamConfig``'s. The 7B checkpoints set hidden 3584, 28 layers,
    28 heads with 4 kv heads, intermediate 18944, rope_theta 1e6, rms_norm_eps 1e-6,
    tie_word_embeddings false, mask_token_id 151666, pad/eos 151643.
    """

    model_type = "Dream"

    def __init__(
        self,
        vocab_size: int = 151936,
        hidden_size: int = 4096,
        intermediate_size: int = 22016,
        num_hidden_layers: int = 32,
        num_attention_heads: int = 32,
        num_key_value_heads: int | None = 32,
        hidden_act: str = "silu",
        max_position_embeddings: int = 32768,
        initializer_range: float = 0.02,
        rms_norm_eps: float = 1e-6,
        tie_word_embeddings: bool = False,
        rope_theta: float = 10000.0,
        rope_scaling: dict[str, Any] | None = None,
        use_sliding_window: bool = False,
        sliding_window: int = 4096,
        mask_token_id: int = 151666,
        pad_token_id: int = 151643,
        **kwargs: Any,
    ) -> None:
        self.vocab_size, self.hidden_size, self.intermediate_size = vocab_size, hidden_size, intermediate_size
        self.num_hidden_layers, self.num_attention_heads = num_hidden_layers, num_attention_heads
        self.num_key_value_heads = num_key_value_heads if num_key_value_heads is not None else num_attention_heads
        self.hidden_act, self.max_position_embeddings = hidden_act, max_position_embeddings
        self.initializer_range, self.rms_norm_eps, self.rope_theta = initializer_range, rms_norm_eps, rope_theta
        self.use_sliding_window, self.sliding_window = use_sliding_window, sliding_window
        # Only the RoPE type is kept: the checkpoints have rope_scaling null, and transformers 5 warns
        # whenever a config sets or reads an attribute of that name.
        scaling = rope_scaling or {}
        self.rope_type = scaling.get("rope_type", scaling.get("type", "default"))
        self.mask_token_id = mask_token_id
        super().__init__(tie_word_embeddings=tie_word_embeddings, pad_token_id=pad_token_id, **kwargs)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def check_supported(self) -> None:
        if self.rope_type != "default":
            raise ValueError(
                f"native Dream supports the default RoPE only (rope_scaling type {self.rope_type!r}); "
                "load it with its own code instead (trust_remote_code)"
            )
        if self.use_sliding_window:
            raise ValueError("native Dream does not implement sliding-window attention (use_sliding_window true)")
        if self.hidden_act != "silu":
            raise ValueError(f"native Dream supports hidden_act 'silu' only, not {self.hidden_act!r}")
        if self.hidden_size % self.num_attention_heads or self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must divide into num_attention_heads "
                f"({self.num_attention_heads}), and those into num_key_value_heads ({self.num_key_value_heads})"
            )


class DreamRMSNorm(nn.Module):
    """Qwen2's RMS norm: float32 statistics, the scale applied after casting back."""

    def __init__(self, size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


class DreamAttention(nn.Module):
    def __init__(self, config: DreamConfig, index: int):
        super().__init__()
        self.config, self.index = config, index
        d, hd = config.hidden_size, config.head_dim
        self.q_proj = nn.Linear(d, config.num_attention_heads * hd, bias=True)
        self.k_proj = nn.Linear(d, config.num_key_value_heads * hd, bias=True)
        self.v_proj = nn.Linear(d, config.num_key_value_heads * hd, bias=True)
        self.o_proj = nn.Linear(config.num_attention_heads * hd, d, bias=False)

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
        q = self.q_proj(x).view(B, T, cfg.num_attention_heads, cfg.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(B, T, cfg.num_key_value_heads, cfg.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(B, T, cfg.num_key_value_heads, cfg.head_dim).transpose(1, 2)
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)  # the reference rotates in the model dtype
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if kv_cache is not None:
            k, v = kv_cache.merge(self.index, k, v)
        return self.o_proj(attend(q, k, v, mask))


class DreamMLP(nn.Module):
    def __init__(self, config: DreamConfig):
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DreamLayer(nn.Module):
    def __init__(self, config: DreamConfig, index: int):
        super().__init__()
        self.self_attn = DreamAttention(config, index)
        self.mlp = DreamMLP(config)
        self.input_layernorm = DreamRMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_attention_layernorm = DreamRMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor | None,
        kv_cache: PrefixKVCache | None = None,
    ) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, kv_cache)
        return x + self.mlp(self.post_attention_layernorm(x))


class DreamBody(nn.Module):
    def __init__(self, config: DreamConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, config.pad_token_id)
        self.layers = nn.ModuleList(DreamLayer(config, i) for i in range(config.num_hidden_layers))
        self.norm = DreamRMSNorm(config.hidden_size, config.rms_norm_eps)


class DreamForMaskedDiffusion(PreTrainedModel):
    """Dream's denoiser: (B, T) token ids → (B, T, V) logits, position i scoring token i + 1.

    Example:
        >>> model = DreamForMaskedDiffusion.from_pretrained("Dream-org/Dream-v0-Instruct-7B")  # doctest: +SKIP
        >>> model(input_ids).logits.shape  # (B, T, vocab_size)  # doctest: +SKIP
    """

    config_class = DreamConfig
    base_model_prefix = "model"
    _no_split_modules = ["DreamLayer"]
    _supports_sdpa = True

    def __init__(self, config: DreamConfig):
        config.check_supported()
        super().__init__(config)
        self.model = DreamBody(config)
        # The 7B checkpoints are untied; a tied config reads the embedding instead of an lm_head.
        self.lm_head = (
            None if config.tie_word_embeddings else nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        )
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.data.normal_(0.0, std)
            bias = getattr(module, "bias", None)  # nn.Embedding has none
            if bias is not None:
                bias.data.zero_()
        elif isinstance(module, DreamRMSNorm):
            module.weight.data.fill_(1.0)

    def get_input_embeddings(self) -> nn.Module:
        return self.model.embed_tokens

    def get_output_embeddings(self) -> nn.Linear | None:
        return self.lm_head

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        kv_cache: PrefixKVCache | None = None,
        **kwargs: Any,
    ) -> MaskedLMOutput:
        """Logits for every position of ``input_ids`` (unshifted: position i scores token i + 1).

        Args:
            input_ids: (B, T) token ids; with ``kv_cache``, only the window ``canvas[:, kv_cache.start:]``.
            attention_mask: (B, T_canvas) 1 / True for real tokens, 0 / False for padding; None = none.
            kv_cache: a :class:`~dllm_viz.models.cache.PrefixKVCache` prepared for this call, or None.
        """
        cfg = self.config
        start = kv_cache.start if kv_cache is not None else 0
        cos, sin, mask = rope_and_mask(input_ids, attention_mask, start, cfg.head_dim, cfg.rope_theta)
        x = self.model.embed_tokens(input_ids)
        for layer in self.model.layers:
            x = layer(x, cos, sin, mask, kv_cache)
        x = self.model.norm(x)
        logits = F.linear(x, self.model.embed_tokens.weight) if self.lm_head is None else self.lm_head(x)
        return MaskedLMOutput(logits=cast(torch.FloatTensor, logits))  # transformers types logits as FloatTensor
