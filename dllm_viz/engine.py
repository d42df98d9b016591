"""The denoising loop: the MDP environment of masked-diffusion sampling.

A prompt is followed by L mask tokens. Each step the frozen dLLM scores every position,
features are computed on its device, a strategy decides which eligible positions to commit,
and the engine commits them. Invariants (tested with hypothesis in tests/test_engine.py):

* committed tokens never change (no re-masking);
* only masked positions of a row's current block are ever committed (semi-AR blocks are
  filled left to right; BL = L is full diffusion);
* each step of an active row costs one NFE; a row stops counting once it has no masks;
* at least one token per step when the strategy proposes none (the argmax fallback), unless
  the strategy marks the empty step as deliberate (``Decision.allow_empty``: Dream's schedule,
  which still ends every block within its steps) or ``fallback=False`` (RL training), in which
  case a block's last allowed step (its BL-th) commits whatever is left, so every row
  terminates within L steps;
* the same seed gives the same output, and a row the same output whatever batch it runs in: each
  row draws from its own stream, keyed by the seed and its prompt (:mod:`dllm_viz.rng`).

Branching (``dllm_viz.branch``): ``generate(..., start=DecodeStart(...))`` continues from a
given partially unmasked canvas, NFE count, block progress and RNG state instead of the fully
masked canvas, so continuing a run from its own state after step k reproduces it token for
token. A user's overrides reach the loop only through the strategy's :class:`Decision`
(``tokens`` forces a token, ``hold`` keeps a position back); re-masking is part of the start
canvas, so the loop itself still never re-masks.

Example:
    >>> from dllm_viz.backends import load_backend  # doctest: +SKIP
    >>> from dllm_viz.strategies import build_strategy  # doctest: +SKIP
    >>> backend = load_backend()  # doctest: +SKIP
    >>> result = run(backend, ["Tom has 3 apples ..."], build_strategy("threshold"), EngineConfig())  # doctest: +SKIP
    >>> result.texts[0], result.nfe[0]  # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from .backends.hf import has_kv_cache
from .blocks import check_block_length, default_block_length, setting_label
from .features import TOP_K, Features, compute_features, propose_tokens, restrict_top_k
from .rng import RowRNG
from .strategies.base import DecodeState, Strategy, top_k_mask

if TYPE_CHECKING:
    from .backends import DLLM


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
        return cls(gen_length=gen_length, block_length=block_length or default_block_length(gen_length), **kwargs)

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


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def generate(
    backend: DLLM,
    prompts: Sequence[str | Sequence[int]],
    strategy: Strategy,
    config: EngineConfig = EngineConfig(),
    *,
    start: DecodeStart | None = None,
) -> Generator[StepRecord, None, None]:
    """Decode a batch of prompts, yielding one :class:`StepRecord` per step.

    Stop iterating at any time to cancel; nothing is left running.

    Args:
        start: continue from this state (canvas, NFE, block progress, RNG) instead of the fully
            masked canvas; None decodes from scratch. A row may then need one step more than its
            masks (a held-back step), so the loop allows L + 1 steps.
    """
    # 1. Validate everything before touching the model.
    strategy.validate(config.gen_length, config.block_length)
    prompt_ids = encode_prompts(backend, prompts, config.gen_length)
    L, BL, device = config.gen_length, config.block_length, backend.device
    kv_backend = backend if has_kv_cache(backend) else None
    if config.cache != "none" and kv_backend is None:
        raise ValueError(
            f"cache={config.cache!r} needs a model with a KV cache (native LLaDA and Dream, or a "
            f"global-attention ModernBERT such as the built-in model); {getattr(backend, 'name', 'this backend')!r} "
            "has none, so use cache='none'"
        )
    if start is not None:
        start.check(len(prompt_ids), config)
    if start is not None and config.cache != "none":
        raise ValueError("continuing from a given state (branching) runs without a KV cache; use cache='none'")

    # 2. Build the canvas: left-padded prompts followed by L masks.
    B, P = len(prompt_ids), max(map(len, prompt_ids))
    x = torch.full((B, P + L), backend.mask_id, dtype=torch.long, device=device)
    padding = torch.ones((B, P + L), dtype=torch.long, device=device)  # (B, P + L) 0 on left padding
    for b, ids in enumerate(prompt_ids):
        pad = P - len(ids)
        x[b, :pad] = backend.pad_id
        padding[b, :pad] = 0
        x[b, pad:P] = torch.tensor(ids, device=device)
    # No padding: None lets the model take its unmasked attention path.
    attention = None if bool(padding.all()) else padding
    rng = RowRNG.for_prompts(config.seed, prompt_ids, device, L)
    nfe = torch.zeros(B, dtype=torch.long, device=device)
    block_step = torch.zeros(B, dtype=torch.long, device=device)
    block_of_pos = torch.arange(L, device=device) // BL
    cache = None
    if config.cache == "prefix" and kv_backend is not None:  # kv_backend is set: checked above
        from .models.cache import PrefixKVCache  # imports transformers; only runs that use it pay

        cache = PrefixKVCache(B, P + L, P, BL, kv_backend.logit_shift)
    positions = torch.arange(L, device=device)
    first, limit = 0, L
    if start is not None:
        x[:, P:] = start.tokens.to(device)
        nfe, block_step = start.nfe.to(device).clone(), start.block_step.to(device).clone()
        if start.rng_state is not None:
            try:
                rng.set_state(start.rng_state)
            except ValueError as err:
                raise ValueError(f"start.rng_state does not fit this batch: {err}") from None
        first, limit = start.step, L + 1

    # 3. Denoise. Every step commits ≥ 1 token or advances a block towards its forced end,
    #    so L iterations always suffice (L + 1 from a start: a held-back step may commit nothing).
    for step in range(first, first + limit):
        t0 = time.perf_counter()
        gen = x[:, P:]
        masked = gen == backend.mask_id
        active = masked.any(1)
        if not bool(active.any()):
            break
        first_masked = torch.where(masked, positions, L).amin(1)
        block = (first_masked // BL).clamp(max=config.num_blocks - 1)
        eligible = masked & (block_of_pos == block.unsqueeze(1))
        # A slice (a view, no copy) while every row is active; an index once some are done.
        rows = slice(None) if bool(active.all()) else active.nonzero().squeeze(1)

        attn = None if attention is None else attention[rows]
        if cache is None or kv_backend is None:  # kv_backend is set whenever cache is
            logits = backend.logits(x[rows], attn)[:, P:]  # (b, L, V) stays on device
        else:  # a window from the earliest block start: (b, L - g0, V) for generation positions g0…L-1
            cache.plan(rows, block[rows])
            logits = kv_backend.logits(x[rows], attn, kv_cache=cache)[:, max(0, P - cache.start) :]
        with torch.inference_mode():
            logits[..., backend.mask_id] = float("-inf")  # [MASK] is never a prediction
            if config.candidate_top_k is not None:
                logits = restrict_top_k(logits, config.candidate_top_k)
        _sync(device)
        model_ms = (time.perf_counter() - t0) * 1e3

        feats = compute_features(logits, config.top_k)
        draws = rng.rows(rows)
        tokens, token_prob = propose_tokens(logits, feats, config.temperature, draws)
        del logits
        if cache is not None:
            feats, tokens, token_prob = cache.assemble(feats, tokens, token_prob)
        state = DecodeState(
            features=feats,
            tokens=tokens,
            token_prob=token_prob,
            masked=masked[rows],
            eligible=eligible[rows],
            block_step=block_step[rows],
            nfe=nfe[rows],
            gen_length=L,
            block_length=BL,
            generator=draws,
        )
        decision = strategy.decide(state)
        # A held-back position is not committable this step, by anyone.
        allowed = state.eligible if decision.hold is None else state.eligible & ~decision.hold
        action = decision.unmask & allowed
        commit = action.clone()
        if config.fallback and not decision.allow_empty:
            empty = ~commit.any(1)
            if bool(empty.any()):
                commit |= top_k_mask(token_prob, allowed, empty.long())
        else:
            commit |= allowed & (state.block_step >= BL - 1).unsqueeze(1)
        if decision.tokens is not None:  # a forced token replaces the proposal where it is committed
            tokens = torch.where(commit & (decision.tokens >= 0), decision.tokens, tokens)

        # 4. Commit and account.
        x[rows, P:] = torch.where(commit, tokens, x[rows, P:])
        nfe[rows] += 1
        block_done = ~(state.eligible & ~commit).any(1)
        block_step[rows] = torch.where(block_done, torch.zeros_like(block_step[rows]), block_step[rows] + 1)
        _sync(device)
        yield StepRecord(
            step=step,
            active=active,
            nfe=nfe.clone(),
            block=block,
            masked=masked,
            eligible=eligible,
            features=_scatter_rows(feats, rows, B),
            proposed=_scatter(tokens, rows, B),
            token_prob=_scatter(token_prob, rows, B),
            action=_scatter(action, rows, B),
            committed=_scatter(commit, rows, B),
            tokens=x[:, P:].clone(),
            probs=None if decision.probs is None else _scatter(decision.probs, rows, B),
            log_prob=None if decision.log_prob is None else _scatter(decision.log_prob, rows, B),
            model_ms=model_ms,
            step_ms=(time.perf_counter() - t0) * 1e3,
            rng_state=rng.get_state(),
            prompt_ids=prompt_ids,
        )
    if bool((x[:, P:] == backend.mask_id).any()):
        raise RuntimeError("engine invariant broken: masks left after L steps")


def _scatter(values: torch.Tensor, rows: torch.Tensor | slice, batch: int) -> torch.Tensor:
    """Expand per-active-row values to the full batch, zeros for finished rows."""
    if isinstance(rows, slice):
        return values
    out = torch.zeros((batch, *values.shape[1:]), dtype=values.dtype, device=values.device)
    out[rows] = values
    return out


def _scatter_rows(feats: Features, rows: torch.Tensor | slice, batch: int) -> Features:
    return Features(*(_scatter(getattr(feats, f), rows, batch) for f in Features.__dataclass_fields__))


def run(
    backend: DLLM,
    prompts: Sequence[str | Sequence[int]],
    strategy: Strategy,
    config: EngineConfig = EngineConfig(),
    *,
    keep_records: bool = False,
) -> GenerationResult:
    """Decode to the end and return final tokens, per-row NFE and decoded texts."""
    strategy.validate(config.gen_length, config.block_length)
    prompt_ids = encode_prompts(backend, prompts, config.gen_length)
    records: list[StepRecord] = []
    last: StepRecord | None = None
    for last in generate(backend, prompt_ids, strategy, config):
        if keep_records:
            records.append(last)
    assert last is not None  # every row has gen_length >= 1 masks, so generate yields at least one step
    tokens = last.tokens.cpu()
    return GenerationResult(
        prompt_ids=prompt_ids,
        tokens=tokens,
        nfe=last.nfe.cpu(),
        steps=last.step + 1,
        texts=[decode_generation(backend, row) for row in tokens.tolist()],
        records=records,
    )


def decode_generation(backend: DLLM, ids: Sequence[int]) -> str:
    """Text of a generation, cut at the first EOS / end-of-turn (what follows is padding)."""
    ids = list(ids)
    stops = getattr(backend, "stop_ids", {backend.eos_id})
    end = next((i for i, t in enumerate(ids) if t in stops), len(ids))
    return backend.decode(ids[:end]).strip()
