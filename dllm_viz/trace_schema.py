"""A trace's steps and what a valid trace file is: the limits, :class:`TraceStep`, bounded JSON.

A trace file comes from a user as often as from this package, so every value is checked for type,
shape and range before a view indexes with it (:meth:`TraceStep.from_dict`, :meth:`TraceStep.check`;
:meth:`dllm_viz.trace.Trace.validate` checks the header and calls them). Files are only ever parsed
as JSON (:func:`parse_json`, bounded before and during parsing).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import MISSING, dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    import torch

    from .engine import StepRecord

SCHEMA_VERSION = 1
MAX_TRACE_BYTES = 32 * 1024 * 1024  # 256 steps × 256 positions × top-5 is ~6 MB; leave room
MAX_GEN_LENGTH = 4096
MAX_STEPS = 2 * MAX_GEN_LENGTH + 2  # a run takes ≤ L steps; a branch that re-masks may add L + 1
MAX_ENTROPY = 64.0  # nats: log of a vocabulary far beyond any real one (log 126k ≈ 11.7)
_DIGITS = 4  # confidences are stored rounded; plenty for a heatmap, 4x smaller than full floats
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

    # ---- checks of a step read from a file -------------------------------------------------
    @classmethod
    def from_dict(cls, data: object, i: int) -> TraceStep:
        """Step ``i`` of a trace file: its fields present and its counters and timings in range
        (the lists are checked against the trace's length by :meth:`check`)."""
        if not isinstance(data, dict):
            raise TraceError(f"step {i}: each step must be a JSON object")
        fields = cls.__dataclass_fields__
        missing = sorted(n for n, f in fields.items() if f.default is MISSING and n not in data)
        if missing:
            raise TraceError(f"step {i}: missing field(s) {missing}")
        step = cls(**{k: v for k, v in data.items() if k in fields})
        if not all(is_int(getattr(step, n)) and 0 <= getattr(step, n) < MAX_TOKEN_ID for n in _STEP_INTS):
            raise TraceError(f"step {i}: step, nfe and block must be non-negative integers")
        if not all(_is_number(getattr(step, n)) and getattr(step, n) >= 0 for n in ("model_ms", "step_ms")):
            raise TraceError(f"step {i}: model_ms and step_ms must be non-negative numbers")
        return step

    def check(self, where: str, L: int, committed: set[int]) -> None:
        """Check this step of a trace of length ``L`` (``where`` names it in messages) against
        ``committed``, the positions committed by the steps before, which it then updates."""
        for name in ("confidence", "proposed", "topk_ids", "topk_probs") + tuple(
            n for n in ("probs", "entropy") if getattr(self, n) is not None
        ):
            value = getattr(self, name)
            if not isinstance(value, list) or len(value) != L:
                raise TraceError(f"{where}: {name} must be a list of {L} entries")
        if not isinstance(self.committed, list) or not all(is_int(p) and 0 <= p < L for p in self.committed):
            raise TraceError(f"{where}: committed positions must be integers in [0, {L})")
        self._check_overrides(where, L, committed)
        committed -= set(self.remasked())
        if committed & set(self.committed):
            raise TraceError(f"{where}: position(s) {sorted(committed & set(self.committed))[:10]} committed twice")
        committed |= set(self.committed)
        self._check_values(where)

    def _check_values(self, where: str) -> None:
        """Probabilities, entropies and token ids in range; top-k rows of one length."""
        if not _probs(self.confidence):
            raise TraceError(f"{where}: confidence values must be numbers in [0, 1]")
        if self.probs is not None and not _probs(self.probs):
            raise TraceError(f"{where}: probs values must be numbers in [0, 1]")
        if self.entropy is not None and not _entropies(self.entropy):
            raise TraceError(f"{where}: entropy values must be numbers in [0, {MAX_ENTROPY:g}] (nats)")
        if not are_token_ids(self.proposed):
            raise TraceError(f"{where}: proposed must hold integer token ids")
        k = len(self.topk_ids[0]) if isinstance(self.topk_ids[0], list) else -1
        if not 0 <= k <= MAX_TOPK or any(
            not isinstance(r, list) or len(r) != k for r in self.topk_ids + self.topk_probs
        ):
            raise TraceError(f"{where}: topk_ids/topk_probs rows must be lists of the same length (at most {MAX_TOPK})")
        if not all(are_token_ids(r) for r in self.topk_ids) or not all(_probs(r) for r in self.topk_probs):
            raise TraceError(f"{where}: topk_ids must hold token ids and topk_probs numbers in [0, 1]")

    def _check_overrides(self, where: str, L: int, committed: set[int]) -> None:
        """The recorded overrides and RNG state: shapes, ranges, and re-masks of committed positions only."""
        if self.rng is not None and (
            not isinstance(self.rng, str) or len(self.rng) > MAX_RNG_CHARS or not set(self.rng) <= _B64
        ):
            raise TraceError(f"{where}: rng must be base64 text of at most {MAX_RNG_CHARS} characters")
        if self.overrides is None:
            return
        if not isinstance(self.overrides, list) or len(self.overrides) > L:
            raise TraceError(f"{where}: overrides must be a list of at most {L} entries")
        for o in self.overrides:
            if not isinstance(o, dict) or set(o) != {"position", "action", "token"}:
                raise TraceError(f"{where}: each override must be an object with position, action and token")
            if not is_int(o["position"]) or not 0 <= o["position"] < L:
                raise TraceError(f"{where}: override positions must be integers in [0, {L})")
            if o["action"] not in OVERRIDE_ACTIONS:
                raise TraceError(
                    f"{where}: override action {short_repr(o['action'])} must be one of {', '.join(OVERRIDE_ACTIONS)}"
                )
            if o["token"] is not None and (
                o["action"] != "force" or not is_int(o["token"]) or not 0 <= o["token"] < MAX_TOKEN_ID
            ):
                raise TraceError(f"{where}: an override token must be a token id, and only a forced commit has one")
            if o["action"] == "remask" and o["position"] not in committed:
                raise TraceError(f"{where}: position {o['position']} is re-masked but was not committed")


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


def check_steps(steps: list[TraceStep], L: int) -> None:
    """The number of steps (at most L, plus L + 1 per branch point) and each step (:meth:`TraceStep.check`)."""
    branch_points = sum(1 for s in steps if s.overrides)
    if len(steps) > L + branch_points * (L + 1):
        more = f" plus {L + 1} per branch point ({branch_points})" if branch_points else ""
        raise TraceError(f"trace has {len(steps)} steps, more than gen_length ({L}){more}")
    committed: set[int] = set()
    for i, s in enumerate(steps):
        s.check(f"step {i}", L, committed)


def check_vocab(vocab: object) -> None:
    """A trace's token strings: a bounded dict of short strings."""
    if (
        not isinstance(vocab, dict)
        or len(vocab) > MAX_VOCAB
        or not all(isinstance(v, str) and len(v) <= 200 for v in vocab.values())
    ):
        raise TraceError(f"vocab must map at most {MAX_VOCAB:,} token ids to strings of at most 200 characters")


def small_dict(name: str, value: object) -> dict[str, object]:
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


def is_int(value: object) -> bool:
    """An int and not a bool (JSON ``true`` parses to a bool, which is an int subclass)."""
    return type(value) is int


def _is_number(value: object) -> bool:
    return (type(value) is int or type(value) is float) and math.isfinite(value)


def are_token_ids(values: object) -> bool:
    """A list of integers in [0, MAX_TOKEN_ID)."""
    return isinstance(values, list) and all(type(v) is int and 0 <= v < MAX_TOKEN_ID for v in values)


def _entropies(values: object) -> bool:
    return isinstance(values, list) and all(
        (type(v) is float or type(v) is int) and 0 <= v <= MAX_ENTROPY for v in values
    )


def _probs(values: object) -> bool:
    return isinstance(values, list) and all((type(v) is float or type(v) is int) and 0 <= v <= 1 for v in values)


def short_repr(value: object) -> str:
    """``repr`` cut to 40 characters, for quoting a bad value in a message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _rounded(t: torch.Tensor) -> list:
    return np.round(t.float().cpu().numpy().astype(np.float64), _DIGITS).tolist()
