"""What a decode takes and gives: its settings and checked inputs, the state it may start from, its records.

:class:`EngineConfig` is how to decode; :class:`Plan` a strategy checked against it and
:class:`Prepared` a whole decode checked against a model (prompts encoded once); :class:`DecodeStart`
a partly unmasked state to continue from (branching); :class:`StepRecord` one step of every row,
:class:`GenerationResult` a finished run. The loop that uses them is :func:`dllm_viz.engine.generate`,
which re-exports them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from .backends.hf import has_kv_cache
from .blocks import check_block_length, default_block_length, setting_label
from .features import TOP_K, Features

if TYPE_CHECKING:
    from .backends import DLLM
    from .strategies.base import Strategy

CACHES = ("none", "prefix")


@dataclass(frozen=True)
class EngineConfig:
    """How to decode.

    Attributes:
        gen_length: L, number of generated positions (mask tokens appended to the prompt).
        block_length: BL, must divide L; BL < L is semi-autoregressive, BL = L full diffusion.
            Default 8 = L/8 for L = 64, the paper's semi-AR ratio (32 for 256).
        temperature: token temperature; 0 is greedy (the paper trains and evaluates at 0).
        fallback: commit the most confident eligible position when the strategy proposes
            none (evaluation); off for RL training, where an empty step still costs an NFE.
        seed: seeds the rows' random streams (token sampling and stochastic strategies); a
            row's stream depends only on the seed and its prompt, never on its batch.
        top_k: alternatives per position kept in the step records.
        candidate_top_k: keep only each position's k most likely tokens (renormalised) before
            features and sampling; ``None`` = the whole vocabulary (LLaDA's ``generate`` and the
            default). Dream's ``diffusion_generate`` applies its generation config's ``top_k``,
            which under transformers 4.57 inherits ``top_k = 50`` from the model config, so its
            confidence, margin and entropy are over the top 50 unless a caller passes ``top_k``;
            set 50 here to follow it.
        cache: ``"none"`` (default) or ``"prefix"``: Fast-dLLM's block-wise prefix KV cache
            (:class:`~dllm_viz.models.cache.PrefixKVCache`). A pass at each block start stores
            every layer's keys/values; later passes in the block recompute only the block and what
            follows. Exact at block starts, approximate inside a block (bidirectional attention);
            needs a backend with ``supports_kv_cache`` (the native LLaDA and Dream classes and
            the built-in ModernBERT model). Positions a pass does not recompute keep their last
            features in the records and in what strategies see.
    """

    gen_length: int = 64
    block_length: int = 8
    temperature: float = 0.0
    fallback: bool = True
    seed: int = 0
    top_k: int = TOP_K
    candidate_top_k: int | None = None
    cache: str = "none"

    def __post_init__(self) -> None:
        if not isinstance(self.gen_length, int) or self.gen_length < 1:
            raise ValueError(f"gen_length ({self.gen_length!r}) must be a positive integer")
        check_block_length(self.gen_length, self.block_length)
        if not isinstance(self.temperature, (int, float)) or not (
            self.temperature >= 0 and math.isfinite(self.temperature)
        ):
            raise ValueError(f"temperature ({self.temperature!r}) must be a finite number ≥ 0")
        if not isinstance(self.top_k, int) or self.top_k < 2:
            raise ValueError(f"top_k ({self.top_k!r}) must be an integer ≥ 2")
        if self.candidate_top_k is not None and (
            not isinstance(self.candidate_top_k, int)
            or isinstance(self.candidate_top_k, bool)
            or self.candidate_top_k < 2
        ):
            raise ValueError(f"candidate_top_k ({self.candidate_top_k!r}) must be None or an integer ≥ 2")
        if self.cache not in CACHES:
            raise ValueError(f"cache ({self.cache!r}) must be one of {', '.join(CACHES)}")

    @classmethod
    def semi_ar(cls, gen_length: int = 64, block_length: int | None = None, **kwargs: Any) -> EngineConfig:
        """Semi-autoregressive blocks; ``block_length`` defaults to L/8, the paper's ratio (32 for 256)."""
        BL = default_block_length(gen_length) if block_length is None else block_length  # 0 is refused, not defaulted
        return cls(gen_length=gen_length, block_length=BL, **kwargs)

    @classmethod
    def full(cls, gen_length: int = 64, **kwargs: Any) -> EngineConfig:
        """Full diffusion: one block of L, any masked position may be committed at any step."""
        return cls(gen_length=gen_length, block_length=gen_length, **kwargs)

    @property
    def num_blocks(self) -> int:
        return self.gen_length // self.block_length

    @property
    def full_diffusion(self) -> bool:
        return self.block_length == self.gen_length

    @property
    def setting(self) -> str:
        """``"full diffusion"`` or ``"semi-AR BL=8"``: how plots, cards and reports name the setting."""
        return setting_label(self.gen_length, self.block_length)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class StepRecord:
    """What happened at one step, for every row of the batch (tensors on the model's device).

    Rows that were already finished (``active`` False) hold zeros in the per-step fields.

    Attributes:
        step: 0-based step index.
        active: (B,) bool, rows that ran a forward pass (and paid an NFE) this step.
        nfe: (B,) int64, forward passes used per row after this step.
        block: (B,) int64, the row's current block index during this step.
        masked: (B, L) bool, masked positions before the step.
        eligible: (B, L) bool, masked positions of the current block.
        features: confidence / margin / entropy (B, L) and top-k (B, L, k) for this step.
        proposed: (B, L) int64 candidate tokens (a forced token where one was committed);
            token_prob (B, L) the probabilities of the model's own candidates.
        action: (B, L) bool, the strategy's decision restricted to eligible positions.
        committed: (B, L) bool, positions committed this step (action + fallback/forced).
        tokens: (B, L) int64, generation after the step (mask id where still masked).
        probs, log_prob: the learned policy's (B, L) unmask probabilities and (B,) step
            log-likelihood, or None for heuristics.
        model_ms: wall time of the forward pass; step_ms: of the whole step.
        rng_state: (CPU uint8) the rows' random streams after the step (16 bytes a row); a
            :class:`DecodeStart` with it continues the same streams.
        prompt_ids: every row's prompt token ids, as the engine encoded them (one list shared
            by all records of a run), so a trace never encodes the prompt again.
    """

    step: int
    active: torch.Tensor
    nfe: torch.Tensor
    block: torch.Tensor
    masked: torch.Tensor
    eligible: torch.Tensor
    features: Features
    proposed: torch.Tensor
    token_prob: torch.Tensor
    action: torch.Tensor
    committed: torch.Tensor
    tokens: torch.Tensor
    probs: torch.Tensor | None = None
    log_prob: torch.Tensor | None = None
    model_ms: float = 0.0
    step_ms: float = 0.0
    rng_state: torch.Tensor | None = None
    prompt_ids: Sequence[Sequence[int]] = ()


