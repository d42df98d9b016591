"""The built-in dLLM's network: a small ``ModernBertForMaskedLM``.

Why ModernBERT: it is a stock transformers masked LM (loads with ``AutoModelForMaskedLM`` and
no remote code, like any hub masked LM) and it uses rotary position embeddings. Measured on
this project's CPUs, models with learned absolute positions (``BertForMaskedLM``) stayed at
the unigram plateau under the diffusion objective while RoPE models learned. RoPE also makes
left padding harmless: attention scores depend only on relative positions, so a left-padded
prompt gives the same logits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from transformers import ModernBertConfig, ModernBertForMaskedLM, PreTrainedTokenizerFast


@dataclass(frozen=True)
class TinyModelConfig:
    """Size of the built-in model.

    Attributes:
        hidden_size: d; 256 keeps a denoising step of a 64-token generation well under
            30 ms on two CPU cores.
        num_layers: transformer blocks; 6 (4.1M parameters, ~7k training tokens/s on 2 cores):
            depth helps the multi-digit carries more than width at this size.
        num_heads: attention heads; ``hidden_size / num_heads`` must be even for RoPE.
        intermediate_size: GLU width (ModernBERT's ``Wi`` maps d to twice this).
        max_positions: longest prompt + generation, also the tokenizer's ``model_max_length``.
        rope_theta: RoPE base; 10k suits a 256-token context (ModernBERT's 160k is for 8k).
    """

    hidden_size: int = field(default=256, metadata={"help": "d, the model width"})
    num_layers: int = field(default=6, metadata={"flag": "--layers", "help": "transformer blocks"})
    num_heads: int = field(default=4, metadata={"flag": "--heads", "help": "attention heads"})
    intermediate_size: int = field(default=512, metadata={"help": "GLU width"})
    max_positions: int = field(default=256, metadata={"help": "longest prompt + generation"})
    rope_theta: float = field(default=10000.0, metadata={"help": "RoPE base"})

    def __post_init__(self) -> None:
        for name in ("hidden_size", "num_layers", "num_heads", "intermediate_size", "max_positions"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} ({value!r}) must be a positive integer")
        if self.hidden_size % self.num_heads or (self.hidden_size // self.num_heads) % 2:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) / num_heads ({self.num_heads}) must be an even integer "
                "(RoPE rotates pairs of dimensions)"
            )
        if not self.rope_theta > 0:
            raise ValueError(f"rope_theta ({self.rope_theta}) must be > 0")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TinyModelConfig:
        return cls(**data)


def modernbert_config(config: TinyModelConfig, tokenizer: PreTrainedTokenizerFast) -> ModernBertConfig:
    """The transformers config; special-token ids come from the tokenizer, never literals."""
    eos = tokenizer.eos_token_id
    return ModernBertConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        max_position_embeddings=config.max_positions,
        # Every layer global: ModernBERT's default alternates 128-token sliding windows, which a
        # 64-token answer that must read the whole question does not want.
        global_attn_every_n_layers=1,
        local_attention=config.max_positions,
        global_rope_theta=config.rope_theta,
        local_rope_theta=config.rope_theta,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=eos,
        bos_token_id=eos,
        cls_token_id=eos,
        sep_token_id=eos,
        mask_token_id=tokenizer.mask_token_id,
        # torch.compile of the reference implementation is GPU-only and slow to warm up.
        reference_compile=False,
        attn_implementation="sdpa",
        tie_word_embeddings=True,
    )


def build_model(config: TinyModelConfig, tokenizer: PreTrainedTokenizerFast, seed: int = 0) -> ModernBertForMaskedLM:
    """A freshly initialised model (deterministic for ``seed``)."""
    if tokenizer.mask_token_id is None or tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer needs a mask token and an EOS token")
    if config.max_positions > tokenizer.model_max_length:
        raise ValueError(
            f"max_positions ({config.max_positions}) exceeds the tokenizer's model_max_length "
            f"({tokenizer.model_max_length})"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ModernBertForMaskedLM(modernbert_config(config, tokenizer))


def count_parameters(model: torch.nn.Module) -> int:
    """Unique trainable parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters() if p.requires_grad}.values())
