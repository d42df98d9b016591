"""Branching a decode: continue a recorded run from any step, with a user's overrides.

A branch is (parent trace, ``k`` = steps of the parent kept, overrides, strategy). Its state is
the parent's canvas after ``k`` steps — rebuilt from the trace, so a loaded file branches as well
as a live run — with re-masked positions masked again; the engine continues from there
(:class:`~dllm_viz.engine.DecodeStart`) with the same config and random stream, and the strategy
wrapped in :class:`~dllm_viz.strategies.override.OverrideStrategy` for forced and held-back
positions. Continuing with no override reproduces the parent from step ``k`` token for token.

The branch's trace (:meth:`~dllm_viz.trace.TraceBuilder.for_branch`) is the parent's first ``k``
steps followed by its own, the overrides recorded in its first own step, so views compare it with
the parent step for step and :func:`replay` re-runs it exactly.

Example:
    >>> from dllm_viz.backends import load_backend  # doctest: +SKIP
    >>> parent = Trace.load("run.json")  # doctest: +SKIP
    >>> child = run_branch(backend, parent, 3, [Override(5, "force", token=17)], strategy)  # doctest: +SKIP
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, TypeGuard, cast

import torch

from .engine import DecodeStart, EngineConfig, Plan, StepRecord, decode_steps
from .rng import decode_rng
from .strategies.base import Strategy
from .strategies.override import ACTIONS, Override, OverrideStrategy
from .strategies.registry import is_stochastic
from .trace import Trace, TraceBuilder, rng_after, short_repr

if TYPE_CHECKING:
    from .backends import DLLM

MAX_OVERRIDES = 64  # per branch; a person clicks a handful, a script has no reason for more

# Overrides as callers pass them: Override objects or {position, action, token} dicts (checked here).
OverridesIn = Sequence[Override | Mapping[str, Any]] | None


class BranchError(ValueError):
    """An override or branch point does not fit the run; the message names it and says why."""


@dataclass(frozen=True)
class CanvasState:
    """A single-row decode state rebuilt from a trace.

    Attributes:
        tokens: (L,) token ids after the steps, mask id where masked.
        nfe: forward passes spent. block_step: steps spent in the current block.
        step: the number of steps applied (the next step's index).
    """

    tokens: list[int]
    nfe: int
    block_step: int
    step: int


def engine_config_of(trace: Trace) -> EngineConfig:
    """The :class:`EngineConfig` a trace was decoded with (its ``engine`` dict), checked."""
    names = {f.name for f in fields(EngineConfig)}
    try:
        return EngineConfig(**{k: v for k, v in trace.engine.items() if k in names})
    except (TypeError, ValueError) as err:
        raise BranchError(f"the run's engine settings cannot be reused: {err}") from None


def _current_block(tokens: list[int], mask_id: int, block_length: int) -> int | None:
    first = next((i for i, t in enumerate(tokens) if t == mask_id), None)
    return None if first is None else first // block_length


def state_after(trace: Trace, k: int, remask: Iterable[int] = ()) -> CanvasState:
    """The decode state after ``k`` steps of ``trace``, with ``remask`` positions masked again.

    Mirrors the engine's accounting: a row's block step counts the steps spent in its current
    block and returns to 0 when the block is done, or when a re-mask moves the decode back to an
    earlier block.
    """
    L, BL, mask = trace.gen_length, trace.block_length, trace.mask_id
    tokens, block_step = [mask] * L, 0

    def apply_remask(positions: Iterable[int]) -> None:
        nonlocal block_step
        positions = list(positions)
        if not positions:
            return
        before = _current_block(tokens, mask, BL)
        for p in positions:
            tokens[p] = mask
        if _current_block(tokens, mask, BL) != before:
            block_step = 0

    for s in trace.steps[:k]:
        apply_remask(s.remasked())
        for p in s.committed:
            tokens[p] = s.proposed[p]
        block = range(s.block * BL, min((s.block + 1) * BL, L))
        block_step = 0 if all(tokens[p] != mask for p in block) else block_step + 1
    apply_remask(remask)
    return CanvasState(tokens, trace.steps[k - 1].nfe if k else 0, block_step, k)


def lacks_random_state(trace: Trace) -> bool:
    """True when ``trace`` drew random numbers (sampled tokens, a stochastic strategy) but kept no
    RNG state (e.g. a Compare export): a branch of it then starts a fresh stream from the seed, so
    even without overrides its future may differ from the recorded one."""
    stochastic = is_stochastic(str(trace.strategy.get("name")))
    sampled = trace.engine.get("temperature", 0) not in (0, 0.0, None) or stochastic
    return sampled and all(s.rng is None or decode_rng(s.rng) is None for s in trace.steps)


# ---- checking overrides ---------------------------------------------------------------------------


def parse_overrides(raw: object, gen_length: int) -> tuple[Override, ...]:
    """Overrides from a UI or API value: a list of ``{"position", "action", "token"}`` dicts (or
    :class:`Override` s). Checks types and ranges only; :func:`check_overrides` checks them against
    the state."""
    if raw is None:
        return ()
    if not isinstance(raw, (list, tuple)):
        raise BranchError(f"overrides must be a list of {{position, action, token}} objects, not {type(raw).__name__}")
    if len(raw) > MAX_OVERRIDES:
        raise BranchError(f"{len(raw)} overrides; a branch takes at most {MAX_OVERRIDES}")
    out = []
    for i, item in enumerate(raw):
        if isinstance(item, Override):
            item = item.to_dict()
        if not isinstance(item, dict):
            raise BranchError(
                f"override {i} must be an object with position, action and token, not {type(item).__name__}"
            )
        unknown = sorted(map(str, set(item) - {"position", "action", "token"}))
        if unknown:
            raise BranchError(
                f"override {i} has unknown field(s) {short_repr(unknown)}; it takes position, action, token"
            )
        position, action, token = item.get("position"), item.get("action", "force"), item.get("token")
        if not _whole(position):
            raise BranchError(f"override {i}: position must be an integer, not {short_repr(position)}")
        if not 0 <= int(position) < gen_length:
            raise BranchError(
                f"override {i}: position {int(position)} is out of range: the generation has positions "
                f"0–{gen_length - 1}"
            )
        if action not in ACTIONS:
            raise BranchError(f"override {i}: action {short_repr(action)} must be one of {', '.join(ACTIONS)}")
        if token is not None:
            if action != "force":
                raise BranchError(f"override {i}: only a forced commit takes a token ({action} does not)")
            if not _whole(token):
                raise BranchError(
                    f"override {i}: token must be a token id (an integer) or null, not {short_repr(token)}"
                )
            token = int(token)
        out.append(Override(int(position), action, token))
    return tuple(out)


def _whole(value: object) -> TypeGuard[int | float]:
    return not isinstance(value, bool) and (isinstance(value, int) or (isinstance(value, float) and value.is_integer()))


def check_overrides(trace: Trace, k: object, overrides: object, *, vocab_size: int) -> tuple[Override, ...]:
    """Overrides that fit the state after ``k`` steps of ``trace``, or a :class:`BranchError`
    naming the override and the rule it breaks. Runs before any model call.

    Rules: ``k`` is a step of the run (0 … its steps); one override per position, except a re-mask
    plus a force (to force a different token where one is committed) or a hold; only committed positions are
    re-masked; only masked positions of the current block (after re-masks) are forced or held
    back; a forced token is a known id other than the mask; something must be left to decode,
    and holds may not block every eligible position.
    """
    L, mask = trace.gen_length, trace.mask_id
    if not _whole(k) or k < 0:
        raise BranchError(f"step must be a whole number ≥ 0, not {short_repr(k)}")
    k = int(k)
    if k > trace.num_steps:
        raise BranchError(
            f"step {k} is past the end of the run: it has {trace.num_steps} steps (branch after 0–{trace.num_steps})"
        )
    overrides = parse_overrides(overrides, L)
    by_pos: dict[int, list[str]] = {}
    for o in overrides:
        by_pos.setdefault(o.position, []).append(o.action)
    for pos, actions in by_pos.items():
        if len(actions) > 1 and sorted(actions) not in (["force", "remask"], ["hold", "remask"]):
            raise BranchError(
                f"position {pos} has overrides {', '.join(actions)}; give one per position (or a "
                "re-mask plus a force or a hold)"
            )
    before = state_after(trace, k)
    for o in overrides:
        if o.action == "remask" and before.tokens[o.position] == mask:
            raise BranchError(
                f"position {o.position} is still masked after step {k}; only committed positions can be re-masked"
            )
    state = state_after(trace, k, [o.position for o in overrides if o.action == "remask"])
    block = _current_block(state.tokens, mask, trace.block_length)
    if block is None:
        raise BranchError(
            f"nothing is left to decode after step {k}: every position is committed; re-mask a position to branch here"
        )
    eligible = [p for p, t in enumerate(state.tokens) if t == mask and p // trace.block_length == block]
    for o in overrides:
        if o.action != "remask":
            _check_one(trace, k, o, state.tokens, block, eligible, vocab_size)
    held = {o.position for o in overrides if o.action == "hold"}
    if held and held >= set(eligible):
        raise BranchError(
            f"holding back every eligible position ({', '.join(map(str, sorted(held)))}) leaves nothing "
            f"to commit at step {k + 1}; hold fewer positions or force one"
        )
    return overrides


def _check_one(
    trace: Trace, k: int, o: Override, tokens: list[int], block: int, eligible: list[int], vocab_size: int
) -> None:
    """A force or a hold against the canvas after step ``k`` (re-masks applied)."""
    mask = trace.mask_id
    verb = "forced" if o.action == "force" else "held back"
    if tokens[o.position] != mask:
        committed = tokens[o.position]
        if o.action == "force":
            raise BranchError(
                f"position {o.position} is already committed to {trace.token_text(committed)!r} "
                f"(token id {committed}) after step {k}; to force another token there, re-mask it "
                "in the same branch (a 'remask' and a 'force' override on that position)"
            )
        raise BranchError(
            f"position {o.position} is already committed after step {k}; only masked positions can be held back"
        )
    if o.position // trace.block_length != block:
        raise BranchError(
            f"position {o.position} is in block {o.position // trace.block_length}, but after step "
            f"{k} the decode is in block {block}: only masked positions of the current block "
            f"(positions {eligible[0]}–{eligible[-1]}) can be {verb}"
        )
    if o.token is not None and not 0 <= o.token < vocab_size:
        raise BranchError(f"token id {o.token} is unknown: the model's vocabulary has ids 0–{vocab_size - 1}")
    if o.token == mask:
        raise BranchError(
            f"token id {o.token} is the mask token; to keep position {o.position} masked, hold it back instead"
        )


def vocab_size(backend: DLLM) -> int:
    """Number of token ids the backend scores (its logits' width)."""
    size = getattr(backend, "vocab_size", None)
    if size is None:
        model = getattr(backend, "model", None)
        size = getattr(getattr(model, "config", None), "vocab_size", None)
    if size is None:
        size = len(cast(Sized, backend.tokenizer))  # DLLM leaves the tokenizer's type open
    return int(size)


def check_backend(trace: Trace, backend: DLLM) -> None:
    """The backend must be the kind of model the trace was decoded with (mask and EOS ids)."""
    if (backend.mask_id, backend.eos_id) != (trace.mask_id, trace.eos_id):
        raise BranchError(
            f"this run was decoded with a model whose mask/EOS ids are {trace.mask_id}/{trace.eos_id} "
            f"({short_repr(trace.model)}); the selected model's are {backend.mask_id}/{backend.eos_id}"
        )


# ---- running a branch -----------------------------------------------------------------------------


def start_after(trace: Trace, k: int, overrides: Sequence[Override], device: torch.device | None = None) -> DecodeStart:
    """The engine's start state after ``k`` steps of ``trace`` with the re-masks applied."""
    state = state_after(trace, k, [o.position for o in overrides if o.action == "remask"])
    return DecodeStart(
        tokens=torch.tensor([state.tokens], dtype=torch.long, device=device),
        nfe=torch.tensor([state.nfe], dtype=torch.long, device=device),
        block_step=torch.tensor([state.block_step], dtype=torch.long, device=device),
        step=k,
        rng_state=rng_after(trace, k),
    )


def branch(backend: DLLM, parent: Trace, k: int, overrides: OverridesIn, strategy: Strategy) -> Iterator[StepRecord]:
    """Continue ``parent`` after ``k`` steps with ``overrides`` and ``strategy`` (any strategy;
    the parent's to see the effect of the overrides alone). Everything is checked before the
    first forward pass; the engine config and random stream are the parent's."""
    return _continue(backend, branch_point(backend, parent, k, overrides), strategy)


@dataclass(frozen=True)
class BranchPoint:
    """Where a branch starts: ``parent`` after ``k`` steps with ``overrides``, checked together
    once, with the parent's settings and the backend (:func:`branch_point`)."""

    parent: Trace
    k: int
    overrides: tuple[Override, ...]


def branch_point(backend: DLLM, parent: Trace, k: object, overrides: object) -> BranchPoint:
    """The branch point, checked before a forward pass (the strategy is checked with the start,
    in :func:`_continue`); :func:`start_at` runs it without checking it again."""
    engine_config_of(parent)  # refuses settings no EngineConfig accepts
    check_backend(parent, backend)
    checked = check_overrides(parent, k, overrides, vocab_size=vocab_size(backend))
    return BranchPoint(parent, int(cast(float, k)), checked)  # k: a whole number, checked


def _continue(backend: DLLM, point: BranchPoint, strategy: Strategy) -> Iterator[StepRecord]:
    config = engine_config_of(point.parent)
    start = start_after(point.parent, point.k, point.overrides, backend.device)
    wrapped = OverrideStrategy(strategy, point.overrides, at_nfe=int(start.nfe[0]), gen_length=config.gen_length)
    # Checked here, before the first forward pass: the wrapper validates the strategy it wraps.
    return decode_steps(backend, Plan(wrapped, config).prepare(backend, [point.parent.prompt_ids], start))


class Recording:
    """A decode whose trace is built as it runs: iterate for the number of steps recorded so
    far (one item per step), then :meth:`trace`; :meth:`close` cancels the decode."""

    def __init__(self, records: Iterator[StepRecord], builder: TraceBuilder):
        self.records, self.builder = records, builder

    def __iter__(self) -> Iterator[int]:
        try:
            for rec in self.records:
                self.builder.add(rec)
                yield len(self.builder.steps)
        finally:
            self.close()

    def close(self) -> None:
        close = getattr(self.records, "close", None)
        if close is not None:
            close()

    def trace(self) -> Trace:
        return self.builder.trace(self.builder.text())

    def finish(self) -> Trace:
        """Run to the end and return the trace."""
        for _ in self:
            pass
        return self.trace()


def start_run(
    backend: DLLM, prompt: str, strategy: Strategy, config: EngineConfig, meta: dict | None = None
) -> Recording:
    """A decode of ``prompt`` from scratch that records a trace which branches exactly."""
    prepared = Plan(strategy, config).prepare(backend, [prompt])
    builder = TraceBuilder(backend, prompt, strategy, config, prompt_ids=prepared.prompt_ids[0], meta=meta)
    return Recording(decode_steps(backend, prepared), builder)


def start_branch(
    backend: DLLM, parent: Trace, k: int, overrides: OverridesIn, strategy: Strategy, meta: dict | None = None
) -> Recording:
    """:func:`branch` recording the branch's trace: ``parent``'s first ``k`` steps, then its own,
    the overrides on its first own step and ``meta["at_step"]`` = ``k``."""
    return start_at(backend, branch_point(backend, parent, k, overrides), strategy, meta)


def start_at(backend: DLLM, point: BranchPoint, strategy: Strategy, meta: dict | None = None) -> Recording:
    """:func:`start_branch` from a checked :class:`BranchPoint` (its checks are not repeated)."""
    builder = TraceBuilder.for_branch(backend, point.parent, point.k, point.overrides, strategy, meta)
    return Recording(_continue(backend, point, strategy), builder)


def record_run(backend: DLLM, prompt: str, strategy: Strategy, config: EngineConfig, meta: dict | None = None) -> Trace:
    """Decode ``prompt`` from scratch into a trace that branches exactly (RNG kept where it moved)."""
    return start_run(backend, prompt, strategy, config, meta).finish()


def run_branch(
    backend: DLLM, parent: Trace, k: int, overrides: OverridesIn, strategy: Strategy, meta: dict | None = None
) -> Trace:
    """:func:`branch` to the end, as the branch's trace (see :func:`start_branch`)."""
    return start_branch(backend, parent, k, overrides, strategy, meta).finish()


def replay(backend: DLLM, trace: Trace, strategy: Strategy) -> Trace:
    """Re-run a branch from its recorded branch point (``meta["at_step"]``) and overrides; with
    the same strategy the result equals ``trace`` token for token."""
    k = trace.meta.get("at_step")
    if not _whole(k) or not 0 <= k <= trace.num_steps:
        raise BranchError("this trace is not a branch (its meta has no valid at_step)")
    k = int(k)
    history = copy.copy(trace)
    history.steps = trace.steps[:k]
    overrides = trace.steps[k].overrides if k < trace.num_steps else None
    return run_branch(backend, history, k, overrides or [], strategy, meta=trace.meta)