@dataclass
class DecodeStart:
    """A partially unmasked state to continue decoding from, instead of the fully masked canvas.

    Built from a recorded run by :func:`dllm_viz.branch.start_after`; the engine checks shapes and
    ranges before any forward pass.

    Attributes:
        tokens: (B, L) int64 generation canvas, mask id where still masked.
        nfe: (B,) int64 forward passes each row has already spent.
        block_step: (B,) int64 steps each row has spent in its current block (the linear
            schedules and the no-fallback block end read it).
        step: index of the first step to run; ``StepRecord.step`` continues from it.
        rng_state: generator state to continue from (a :attr:`StepRecord.rng_state`), or None to
            start the rows' streams afresh from ``config.seed``.
    """

    tokens: torch.Tensor
    nfe: torch.Tensor
    block_step: torch.Tensor
    step: int = 0
    rng_state: torch.Tensor | None = None

    def check(self, batch: int, config: EngineConfig) -> None:
        """Raise ValueError naming the field when the start does not fit the batch or config."""
        L = config.gen_length
        if not isinstance(self.tokens, torch.Tensor) or tuple(self.tokens.shape) != (batch, L):
            raise ValueError(
                f"start.tokens must be a ({batch}, {L}) tensor, got {tuple(getattr(self.tokens, 'shape', ()))}"
            )
        if self.tokens.dtype != torch.long or bool((self.tokens < 0).any()):
            raise ValueError("start.tokens must hold int64 token ids ≥ 0 (the mask id where masked)")
        for name in ("nfe", "block_step"):
            value = getattr(self, name)
            if not isinstance(value, torch.Tensor) or tuple(value.shape) != (batch,) or bool((value < 0).any()):
                raise ValueError(f"start.{name} must be a ({batch},) tensor of counts ≥ 0")
        if bool((self.nfe > L).any()):
            raise ValueError(f"start.nfe ({self.nfe.tolist()}) cannot exceed gen_length ({L})")
        if isinstance(self.step, bool) or not isinstance(self.step, int) or self.step < 0:
            raise ValueError(f"start.step ({self.step!r}) must be an integer ≥ 0")
        if self.rng_state is not None and (
            not isinstance(self.rng_state, torch.Tensor) or self.rng_state.dtype != torch.uint8
        ):
            raise ValueError("start.rng_state must be a uint8 tensor from a StepRecord.rng_state")


