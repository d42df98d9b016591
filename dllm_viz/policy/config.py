"""Configuration of the DiT confidence policy (paper §2 of shared/reference/paper-unmasking-policies.md).

The defaults reproduce the released ``dit_confidence`` policy of apple/ml-rl-dllm exactly
(331,265 parameters). The same dataclass is written as ``config.json`` next to
``model.safetensors`` so a saved policy rebuilds itself without code changes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class PolicyConfig:
    """Shape and initialisation of :class:`~dllm_viz.policy.DiTConfidencePolicy`.

    Attributes:
        hidden_size: width d of the token stream and of the conditioning vector (paper: 128).
        num_heads: attention heads; ``hidden_size / num_heads`` must be even for RoPE (paper: 2).
        ffn_size: inner width of the GELU feed-forward branch (paper: 512).
        num_blocks: number of RoPE-DiT blocks (paper: 1).
        time_embed_dim: width of the sinusoidal time features fed to the time MLP (paper: 128).
        top_p: how many of the dLLM's largest softmax probabilities each position sees;
            1 = the max-prob confidence used by every released config, 50 = the ablation.
        smart_init: output bias at init, so every eligible position starts with an unmask
            probability near ``sigmoid(smart_init)`` (paper: -2.0, ~0.12: a slow start yields
            more correct answers and hence non-zero rewards). ``None`` keeps PyTorch's init.
        time_period: ``max_period`` of the sinusoidal time embedding. The released code uses 1,
            which makes every frequency exactly 1: the embedding degenerates to cos(t) repeated
            ``time_embed_dim/2`` times followed by sin(t) repeated as often, i.e. time enters as
            a 2-D feature. We copy this quirk by default so released-style policies match;
            use e.g. 10000 for a proper multi-frequency embedding.
    """

    hidden_size: int = 128
    num_heads: int = 2
    ffn_size: int = 512
    num_blocks: int = 1
    time_embed_dim: int = 128
    top_p: int = 1
    smart_init: float | None = -2.0
    time_period: float = 1.0

    def __post_init__(self) -> None:
        for name in ("hidden_size", "num_heads", "ffn_size", "num_blocks", "time_embed_dim", "top_p"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` ({value!r}) must be a positive integer")
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"`num_heads` ({self.num_heads}) must divide `hidden_size` ({self.hidden_size})"
            )
        if (self.hidden_size // self.num_heads) % 2:
            raise ValueError(
                f"head dim `hidden_size / num_heads` ({self.hidden_size}/{self.num_heads}) must be "
                "even: RoPE rotates pairs of channels"
            )
        if self.time_embed_dim % 2:
            raise ValueError(
                f"`time_embed_dim` ({self.time_embed_dim}) must be even (cos and sin halves)"
            )
        if self.smart_init is not None and not math.isfinite(self.smart_init):
            raise ValueError(f"`smart_init` ({self.smart_init!r}) must be a finite float or None")
        if not (isinstance(self.time_period, (int, float)) and self.time_period > 0):
            raise ValueError(f"`time_period` ({self.time_period!r}) must be > 0")

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (what ``config.json`` holds)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "PolicyConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise instead of being dropped silently."""
        if not isinstance(data, dict):
            raise TypeError(f"policy config must be a dict, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown policy config keys {unknown}; known keys: {sorted(known)}")
        return cls(**data)
