"""Traces: the single interchange format between the engine, the app, evaluation and export.

A :class:`Trace` is one row of a run, step by step: what was committed where, the confidence
and top-k alternatives of every position, the policy's unmask probabilities, NFE and timing.
It is plain JSON with a schema version, validated on load, and replayable with no model.
User files are only ever parsed as JSON: never pickled, never ``torch.load``-ed.

This module holds the trace and its one builder (:class:`TraceBuilder`); a step, the limits and
the checks of a file's values live in :mod:`dllm_viz.trace_schema`, a row's random state as text
in :mod:`dllm_viz.rng`. Both are re-exported here, where users import them.
"""

from __future__ import annotations

import copy
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .blocks import check_block_length
from .rng import ROW_STATE_BYTES, encode_rng, initial_rng, state_after
from .trace_schema import (
    MAX_GEN_LENGTH,
    MAX_STEPS,
    MAX_TEXT_CHARS,
    MAX_TOKEN_ID,
    MAX_TRACE_BYTES,
    SCHEMA_VERSION,
    TokenSource,
    TraceError,
    TraceStep,
    are_token_ids,
    check_steps,
    check_vocab,
    is_int,
    parse_json,
    short_repr,
    small_dict,
)

if TYPE_CHECKING:
    import torch

    from .engine import EngineConfig, StepRecord
    from .strategies.base import Strategy


