"""Unmasking strategies: heuristics and (in ``learned``) the RL policy, one interface, one registry."""

from __future__ import annotations

from typing import Any

from .base import Decision, DecodeState, Strategy
from .registry import HEURISTICS, POLICY, REGISTRY, StrategyInfo, StrategySpec, control_params, resolve_policy
from .schema import Param, schema


def build_strategy(name: str, **params: Any) -> Strategy:
    """A heuristic strategy by registry name, e.g. ``build_strategy("threshold", threshold=0.8)``.

    Shorthand for ``StrategySpec(name, params).build()``; a policy needs
    ``StrategySpec("policy", params, policy=<folder>)``.

    Raises:
        ValueError: unknown name (the message lists the known ones) or unknown parameter.
    """
    return StrategySpec(name, params).build()


__all__ = [
    "Decision",
    "DecodeState",
    "Strategy",
    "HEURISTICS",
    "POLICY",
    "REGISTRY",
    "Param",
    "StrategyInfo",
    "StrategySpec",
    "build_strategy",
    "control_params",
    "resolve_policy",
    "schema",
]
