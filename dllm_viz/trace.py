"""Traces: the single interchange format between the engine, the app, evaluation and export.

A :class:`Trace` is one row of a run, step by step: what was committed where, the confidence
and top-k alternatives of every position, the policy's unmask probabilities, NFE and timing.
It is plain JSON with a schema version, validated on load, and replayable with no model.
User files are only ever parsed as JSON: never pickled, never ``torch.load``-ed.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .blocks import check_block_length
from .rng import STATE_FIELDS

if TYPE_CHECKING:
    import torch

    from .engine import EngineConfig, StepRecord
    from .strategies.base import Strategy

SCHEMA_VERSION = 1
MAX_TRACE_BYTES = 32 * 1024 * 1024  # 256 steps × 256 positions × top-5 is ~6 MB; leave room
MAX_GEN_LENGTH = 4096
MAX_STEPS = 2 * MAX_GEN_LENGTH + 2  # a run takes ≤ L steps; a branch that re-masks may add L + 1
MAX_ENTROPY = 64.0  # nats: log of a vocabulary far beyond any real one (log 126k ≈ 11.7)
_DIGITS = 4  # confidences are stored rounded; plenty for a heatmap, 4x smaller than full floats


class TraceError(ValueError):
    """A trace file is not valid; the message says which field and why."""


class TokenSource(Protocol):
    """What :meth:`Trace.from_records` reads of a backend (a :class:`~dllm_viz.backends.DLLM`,
    or the app's cache of its token strings)."""

    name: str
    mask_id: int
    eos_id: int

    def token_strings(self, ids: Sequence[int]) -> list[str]: ...


@dataclass
class TraceStep:
    """One denoising step of one row.

    Attributes:
        step: 0-based index. nfe: forward passes used after this step. block: current block.
        committed: positions committed at this step (sorted).
        confidence: (L,) max-prob per position at this step.
        proposed: (L,) candidate token per position.
        topk_ids, topk_probs: (L, k) alternatives per position, descending.
        probs: (L,) policy unmask probabilities, or None for heuristics.
        entropy: (L,) entropy of each position's distribution in nats (what EB-Sampler and an
            entropy-input policy read), or None in traces written before it was recorded.
        model_ms, step_ms: forward time and whole-step time in milliseconds.
        overrides: the user's overrides applied at this step (the first step of a branch), as
            ``{"position", "action", "token"}`` dicts (:class:`~dllm_viz.strategies.override.Override`);
            ``"remask"`` ones took effect before the step, so a position may be committed again.
            None for an ordinary step.
        rng: base64 of the row's random state after this step (its 16 bytes of
            :attr:`~dllm_viz.engine.StepRecord.rng_state`), kept only where it differs from what
            the steps before imply (None: unchanged), so a branch from any step continues the
            row's random stream exactly (:func:`rng_after`).
    """

    step: int
    nfe: int
    block: int
    committed: list[int]
    confidence: list[float]
    proposed: list[int]
    topk_ids: list[list[int]]
    topk_probs: list[list[float]]
    probs: list[float] | None = None
    entropy: list[float] | None = None
    model_ms: float = 0.0
    step_ms: float = 0.0
    overrides: list[dict] | None = None
    rng: str | None = None

    @classmethod
    def from_record(cls, rec: StepRecord, row: int, index: int) -> TraceStep:
        """Row ``row`` of an engine :class:`~dllm_viz.engine.StepRecord` as step ``index`` (O(L·k) numbers move)."""
        f = rec.features
        return cls(
            step=index,
            nfe=int(rec.nfe[row]),
            block=int(rec.block[row]),
            committed=rec.committed[row].nonzero().squeeze(1).tolist(),
            confidence=_rounded(f.confidence[row]),
            proposed=rec.proposed[row].tolist(),
            topk_ids=f.topk_ids[row].tolist(),
            topk_probs=_rounded(f.topk_probs[row]),
            probs=None if rec.probs is None else _rounded(rec.probs[row]),
            entropy=_rounded(f.entropy[row]),
            model_ms=round(rec.model_ms, 3),
            step_ms=round(rec.step_ms, 3),
        )

    def token_ids(self) -> set[int]:
        """Every token id this step mentions (proposals and alternatives), for a trace's vocab."""
        return {int(i) for i in self.proposed} | {int(i) for r in self.topk_ids for i in r}

    def remasked(self) -> list[int]:
        """Positions re-masked just before this step."""
        return [o["position"] for o in self.overrides or () if o.get("action") == "remask"]


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
        steps = [_step(s, i) for i, s in enumerate(data["steps"])]
        values = {k: v for k, v in data.items() if k in fields}
        for name in ("strategy", "engine", "meta"):
            values[name] = _small_dict(name, values.get(name, {}))
        trace = cls(**{**values, "steps": steps})
        trace.validate()
        return trace

    def validate(self) -> None:
        """Check types, shapes and ranges of every field so views can trust every index."""
        L = self.gen_length
        if not _is_int(L) or not 1 <= L <= MAX_GEN_LENGTH:
            raise TraceError(f"gen_length ({short_repr(L)}) must be an integer in [1, {MAX_GEN_LENGTH}]")
        try:
            check_block_length(L, self.block_length)
        except ValueError as err:
            raise TraceError(str(err)) from None
        for name in ("mask_id", "eos_id"):
            if not _is_int(getattr(self, name)) or not 0 <= getattr(self, name) < MAX_TOKEN_ID:
                raise TraceError(f"{name} must be a token id (an integer in [0, {MAX_TOKEN_ID}))")
        for name, limit in (("model", 200), ("prompt", MAX_TEXT_CHARS), ("text", MAX_TEXT_CHARS)):
            if not isinstance(getattr(self, name), str) or len(getattr(self, name)) > limit:
                raise TraceError(f"{name} must be text of at most {limit:,} characters")
        if not isinstance(self.prompt_ids, list) or len(self.prompt_ids) > MAX_TEXT_CHARS or not _ids(self.prompt_ids):
            raise TraceError("prompt_ids must be a list of token ids")
        branch_points = sum(1 for s in self.steps if s.overrides)
        if len(self.steps) > L + branch_points * (L + 1):
            more = f" plus {L + 1} per branch point ({branch_points})" if branch_points else ""
            raise TraceError(f"trace has {len(self.steps)} steps, more than gen_length ({L}){more}")
        seen: set[int] = set()
        for i, s in enumerate(self.steps):
            where = f"step {i}"
            for name in ("confidence", "proposed", "topk_ids", "topk_probs") + tuple(
                n for n in ("probs", "entropy") if getattr(s, n) is not None
            ):
                value = getattr(s, name)
                if not isinstance(value, list) or len(value) != L:
                    raise TraceError(f"{where}: {name} must be a list of {L} entries")
            if not isinstance(s.committed, list) or not all(_is_int(p) and 0 <= p < L for p in s.committed):
                raise TraceError(f"{where}: committed positions must be integers in [0, {L})")
            _check_overrides(s, where, L, seen)
            seen -= set(s.remasked())
            if seen & set(s.committed):
                raise TraceError(f"{where}: position(s) {sorted(seen & set(s.committed))[:10]} committed twice")
            seen |= set(s.committed)
            if not _probs(s.confidence):
                raise TraceError(f"{where}: confidence values must be numbers in [0, 1]")
            if s.probs is not None and not _probs(s.probs):
                raise TraceError(f"{where}: probs values must be numbers in [0, 1]")
            if s.entropy is not None and not _entropies(s.entropy):
                raise TraceError(f"{where}: entropy values must be numbers in [0, {MAX_ENTROPY:g}] (nats)")
            if not _ids(s.proposed):
                raise TraceError(f"{where}: proposed must hold integer token ids")
            k = len(s.topk_ids[0]) if isinstance(s.topk_ids[0], list) else -1
            if not 0 <= k <= MAX_TOPK or any(not isinstance(r, list) or len(r) != k for r in s.topk_ids + s.topk_probs):
                raise TraceError(
                    f"{where}: topk_ids/topk_probs rows must be lists of the same length (at most {MAX_TOPK})"
                )
            if not all(_ids(r) for r in s.topk_ids) or not all(_probs(r) for r in s.topk_probs):
                raise TraceError(f"{where}: topk_ids must hold token ids and topk_probs numbers in [0, 1]")
        if (
            not isinstance(self.vocab, dict)
            or len(self.vocab) > MAX_VOCAB
            or not all(isinstance(v, str) and len(v) <= 200 for v in self.vocab.values())
        ):
            raise TraceError(f"vocab must map at most {MAX_VOCAB:,} token ids to strings of at most 200 characters")


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


ROW_STATE_BYTES = STATE_FIELDS * 8  # one row's key and draw count (dllm_viz.rng)


def encode_rng(state: torch.Tensor) -> str:
    """A row's random state as the base64 text a :class:`TraceStep` keeps."""
    return base64.b64encode(state.cpu().numpy().tobytes()).decode("ascii")


def decode_rng(encoded: str) -> torch.Tensor | None:
    """A :class:`TraceStep`'s ``rng`` as a row's state (None: recorded by a version with one
    shared generator, which this engine cannot continue)."""
    import torch

    state = torch.frombuffer(bytearray(base64.b64decode(encoded)), dtype=torch.uint8)
    return state if state.numel() == ROW_STATE_BYTES else None


def initial_rng(seed: int, prompt_ids: Sequence[int], gen_length: int) -> torch.Tensor:
    """The random state a one-row decode of ``prompt_ids`` with ``seed`` starts from."""
    from .rng import RowRNG

    return RowRNG.for_prompts(seed, [prompt_ids], "cpu", gen_length).get_state()


def rng_after(trace: Trace, k: int) -> torch.Tensor:
    """The row's random state after ``k`` steps of ``trace``.

    The last state recorded in its first ``k`` steps; with none there, no draw has happened yet,
    so the state is the row's key with zero draws — the key of any state recorded later (a row
    whose key is not a one-row decode's records its state at step 0), else the seed's initial
    state. States written by a version with one shared generator are not continued."""
    recorded = [s.rng for s in trace.steps[:k] if s.rng is not None]
    state = decode_rng(recorded[-1]) if recorded else None
    if state is None and not recorded:
        later = (decode_rng(s.rng) for s in trace.steps[k:] if s.rng is not None)
        state = next((s for s in later if s is not None), None)
        if state is not None:
            state = state.clone()
            state[ROW_STATE_BYTES // STATE_FIELDS :] = 0  # (key, draws) as int64: the same key, no draw yet
    if state is None:
        state = initial_rng(trace.engine.get("seed", 0), trace.prompt_ids, trace.gen_length)
    return state


MAX_TOKEN_ID = 2**31  # token ids become int32/int64 arrays in the views
MAX_RNG_CHARS = 8192  # base64 of a CPU generator state (5,056 bytes); a CUDA one is 16 bytes
OVERRIDE_ACTIONS = ("force", "hold", "remask")
_B64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
MAX_TEXT_CHARS = 200_000
MAX_TOPK = 64
MAX_VOCAB = 300_000
MAX_JSON_OBJECTS = 4 * MAX_GEN_LENGTH + 64  # one per step and a few more per trace; two traces in a pair
_STEP_INTS = ("step", "nfe", "block")
_SMALL_DICT_ENTRIES = 32


def parse_json(raw: str | bytes) -> Any:
    """Parsed JSON of an uploaded trace or comparison, bounded before and during parsing.

    A trace holds about one JSON object per step; counting ``{`` first refuses a file made of
    millions of tiny objects (each costs ~64 bytes of memory for 2 bytes of file) before it is parsed.
    """
    if len(raw) > MAX_TRACE_BYTES:
        raise TraceError(f"trace is {len(raw):,} bytes; the limit is {MAX_TRACE_BYTES:,}")
    objects = raw.count(b"{") if isinstance(raw, bytes) else raw.count("{")
    if objects > MAX_JSON_OBJECTS:
        raise TraceError(
            f"not a trace: {objects:,} JSON objects, while a trace has one per step (at most {MAX_JSON_OBJECTS:,})"
        )
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise TraceError(f"not a trace: the file is not valid JSON ({err})") from None
    except RecursionError:
        raise TraceError("not a trace: the JSON is nested too deeply") from None


def _step(data: object, i: int) -> TraceStep:
    if not isinstance(data, dict):
        raise TraceError(f"step {i}: each step must be a JSON object")
    fields = TraceStep.__dataclass_fields__
    missing = sorted(n for n, f in fields.items() if f.default is MISSING and n not in data)
    if missing:
        raise TraceError(f"step {i}: missing field(s) {missing}")
    step = TraceStep(**{k: v for k, v in data.items() if k in fields})
    if not all(_is_int(getattr(step, n)) and 0 <= getattr(step, n) < MAX_TOKEN_ID for n in _STEP_INTS):
        raise TraceError(f"step {i}: step, nfe and block must be non-negative integers")
    if not all(_is_number(getattr(step, n)) and getattr(step, n) >= 0 for n in ("model_ms", "step_ms")):
        raise TraceError(f"step {i}: model_ms and step_ms must be non-negative numbers")
    return step


def _check_overrides(s: TraceStep, where: str, L: int, committed: set) -> None:
    """A step's recorded overrides and RNG state: shapes, ranges, and re-masks of committed positions only."""
    if s.rng is not None and (not isinstance(s.rng, str) or len(s.rng) > MAX_RNG_CHARS or not set(s.rng) <= _B64):
        raise TraceError(f"{where}: rng must be base64 text of at most {MAX_RNG_CHARS} characters")
    if s.overrides is None:
        return
    if not isinstance(s.overrides, list) or len(s.overrides) > L:
        raise TraceError(f"{where}: overrides must be a list of at most {L} entries")
    for o in s.overrides:
        if not isinstance(o, dict) or set(o) != {"position", "action", "token"}:
            raise TraceError(f"{where}: each override must be an object with position, action and token")
        if not _is_int(o["position"]) or not 0 <= o["position"] < L:
            raise TraceError(f"{where}: override positions must be integers in [0, {L})")
        if o["action"] not in OVERRIDE_ACTIONS:
            raise TraceError(
                f"{where}: override action {short_repr(o['action'])} must be one of {', '.join(OVERRIDE_ACTIONS)}"
            )
        if o["token"] is not None and (
            o["action"] != "force" or not _is_int(o["token"]) or not 0 <= o["token"] < MAX_TOKEN_ID
        ):
            raise TraceError(f"{where}: an override token must be a token id, and only a forced commit has one")
        if o["action"] == "remask" and o["position"] not in committed:
            raise TraceError(f"{where}: position {o['position']} is re-masked but was not committed")


def _small_dict(name: str, value: object) -> dict[str, object]:
    """At most a few short scalar entries of a free-form dict; the rest is dropped."""
    if not isinstance(value, dict):
        raise TraceError(f"{name} must be a JSON object")
    out: dict[str, object] = {}
    for key, item in value.items():
        if len(out) == _SMALL_DICT_ENTRIES:
            break
        if len(key) <= 64 and (
            item is None or isinstance(item, bool) or _is_number(item) or (isinstance(item, str) and len(item) <= 200)
        ):
            out[key] = item
    return out


def _is_int(value: object) -> bool:
    return type(value) is int


def _is_number(value: object) -> bool:
    return (type(value) is int or type(value) is float) and math.isfinite(value)


def _ids(values: object) -> bool:
    return isinstance(values, list) and all(type(v) is int and 0 <= v < MAX_TOKEN_ID for v in values)


def _entropies(values: object) -> bool:
    return isinstance(values, list) and all(
        (type(v) is float or type(v) is int) and 0 <= v <= MAX_ENTROPY for v in values
    )


def _probs(values: object) -> bool:
    return isinstance(values, list) and all((type(v) is float or type(v) is int) and 0 <= v <= 1 for v in values)


def short_repr(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _rounded(t: torch.Tensor) -> list:
    return np.round(t.float().cpu().numpy().astype(np.float64), _DIGITS).tolist()