@dataclass
class Trace:
    """A whole decoding run of one prompt.

    Example:
        >>> trace = Trace.load("trace.json")  # doctest: +SKIP
        >>> trace.tokens_at(3)  # generation after step 3, mask id where still masked  # doctest: +SKIP
    """

    model: str
    prompt: str
    prompt_ids: list[int]
    gen_length: int
    block_length: int
    mask_id: int
    eos_id: int
    strategy: dict
    engine: dict
    steps: list[TraceStep]
    vocab: dict[str, str]
    text: str = ""
    meta: dict = field(default_factory=dict)
    version: int = SCHEMA_VERSION

    # ---- building ------------------------------------------------------------------------
    @classmethod
    def from_records(
        cls,
        records: Iterable[StepRecord],
        row: int,
        backend: TokenSource,
        prompt: str,
        prompt_ids: Sequence[int] | None,
        strategy: Strategy,
        config: EngineConfig,
        text: str = "",
        meta: Mapping[str, object] | None = None,
    ) -> Trace:
        """Row ``row`` of a finished run's :class:`~dllm_viz.engine.StepRecord` s as a trace
        (a :class:`TraceBuilder` fed every record; ``prompt_ids`` None: the records' own)."""
        builder = TraceBuilder(backend, prompt, strategy, config, row, prompt_ids=prompt_ids, meta=meta)
        for rec in records:
            builder.add(rec)
        return builder.trace(text)

    # ---- views of the data ---------------------------------------------------------------
    @property
    def num_steps(self) -> int:
        return len(self.steps)

    @property
    def nfe(self) -> int:
        return self.steps[-1].nfe if self.steps else 0

    def commit_step(self, upto: int | None = None) -> np.ndarray:
        """(L,) int: the 0-based step that committed each position's token on the canvas after
        ``upto`` steps (default: the end), -1 where masked. Re-masks (branch overrides) undo a
        commit, so a position committed, re-masked and committed again reports the later step."""
        out = np.full(self.gen_length, -1, dtype=np.int64)
        for i, s in enumerate(self.steps[:upto]):
            out[s.remasked()] = -1
            out[s.committed] = i
        return out

    def tokens_at(self, step: int) -> list[int]:
        """Generation after ``step`` (``-1`` = before the first step): mask id where masked."""
        out = [self.mask_id] * self.gen_length
        for s in self.steps[: step + 1]:
            for pos in s.remasked():
                out[pos] = self.mask_id
            for pos in s.committed:
                out[pos] = s.proposed[pos]
        return out

    def matrix(self, name: str) -> np.ndarray:
        """(steps, L) float32 of ``confidence`` or ``probs`` (NaN where a step has no probs)."""
        rows = [getattr(s, name) or [math.nan] * self.gen_length for s in self.steps]
        return np.asarray(rows, dtype=np.float32).reshape(len(rows), self.gen_length)

    def token_text(self, token_id: int) -> str:
        return self.vocab.get(str(int(token_id)), f"<{int(token_id)}>")

    # ---- (de)serialisation ----------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), ensure_ascii=False)

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def from_json(cls, text: str | bytes) -> Trace:
        return cls.from_dict(parse_json(text))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Trace:
        """Read and validate a trace file (size checked before reading)."""
        size = os.path.getsize(path)
        if size > MAX_TRACE_BYTES:
            raise TraceError(f"trace file is {size:,} bytes; the limit is {MAX_TRACE_BYTES:,}")
        return cls.from_json(Path(path).read_bytes())

    @classmethod
    def from_dict(cls, data: object) -> Trace:
        """A validated trace from parsed JSON. Unknown fields are dropped, and ``strategy``,
        ``engine`` and ``meta`` keep only a few short scalar entries, so an uploaded file can pin
        no more memory than its steps need."""
        if not isinstance(data, dict):
            raise TraceError("not a trace: the JSON top level must be an object")
        version = data.get("version")
        if version != SCHEMA_VERSION or isinstance(version, bool):
            raise TraceError(
                f"unsupported trace schema version {short_repr(version)}; this dllm-viz reads version {SCHEMA_VERSION}"
            )
        fields = cls.__dataclass_fields__
        required = {n for n, f in fields.items() if f.default is MISSING and f.default_factory is MISSING}
        missing = sorted(required - set(data))
        if missing:
            raise TraceError(f"not a trace: missing field(s) {missing}")
        if not isinstance(data["steps"], list):
            raise TraceError("steps must be a list")
        if len(data["steps"]) > MAX_STEPS:
            raise TraceError(f"trace has {len(data['steps']):,} steps; the limit is {MAX_STEPS:,}")
        steps = [TraceStep.from_dict(s, i) for i, s in enumerate(data["steps"])]
        values = {k: v for k, v in data.items() if k in fields}
        for name in ("strategy", "engine", "meta"):
            values[name] = small_dict(name, values.get(name, {}))
        trace = cls(**{**values, "steps": steps})
        trace.validate()
        return trace

    def validate(self) -> None:
        """Check types, shapes and ranges of every field so views can trust every index."""
        L = self.gen_length
        if not is_int(L) or not 1 <= L <= MAX_GEN_LENGTH:
            raise TraceError(f"gen_length ({short_repr(L)}) must be an integer in [1, {MAX_GEN_LENGTH}]")
        try:
            check_block_length(L, self.block_length)
        except ValueError as err:
            raise TraceError(str(err)) from None
        for name in ("mask_id", "eos_id"):
            if not is_int(getattr(self, name)) or not 0 <= getattr(self, name) < MAX_TOKEN_ID:
                raise TraceError(f"{name} must be a token id (an integer in [0, {MAX_TOKEN_ID}))")
        for name, limit in (("model", 200), ("prompt", MAX_TEXT_CHARS), ("text", MAX_TEXT_CHARS)):
            if not isinstance(getattr(self, name), str) or len(getattr(self, name)) > limit:
                raise TraceError(f"{name} must be text of at most {limit:,} characters")
        if (
            not isinstance(self.prompt_ids, list)
            or len(self.prompt_ids) > MAX_TEXT_CHARS
            or not are_token_ids(self.prompt_ids)
        ):
            raise TraceError("prompt_ids must be a list of token ids")
        check_steps(self.steps, L)
        check_vocab(self.vocab)


def strategy_header(strategy: Strategy) -> dict:
    """A trace's ``strategy`` field: the name and ``params()`` (``StrategySpec.from_dict`` reads it back)."""
    return {"name": strategy.name, **strategy.params()}