@dataclass
class GenerationResult:
    """Final outputs of a batched run (CPU tensors)."""

    prompt_ids: list[list[int]]
    tokens: torch.Tensor  # (B, L) int64
    nfe: torch.Tensor  # (B,) int64
    steps: int
    texts: list[str] = field(default_factory=list)
    records: list[StepRecord] = field(default_factory=list)


@dataclass(frozen=True)
class Plan:
    """A strategy and the settings it decodes with, checked together once, when made (the
    strategy's ``validate`` for this L and BL): what can be refused before a model is loaded."""

    strategy: Strategy
    config: EngineConfig

    def __post_init__(self) -> None:
        self.strategy.validate(self.config.gen_length, self.config.block_length)

    def prepare(
        self, backend: DLLM, prompts: Sequence[str | Sequence[int]], start: DecodeStart | None = None
    ) -> Prepared:
        """The decode of ``prompts`` on ``backend``: prompts encoded once and checked against the
        model's context, the cache against the backend, ``start`` against the batch."""
        config = self.config
        prompt_ids = encode_prompts(backend, prompts, config.gen_length)
        if config.cache != "none" and not has_kv_cache(backend):
            raise ValueError(
                f"cache={config.cache!r} needs a model with a KV cache (native LLaDA and Dream, or a "
                f"global-attention ModernBERT such as the built-in model); "
                f"{getattr(backend, 'name', 'this backend')!r} has none, so use cache='none'"
            )
        if start is not None:
            start.check(len(prompt_ids), config)
        if start is not None and config.cache != "none":
            raise ValueError("continuing from a given state (branching) runs without a KV cache; use cache='none'")
        return Prepared(self, prompt_ids, start)


@dataclass(frozen=True)
class Prepared:
    """A decode whose every input is checked (:meth:`Plan.prepare`); :func:`decode_steps` runs it."""

    plan: Plan
    prompt_ids: list[list[int]]
    start: DecodeStart | None = None


def encode_prompts(backend: DLLM, prompts: Sequence[str | Sequence[int]], gen_length: int) -> list[list[int]]:
    """Token ids per prompt, validated against the model's context before any forward pass."""
    if isinstance(prompts, str) or len(prompts) == 0:
        raise ValueError("prompts must be a non-empty list of prompts")
    encoded = []
    for i, prompt in enumerate(prompts):
        which = "the prompt" if len(prompts) == 1 else f"prompt {i}"  # a single-prompt user has no prompt 0
        if isinstance(prompt, str):
            if not prompt.strip():
                raise ValueError(f"{which} is empty")
            ids = backend.encode_prompt(prompt)
        else:
            ids = [int(t) for t in prompt]
        if not ids:
            raise ValueError(f"{which} encodes to no tokens")
        if len(ids) + gen_length > backend.max_length:
            templated = isinstance(prompt, str) and getattr(getattr(backend, "tokenizer", None), "chat_template", None)
            raise ValueError(
                f"{which} is {len(ids)} tokens{' (with the chat template)' if templated else ''}; with gen_length "
                f"{gen_length} that exceeds the model's context of {backend.max_length} tokens (shorten the prompt "
                "or the generation)"
            )
        encoded.append(ids)
    return encoded
