"""A strategy in its own file, as the strategy recipe of docs/architecture.md writes one; it
imports nothing of the app, so a fresh interpreter can register it before the app is imported."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from dllm_viz.strategies import Decision, DecodeState, StrategyInfo, schema
from dllm_viz.strategies.schema import param


@dataclass(frozen=True)
class LeftmostRun:
    """Commit, left to right, the eligible positions whose entropy is at most a cap, up to the
    first one above it; always the leftmost (a left-to-right reader that waits when unsure)."""

    entropy_cap: float = field(
        default=0.5,
        metadata=param("commit left to right while the entropy stays under this", low=0, high=5, symbol="η"),
    )
    name = "leftmost"
    label = "Leftmost run η"
    caption = "commits masked positions left to right while their entropy ≤ η (at least one per step)"
    stochastic = False

    def validate(self, gen_length, block_length):
        if not 0 <= self.entropy_cap:
            raise ValueError(f"entropy_cap ({self.entropy_cap}) must be ≥ 0")

    def decide(self, state: DecodeState) -> Decision:
        sure = state.eligible & (state.features.entropy <= self.entropy_cap)
        before_unsure = torch.cumsum((state.eligible & ~sure).long(), 1) == 0
        leftmost = state.eligible & (torch.cumsum(state.eligible.long(), 1) == 1)
        return Decision((sure & before_unsure) | leftmost)

    def params(self):
        return asdict(self)


def registry_entry(cls) -> StrategyInfo:
    """What ``strategies/registry.py`` makes of each class listed in ``HEURISTICS``."""
    return StrategyInfo(cls.name, cls.label, cls.caption, schema(cls), cls.stochastic, cls)
