"""Configuration of the DiT confidence policy (§2 of "Learning Unmasking Policies for Diffusion
Language Models", arXiv 2512.09106).

The defaults reproduce the released ``dit_confidence`` policy of apple/ml-rl-dllm exactly
(331,265 parameters). The same dataclass is written as ``config.json`` next to
``model.safetensors`` so a saved policy rebuilds itself without code changes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

# Upper bounds, checked before any model is built: far above any policy in the paper
# (d = 128, ffn 512, one block: 331k parameters), far below what would hurt a server.
ACTIONS = ("bernoulli", "bernoulli-plus-one")  # action forms a policy can be trained with
MAX_SIZES = {
    "hidden_size": 1024,
    "num_heads": 64,
    "ffn_size": 8192,
    "num_blocks": 16,
    "time_embed_dim": 1024,
    "top_p": 256,
}
MAX_PARAMETERS = 50_000_000  # 200 MB of float32


MAX_LOGIT = 1e4
MAX_TIME_PERIOD = 1e9


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


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
        entropy_input: also feed each position's entropy (nats) beside its probabilities: the
            quantity EB-Sampler's rule reads, which the max-prob alone cannot recover.
        smart_init: output bias at init, so every eligible position starts with an unmask
            probability near ``sigmoid(smart_init)`` (paper: -2.0, ~0.12: a slow start yields
            more correct answers and hence non-zero rewards). ``None`` keeps PyTorch's init.
        action: the action form the policy was trained with (``"bernoulli"``, the paper's, or
            ``"bernoulli-plus-one"``); a learned strategy in mode ``"auto"`` acts the same way.
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
    entropy_input: bool = False
    smart_init: float | None = -2.0
    time_period: float = 1.0
    action: str = "bernoulli"

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"`action` ({_short(self.action)}) must be one of {', '.join(ACTIONS)}")
        for name, limit in MAX_SIZES.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
                raise ValueError(f"`{name}` ({_short(value)}) must be an integer between 1 and {limit}")
        if not isinstance(self.entropy_input, bool):
            raise ValueError(f"`entropy_input` ({_short(self.entropy_input)}) must be true or false")
        if self.hidden_size % self.num_heads:
            raise ValueError(f"`num_heads` ({self.num_heads}) must divide `hidden_size` ({self.hidden_size})")
        if (self.hidden_size // self.num_heads) % 2:
            raise ValueError(
                f"head dim `hidden_size / num_heads` ({self.hidden_size}/{self.num_heads}) must be "
                "even: RoPE rotates pairs of channels"
            )
        if self.time_embed_dim % 2:
            raise ValueError(f"`time_embed_dim` ({self.time_embed_dim}) must be even (cos and sin halves)")
        # Bounded, not only finite: the values become float32 tensors (3.4e38 overflows), and a bias
        # beyond ±MAX_LOGIT saturates the sigmoid anyway.
        if self.smart_init is not None and not (_finite(self.smart_init) and abs(self.smart_init) <= MAX_LOGIT):
            raise ValueError(
                f"`smart_init` ({_short(self.smart_init)}) must be a number in [-{MAX_LOGIT:g}, {MAX_LOGIT:g}] or None"
            )
        if not (_finite(self.time_period) and 0 < self.time_period <= MAX_TIME_PERIOD):
            raise ValueError(f"`time_period` ({_short(self.time_period)}) must be a number in (0, {MAX_TIME_PERIOD:g}]")
        if self.num_parameters() > MAX_PARAMETERS:
            raise ValueError(
                f"this policy config has {self.num_parameters():,} parameters; the limit is {MAX_PARAMETERS:,}"
            )

    @property
    def input_size(self) -> int:
        """Numbers each position feeds the policy: its top-p probabilities, plus its entropy."""
        return self.top_p + int(self.entropy_input)

    def num_parameters(self) -> int:
        """Parameter count of the network this config builds, computed without building it
        (so a hostile config.json cannot make the server allocate a huge model)."""
        d, f, t = self.hidden_size, self.ffn_size, self.time_embed_dim
        stem = (self.input_size + 1) * d + 2 * d + (t + 1) * d + (d + 1) * d  # conf_proj, mask_embed, time MLP
        block = 2 * 2 * d + 4 * (d * d + d) + (d * f + f) + (f * d + d) + (d * 6 * d + 6 * d)  # norms, attn, ffn, adaLN
        return stem + self.num_blocks * block + 2 * d + d + 1  # final norm, head

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (what ``config.json`` holds)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> PolicyConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise instead of being dropped silently."""
        if not isinstance(data, dict):
            raise TypeError(f"policy config must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            shown = ", ".join(map(_short, unknown[:5])) + (", …" if len(unknown) > 5 else "")
            raise ValueError(f"unknown policy config keys [{shown}]; known keys: {sorted(known)}")
        return cls(**data)