class TraceBuilder:
    """One row's trace, built as the engine's records arrive: the header once, then each step.

    Every trace comes from here: the API's runs, each Compare pane, Explore's runs and branches,
    and the branch library. Besides each record's step it keeps the row's random state (bytes
    ``[16 row, 16 row + 16)`` of :attr:`~dllm_viz.engine.StepRecord.rng_state`) on every step
    where it differs from what a reader of the trace would infer — the previous recorded state,
    or the seed's initial state of a one-row decode of the prompt — so any row of any batch
    branches exactly (:func:`rng_after`). Live views call :meth:`add` per streamed record and
    :meth:`trace` for the trace so far (token strings are looked up only for ids not seen before);
    finished runs use it through :meth:`Trace.from_records`. Steps where the row was inactive
    (already finished) are skipped.

    Example:
        >>> builder = TraceBuilder(backend, "Tom has …", strategy, config, row=0)  # doctest: +SKIP
        >>> for rec in generate(backend, ["Tom has …"], strategy, config):  # doctest: +SKIP
        ...     builder.add(rec)
        >>> builder.trace(builder.text()).save("trace.json")  # doctest: +SKIP
    """

    def __init__(
        self,
        backend: TokenSource,
        prompt: str,
        strategy: Strategy,
        config: EngineConfig,
        row: int = 0,
        *,
        prompt_ids: Sequence[int] | None = None,
        meta: Mapping[str, object] | None = None,
    ) -> None:
        self.backend, self.row = backend, row
        self.prompt_ids = None if prompt_ids is None else list(map(int, prompt_ids))
        self.header = Trace(
            model=backend.name,
            prompt=prompt,
            prompt_ids=[],
            gen_length=config.gen_length,
            block_length=config.block_length,
            mask_id=backend.mask_id,
            eos_id=backend.eos_id,
            strategy=strategy_header(strategy),
            engine=config.to_dict(),
            steps=[],
            vocab={},
            meta=dict(meta or {}),
        )
        self.steps: list[TraceStep] = []
        self.vocab: dict[str, str] = {}
        self.added: dict[str, str] = {}  # the vocabulary entries the last add/extend looked up
        self.tokens: list[int] | None = None  # the row's canvas after the last record added
        self.rng: torch.Tensor | None = None  # the row's state as the trace so far implies it
        self._overrides: list[dict] | None = None  # recorded on the next step added
        self._seen: set[int] = set()

    @classmethod
    def for_branch(
        cls,
        backend: TokenSource,
        parent: Trace,
        k: int,
        overrides: Sequence[object],
        strategy: Strategy,
        meta: Mapping[str, object] | None = None,
    ) -> TraceBuilder:
        """A branch's trace: ``parent``'s first ``k`` steps, then the records :meth:`add` gets, the
        ``overrides`` (:class:`~dllm_viz.strategies.override.Override` s) on the first of them.

        The header is the parent's (same prompt, model and engine) with the branch's strategy;
        ``meta`` gains ``at_step`` = ``k``."""
        builder = cls.__new__(cls)
        builder.backend, builder.row = backend, 0
        builder.prompt_ids = list(parent.prompt_ids)
        builder.header = replace(
            parent,
            prompt_ids=[],
            strategy=strategy_header(strategy),
            engine=dict(parent.engine),
            steps=[],
            vocab={},
            text="",
            meta={**(meta or {}), "at_step": k},
        )
        builder.steps = [copy.deepcopy(s) for s in parent.steps[:k]]
        builder.vocab = dict(parent.vocab)
        builder.added = {}
        builder.tokens = None
        builder.rng = rng_after(parent, k)
        builder._overrides = [o.to_dict() for o in overrides]  # type: ignore[attr-defined]
        builder._seen = {int(i) for i in parent.vocab}
        return builder

    @classmethod
    def mirror(cls, header: Trace) -> TraceBuilder:
        """A builder that follows one running elsewhere (the lockstep run's, in a GPU worker):
        it starts from ``header`` (that builder's :meth:`trace`) and :meth:`append` takes the
        steps and token strings that builder's :meth:`add` made and looked up."""
        builder = cls.__new__(cls)
        builder.backend, builder.row = None, 0  # type: ignore[assignment]  # it never looks a token up
        builder.prompt_ids = list(header.prompt_ids)
        builder.header = replace(header, steps=[], vocab={}, text="")
        builder.steps, builder.vocab, builder.added = list(header.steps), dict(header.vocab), {}
        builder.tokens, builder.rng, builder._overrides = None, None, None
        builder._seen = {int(i) for i in header.vocab}
        return builder

    def append(self, step: TraceStep, vocab: Mapping[str, str]) -> None:
        """Append a step another builder made, with the token strings it added (see :meth:`mirror`)."""
        self.steps.append(step)
        self.added = dict(vocab)
        self.vocab.update(self.added)
        self._seen.update(int(i) for i in vocab)

    def extend(self, steps: Iterable[TraceStep]) -> None:
        """Append already-built steps (a branch's parent's), looking up their token strings."""
        steps = list(steps)
        self.steps += steps
        self._learn(set().union(set(), *(s.token_ids() for s in steps)))

    def _learn(self, ids: set[int]) -> None:
        """Look up only ids not seen before (no per-step copy of the vocabulary)."""
        new = sorted(ids - self._seen)
        self._seen.update(new)
        self.added = dict(zip(map(str, new), self.backend.token_strings(new), strict=True))
        self.vocab.update(self.added)

    def add(self, record: StepRecord) -> TraceStep | None:
        """Append this row's step of ``record`` (None when the row was already finished)."""
        if not bool(record.active[self.row]):
            return None
        if self.prompt_ids is None:
            if not record.prompt_ids:
                raise ValueError("pass prompt_ids: this record does not carry them")
            self.prompt_ids = list(map(int, record.prompt_ids[self.row]))
        step = TraceStep.from_record(record, self.row, len(self.steps))
        if self._overrides:
            step.overrides = self._overrides
        self._overrides = None
        self._keep_rng(step, record)
        self.steps.append(step)
        self.tokens = record.tokens[self.row].tolist()
        self._learn(step.token_ids())
        return step

    def _keep_rng(self, step: TraceStep, record: StepRecord) -> None:
        """Record the row's random state on ``step`` where it differs from what the trace implies."""
        if record.rng_state is None:
            return
        if self.rng is None:
            engine = self.header.engine
            self.rng = initial_rng(engine.get("seed", 0), self.prompt_ids or [], self.header.gen_length)
        state = record.rng_state[self.row * ROW_STATE_BYTES : (self.row + 1) * ROW_STATE_BYTES].cpu()
        if not bool((state == self.rng).all()):
            step.rng, self.rng = encode_rng(state), state

    def text(self) -> str:
        """The row's generation after the last record added ("" before the first)."""
        from .engine import decode_generation  # the engine is loaded only where records are made

        return "" if self.tokens is None else decode_generation(self.backend, self.tokens)  # type: ignore[arg-type]

    def trace(self, text: str = "") -> Trace:
        """The trace so far (a new object; later steps do not change it)."""
        return replace(
            self.header,
            prompt_ids=list(self.prompt_ids or []),
            steps=list(self.steps),
            vocab=dict(self.vocab),
            text=text,
            meta=dict(self.header.meta),
        )


def rng_after(trace: Trace, k: int) -> torch.Tensor:
    """The row's random state after ``k`` steps of ``trace`` (:func:`dllm_viz.rng.state_after`)."""
    recorded = [s.rng for s in trace.steps]
    return state_after(recorded, k, trace.engine.get("seed", 0), trace.prompt_ids, trace.gen_length)
