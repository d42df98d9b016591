"""One registry for every strategy — heuristics and learned policies — and the spec that names one.

A :class:`StrategySpec` (registry name + parameters, or ``"policy"`` + a policy folder, hub id or
shipped name) is what the CLI, the evaluation grid, the app's panes and a saved trace all hold;
:meth:`StrategySpec.build` is the one place a strategy object is made, and
:meth:`StrategySpec.from_dict` reads a trace's ``strategy`` header back into a spec. Each
strategy's parameters are declared once, on its dataclass fields (:func:`param`), and
:func:`schema` turns them into :class:`Param` records (name, type, range, default, help) from which
the app builds its controls and the CLI its flags.

Example:
    >>> spec = StrategySpec.parse("threshold", threshold=0.8)
    >>> spec.key, spec.build().params()
    ('heuristic:threshold', {'threshold': 0.8})
    >>> StrategySpec.from_dict({"name": "threshold", "threshold": 0.8}) == spec
    True
    >>> [p.name for p in REGISTRY["eb"].params]
    ['gamma']
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..policy import DiTConfidencePolicy
from .base import Strategy
from .heuristics import (
    EBMaxProb,
    EBSampler,
    EntropyK,
    FastDLLMFactor,
    FastDLLMThreshold,
    HighConfidenceK,
    MarginK,
    RandomK,
)
from .learned import LearnedPolicy, LearnedPolicyConfig
from .schema import Param, schema

POLICY = "policy"  # the registry name of a learned policy (its traces say ``"learned"``)
_TRACE_NAMES = {LearnedPolicy.name: POLICY}


@dataclass(frozen=True)
class StrategyInfo:
    """A registry entry: how the app, CLI and reports name and describe a strategy."""

    name: str
    label: str  # a picker's entry, e.g. "Fast-dLLM threshold λ"
    caption: str  # one line: what it commits at each step
    params: tuple[Param, ...]
    stochastic: bool  # draws from the generator (so a sweep repeats it over seeds)
    build: Callable[..., Strategy]

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise ValueError(f"strategy {self.name!r} has no parameter {name!r}; it takes {[p.name for p in self.params]}")


def _heuristic(cls: Any) -> StrategyInfo:
    return StrategyInfo(cls.name, cls.label, cls.caption, schema(cls), cls.stochastic, cls)


HEURISTICS: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (RandomK, HighConfidenceK, FastDLLMThreshold, FastDLLMFactor, MarginK, EntropyK, EBSampler, EBMaxProb)
}
REGISTRY: dict[str, StrategyInfo] = {
    info.name: info
    for info in (
        *map(_heuristic, HEURISTICS.values()),
        StrategyInfo(
            POLICY,
            "learned policy",
            LearnedPolicy.caption,
            schema(LearnedPolicyConfig),
            True,
            LearnedPolicy,
        ),
    )
}


def control_params() -> tuple[Param, ...]:
    """Every non-advanced parameter of the registry, first declaration of each name: the app's controls."""
    seen: dict[str, Param] = {}
    for info in REGISTRY.values():
        for p in info.params:
            if not p.advanced:
                seen.setdefault(p.name, p)
    return tuple(seen.values())


def info(name: str) -> StrategyInfo:
    """The registry entry for ``name`` (ValueError listing the known names)."""
    try:
        return REGISTRY[_TRACE_NAMES.get(name, name)]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; known: {', '.join(sorted(REGISTRY))}") from None


def is_stochastic(name: str) -> bool:
    """Whether the strategy a trace names draws random numbers (False for names not in the registry)."""
    entry = REGISTRY.get(_TRACE_NAMES.get(name, name))
    return entry is not None and entry.stochastic


def resolve_policy(source: str | os.PathLike) -> str:
    """A policy folder, a shipped policy's name (``assets/policies/<name>``) or a hub id, as something
    ``from_pretrained`` loads (FileNotFoundError naming the shipped ones when it is none of them)."""
    from ..assets import shipped_policies

    text = str(source)
    if os.path.isdir(text):
        return text
    shipped = shipped_policies()
    if text in shipped:
        return str(shipped[text])
    if text.count("/") == 1 and not text.startswith((".", "/", "~")) and not os.path.exists(text):
        return text  # a hub id: ``owner/name``
    raise FileNotFoundError(
        f"no policy folder, shipped policy or hub id {text!r}; shipped: {', '.join(shipped) or 'none'}"
    )


