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

import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from .backends.hf import has_kv_cache
from .blocks import default_block_length as default_block_length  # re-exported: callers import it here
from .blocks import setting_label as setting_label  # re-exported
from .engine_types import DecodeStart, EngineConfig, GenerationResult, Plan, Prepared, StepRecord
from .engine_types import encode_prompts as encode_prompts  # re-exported
from .features import Features, compute_features, propose_tokens, restrict_top_k
from .rng import RowRNG
from .strategies.base import Decision, DecodeState, Strategy, top_k_mask

if TYPE_CHECKING:
    from .backends import DLLM
    from .models.cache import PrefixKVCache


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

    Stop iterating at any time to cancel; nothing is left running. Everything is checked before
    the first forward pass (:class:`Plan`, :meth:`Plan.prepare`); a caller that checked already
    runs its :class:`Prepared` with :func:`decode_steps`.

    Args:
        start: continue from this state (canvas, NFE, block progress, RNG) instead of the fully
            masked canvas; None decodes from scratch. A row may then need one step more than its
            masks (a held-back step), so the loop allows L + 1 steps.
    """
    yield from decode_steps(backend, Plan(strategy, config).prepare(backend, prompts, start))


def decode_steps(backend: DLLM, prepared: Prepared) -> Generator[StepRecord, None, None]:
    """The denoising loop over a checked decode: one :class:`StepRecord` per step."""
    strategy, config = prepared.plan.strategy, prepared.plan.config
    batch = _Batch.setup(backend, prepared)
    # Every step commits ≥ 1 token or advances a block towards its forced end, so L iterations
    # always suffice (L + 1 from a start: a held-back step may commit nothing).
    for step in range(batch.first, batch.first + batch.limit):
        t0 = time.perf_counter()
        where = batch.locate()
        if where is None:
            break
        logits = batch.forward(where)
        model_ms = (time.perf_counter() - t0) * 1e3
        state = batch.propose(where, logits)
        del logits
        decision = strategy.decide(state)
        action, commit, tokens = _commit_mask(decision, state, config)
        batch.commit(where, state, commit, tokens)
        yield batch.record(step, where, state, decision, (action, commit, tokens), (t0, model_ms))
    if bool((batch.x[:, batch.P :] == backend.mask_id).any()):
        raise RuntimeError("engine invariant broken: masks left after L steps")


@dataclass
class _Where:
    """Where a step acts: which rows still have masks, their current block and its masked positions."""

    masked: torch.Tensor  # (B, L) bool, masked before the step
    active: torch.Tensor  # (B,) bool, rows with masks left (they pay an NFE)
    block: torch.Tensor  # (B,) int64, each row's current block
    eligible: torch.Tensor  # (B, L) bool, masked positions of the current block
    rows: torch.Tensor | slice  # the active rows: a slice (a view, no copy) while all are active


@dataclass
class _Batch:
    """A decode's batch as it runs: the canvas (left-padded prompts, then L positions), each row's
    random stream, NFE and steps in its block, and the prefix cache where one is used."""

    backend: DLLM
    config: EngineConfig
    prompt_ids: list[list[int]]
    x: torch.Tensor  # (B, P + L) int64
    attention: torch.Tensor | None  # (B, P + L) 0 on left padding; None without padding
    P: int
    rng: RowRNG
    nfe: torch.Tensor  # (B,) int64
    block_step: torch.Tensor  # (B,) int64
    positions: torch.Tensor  # (L,) 0 … L-1
    block_of_pos: torch.Tensor  # (L,) each position's block, made once per decode
    cache: PrefixKVCache | None = None
    first: int = 0
    limit: int = 0

    @classmethod
    def setup(cls, backend: DLLM, prepared: Prepared) -> _Batch:
        """The all-mask canvas after the prompts, or ``prepared.start``'s state."""
        config, prompt_ids, device = prepared.plan.config, prepared.prompt_ids, backend.device
        B, P, L = len(prompt_ids), max(map(len, prompt_ids)), config.gen_length
        x = torch.full((B, P + L), backend.mask_id, dtype=torch.long, device=device)
        padding = torch.ones((B, P + L), dtype=torch.long, device=device)
        for b, ids in enumerate(prompt_ids):
            pad = P - len(ids)
            x[b, :pad] = backend.pad_id
            padding[b, :pad] = 0
            x[b, pad:P] = torch.tensor(ids, device=device)
        counts = torch.zeros(B, dtype=torch.long, device=device)
        batch = cls(
            backend, config, prompt_ids, x,
            None if bool(padding.all()) else padding,  # None lets the model take its unmasked attention path
            P, RowRNG.for_prompts(config.seed, prompt_ids, device, L), counts, counts.clone(),
            torch.arange(L, device=device), torch.arange(L, device=device) // config.block_length, limit=L,
        )  # fmt: skip
        if config.cache == "prefix" and has_kv_cache(backend):  # Plan.prepare refuses a cache without one
            from .models.cache import PrefixKVCache  # imports transformers; only runs that use it pay

            batch.cache = PrefixKVCache(B, P + L, P, config.block_length, backend.logit_shift)
        if prepared.start is not None:
            batch.restore(prepared.start)
        return batch

    def restore(self, start: DecodeStart) -> None:
        """Continue from ``start``: its canvas, counts and random streams; one step more allowed."""
        device = self.backend.device
        self.x[:, self.P :] = start.tokens.to(device)
        self.nfe, self.block_step = start.nfe.to(device).clone(), start.block_step.to(device).clone()
        if start.rng_state is not None:
            try:
                self.rng.set_state(start.rng_state)
            except ValueError as err:
                raise ValueError(f"start.rng_state does not fit this batch: {err}") from None
        self.first, self.limit = start.step, self.config.gen_length + 1

    def locate(self) -> _Where | None:
        """This step's rows and eligible positions (None: every row is done)."""
        L, BL, positions = self.config.gen_length, self.config.block_length, self.positions
        masked = self.x[:, self.P :] == self.backend.mask_id
        active = masked.any(1)
        if not bool(active.any()):
            return None
        first_masked = torch.where(masked, positions, L).amin(1)
        block = (first_masked // BL).clamp(max=self.config.num_blocks - 1)
        eligible = masked & (self.block_of_pos == block.unsqueeze(1))
        rows = slice(None) if bool(active.all()) else active.nonzero().squeeze(1)
        return _Where(masked, active, block, eligible, rows)

    def forward(self, where: _Where) -> torch.Tensor:
        """The model's logits over the generation positions of the active rows, ``(b, L, V)``
        (a window from the earliest block start with the cache), [MASK] and all but the top
        ``candidate_top_k`` tokens excluded."""
        rows, P, backend = where.rows, self.P, self.backend
        attn = None if self.attention is None else self.attention[rows]
        if self.cache is None or not has_kv_cache(backend):  # a cache is made only for a backend with one
            logits = backend.logits(self.x[rows], attn)[:, P:]  # (b, L, V) stays on device
        else:  # a window from the earliest block start: (b, L - g0, V) for generation positions g0…L-1
            self.cache.plan(rows, where.block[rows])
            logits = backend.logits(self.x[rows], attn, kv_cache=self.cache)[:, max(0, P - self.cache.start) :]
        with torch.inference_mode():
            logits[..., backend.mask_id] = float("-inf")  # [MASK] is never a prediction
            if self.config.candidate_top_k is not None:
                logits = restrict_top_k(logits, self.config.candidate_top_k)
        _sync(self.x.device)
        return logits

    def propose(self, where: _Where, logits: torch.Tensor) -> DecodeState:
        """Features and candidate tokens of the active rows: what the strategy decides from."""
        rows, config = where.rows, self.config
        feats = compute_features(logits, config.top_k)
        draws = self.rng.rows(rows)
        tokens, token_prob = propose_tokens(logits, feats, config.temperature, draws)
        if self.cache is not None:
            feats, tokens, token_prob = self.cache.assemble(feats, tokens, token_prob)
        return DecodeState(
            features=feats,
            tokens=tokens,
            token_prob=token_prob,
            masked=where.masked[rows],
            eligible=where.eligible[rows],
            block_step=self.block_step[rows],
            nfe=self.nfe[rows],
            gen_length=config.gen_length,
            block_length=config.block_length,
            generator=draws,
        )

    def commit(self, where: _Where, state: DecodeState, commit: torch.Tensor, tokens: torch.Tensor) -> None:
        """Write the committed tokens; count an NFE per active row; move finished blocks on."""
        rows, P = where.rows, self.P
        self.x[rows, P:] = torch.where(commit, tokens, self.x[rows, P:])
        self.nfe[rows] += 1
        block_done = ~(state.eligible & ~commit).any(1)
        step = self.block_step[rows]
        self.block_step[rows] = torch.where(block_done, torch.zeros_like(step), step + 1)
        _sync(self.x.device)

    def record(
        self,
        step: int,
        where: _Where,
        state: DecodeState,
        decision: Decision,
        made: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        times: tuple[float, float],
    ) -> StepRecord:
        """The step for every row of the batch (zeros for finished rows); ``made`` is
        (action, commit, tokens), ``times`` (step start, forward ms)."""
        (action, commit, tokens), (t0, model_ms), rows = made, times, where.rows
        B = self.x.shape[0]
        return StepRecord(
            step=step,
            active=where.active,
            nfe=self.nfe.clone(),
            block=where.block,
            masked=where.masked,
            eligible=where.eligible,
            features=_scatter_rows(state.features, rows, B),
            proposed=_scatter(tokens, rows, B),
            token_prob=_scatter(state.token_prob, rows, B),
            action=_scatter(action, rows, B),
            committed=_scatter(commit, rows, B),
            tokens=self.x[:, self.P :].clone(),
            probs=None if decision.probs is None else _scatter(decision.probs, rows, B),
            log_prob=None if decision.log_prob is None else _scatter(decision.log_prob, rows, B),
            model_ms=model_ms,
            step_ms=(time.perf_counter() - t0) * 1e3,
            rng_state=self.rng.get_state(),
            prompt_ids=self.prompt_ids,
        )


def _commit_mask(
    decision: Decision, state: DecodeState, config: EngineConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(action, commit, tokens): the strategy's choice within the eligible positions, what is
    committed (with the argmax fallback or a block's forced end) and the tokens to write."""
    # A held-back position is not committable this step, by anyone.
    allowed = state.eligible if decision.hold is None else state.eligible & ~decision.hold
    action = decision.unmask & allowed
    commit = action.clone()
    if config.fallback and not decision.allow_empty:
        empty = ~commit.any(1)
        if bool(empty.any()):
            commit |= top_k_mask(state.token_prob, allowed, empty.long())
    else:
        commit |= allowed & (state.block_step >= config.block_length - 1).unsqueeze(1)
    tokens = state.tokens
    if decision.tokens is not None:  # a forced token replaces the proposal where it is committed
        tokens = torch.where(commit & (decision.tokens >= 0), decision.tokens, tokens)
    return action, commit, tokens


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
    return run_prepared(backend, Plan(strategy, config).prepare(backend, prompts), keep_records=keep_records)


def run_prepared(backend: DLLM, prepared: Prepared, *, keep_records: bool = False) -> GenerationResult:
    """:func:`run` of a checked decode (:meth:`Plan.prepare`), e.g. one batch of a plan's many."""
    records: list[StepRecord] = []
    last: StepRecord | None = None
    for last in decode_steps(backend, prepared):
        if keep_records:
            records.append(last)
    assert last is not None  # every row has gen_length >= 1 masks, so generate yields at least one step
    tokens = last.tokens.cpu()
    return GenerationResult(
        prompt_ids=prepared.prompt_ids,
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
