"""Unmasking strategies: heuristics and (in ``learned``) the RL policy, one interface."""

from __future__ import annotations

import inspect
from typing import Any

from .base import Decision, DecodeState, Strategy
from .heuristics import (
    EBSampler,
    EntropyK,
    FastDLLMFactor,
    FastDLLMThreshold,
    HighConfidenceK,
    MarginK,
    RandomK,
)

HEURISTICS: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (RandomK, HighConfidenceK, FastDLLMThreshold, FastDLLMFactor, MarginK, EntropyK, EBSampler)
}


def build_strategy(name: str, **params: Any) -> Strategy:
    """A heuristic strategy by registry name, e.g. ``build_strategy("threshold", threshold=0.8)``.

    Raises:
        ValueError: unknown name (the message lists the known ones) or unknown parameter.
    """
    try:
        cls = HEURISTICS[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; known: {', '.join(sorted(HEURISTICS))}") from None
    fields = set(inspect.signature(cls).parameters)  # the dataclass fields
    unknown = set(params) - fields
    if unknown:
        raise ValueError(f"strategy {name!r} has no parameter(s) {sorted(unknown)}; it takes {sorted(fields)}")
    return cls(**params)


__all__ = ["Decision", "DecodeState", "Strategy", "HEURISTICS", "build_strategy"]