@dataclass(frozen=True)
class StrategySpec:
    """A strategy by name: a heuristic and its parameters, or a learned policy and where it lives.

    Attributes:
        name: a :data:`REGISTRY` name (``"threshold"``, …, or ``"policy"``).
        params: the strategy's parameters (a policy's are its sampling settings, τ_π, β, mode);
            omitted ones take the defaults. Checked and typed against the schema on creation.
        policy: for ``"policy"``: a folder, a shipped policy's name or a hub id.
        label: a family name for reports (a sweep groups Pareto fronts by it); default ``name``.
    """

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    policy: str | None = None
    label: str = ""

    def __post_init__(self) -> None:
        entry = info(self.name)
        object.__setattr__(self, "name", entry.name)
        if not isinstance(self.params, Mapping):
            raise ValueError(f"strategy parameters must be a mapping, not {type(self.params).__name__}")
        names = [p.name for p in entry.params]
        unknown = sorted(set(map(str, self.params)) - set(names))
        if unknown:
            raise ValueError(f"strategy {entry.name!r} has no parameter(s) {unknown}; it takes {names}")
        typed = {str(k): entry.param(str(k)).coerce(v) for k, v in self.params.items()}
        object.__setattr__(self, "params", typed)
        if (entry.name == POLICY) != (self.policy is not None):
            raise ValueError(
                "a learned policy needs `policy` (a folder, shipped name or hub id)"
                if entry.name == POLICY
                else f"`policy` ({self.policy!r}) is only for name='policy', not {entry.name!r}"
            )
        if self.policy is not None:
            object.__setattr__(self, "policy", str(self.policy))

    @classmethod
    def parse(cls, text: str, **params: Any) -> StrategySpec:
        """``"threshold"``, ``"heuristic:threshold"`` or ``"policy:<folder | shipped name | hub id>"``."""
        if not isinstance(text, str) or not text:
            raise ValueError(f"strategy ({text!r}) must be a name like 'threshold' or 'policy:<folder>'")
        kind, sep, rest = text.partition(":")
        if sep and kind == POLICY:
            return cls(POLICY, params, policy=rest or None)
        if sep and kind == "heuristic":
            if rest == POLICY:
                raise ValueError("'heuristic:policy' is not a heuristic; use 'policy:<folder>'")
            return cls(rest, params)
        return cls(text, params)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StrategySpec:
        """The spec of a trace's ``strategy`` header (``{"name": …, **strategy.params()}``).

        A policy rebuilds only when its trace records where it was loaded from (``policy_source``;
        ``path`` in traces written before 2026-12).
        """
        data = dict(data)
        entry = info(str(data.pop("name", "")))
        legacy = data.pop("path", None)
        policy = data.pop("policy_source", legacy)
        names = {p.name for p in entry.params}
        if entry.name == POLICY and policy is None:
            raise ValueError("this policy was not loaded from a folder or hub id, so it cannot be rebuilt")
        return cls(entry.name, {k: v for k, v in data.items() if k in names}, policy=policy)

    @property
    def info(self) -> StrategyInfo:
        return REGISTRY[self.name]

    @property
    def key(self) -> str:
        """``"heuristic:<name>"`` or ``"policy:<source>"``: the app's picker value."""
        return f"{POLICY}:{self.policy}" if self.name == POLICY else f"heuristic:{self.name}"

    @property
    def family(self) -> str:
        return self.label or self.name

    @property
    def stochastic(self) -> bool:
        """Whether it draws random numbers; at token temperature 0 nothing else differs between seeds."""
        return self.info.stochastic

    def describe(self) -> str:
        """Parameters as text; a policy's folder name comes first, so policies sharing a label stay apart."""
        parts = [Path(self.policy).name] if self.policy else []
        parts += [f"{k}={v}" for k, v in self.params.items() if k != "mode"]
        return ", ".join(parts) or "default"

    @property
    def title(self) -> str:
        """A pane heading: the strategy's label (or the policy's name) and the parameters set."""
        base = f"policy {Path(self.policy).name}" if self.policy else self.info.label
        shown = ", ".join(f"{k}={v}" for k, v in self.params.items() if v is not None)
        return base + (f" ({shown})" if shown else "")

    def build(self, load_policy: Callable[[str], Any] | None = None) -> Strategy:
        """The strategy object. ``load_policy(source) -> network`` lets a caller cache networks
        (the app keeps them per device); by default the policy loads with ``from_pretrained``.

        A policy records ``self.policy`` as given (a shipped name stays a name), not the folder it
        resolved to, so a trace names no server path and rebuilds on any machine that has it.
        """
        if self.name != POLICY:
            return self.info.build(**self.params)
        assert self.policy is not None  # checked in __post_init__
        source = resolve_policy(self.policy)
        network = DiTConfidencePolicy.from_pretrained(source) if load_policy is None else load_policy(source)
        return LearnedPolicy(network, source=self.policy, **self.params)
