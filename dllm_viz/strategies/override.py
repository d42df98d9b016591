"""A user's what-if overrides as a strategy wrapper: force-commit a position, or hold one back.

The wrapped strategy still makes every decision; at one step of each row (the row whose NFE
count before the step equals ``at_nfe``, i.e. the first step of a branch) the wrapper

* hides held-back positions from the strategy (it decides as if they were not eligible) and
  tells the engine not to commit them, not even by its fallback (``Decision.hold``);
* adds force-committed positions to whatever the strategy chose, with the user's token where one
  was given (``Decision.tokens``), else the model's own proposal.

Re-masking is not a decision: the engine never re-masks, so a re-masked position is masked in
the start canvas of the branch (:func:`dllm_viz.branch.start_after`). Checks that an override
fits the state (a masked position of the current block, a known token) live there too, before
any model call; this module only applies them.

Example:
    >>> from dllm_viz.strategies import build_strategy
    >>> s = OverrideStrategy(build_strategy("threshold"), [Override(3, "force", token=7)], at_nfe=4, gen_length=8)
    >>> s.name, s.params()
    ('threshold', {'threshold': 0.9})
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .base import Decision, DecodeState, Strategy

ACTIONS = ("force", "hold", "remask")


@dataclass(frozen=True)
class Override:
    """One user decision at a branch point.

    Attributes:
        position: 0-based generation position.
        action: ``"force"`` (commit it at the branch's first step), ``"hold"`` (not eligible at
            that step) or ``"remask"`` (make a committed position masked again before that step).
        token: for ``"force"``, the token id to commit, or None for the model's own proposal.
    """

    position: int
    action: str
    token: int | None = None

    def to_dict(self) -> dict:
        return {"position": self.position, "action": self.action, "token": self.token}


class OverrideStrategy:
    """``inner`` with ``overrides`` applied at the step where a row has spent ``at_nfe`` NFE.

    Stateless between steps like every strategy: the step is recognised from the decode state.
    ``name``, ``params`` and ``validate`` are the inner strategy's, so traces name what decided;
    the overrides are recorded in the trace step they applied to.
    """

    def __init__(self, inner: Strategy, overrides: Sequence[Override], at_nfe: int, gen_length: int) -> None:
        self.inner = inner
        self.overrides = tuple(overrides)
        self.at_nfe = at_nfe
        force = torch.zeros(gen_length, dtype=torch.bool)
        hold = torch.zeros(gen_length, dtype=torch.bool)
        tokens = torch.full((gen_length,), -1, dtype=torch.long)
        for o in self.overrides:
            if o.action == "force":
                force[o.position] = True
                if o.token is not None:
                    tokens[o.position] = o.token
            elif o.action == "hold":
                hold[o.position] = True
        self._force, self._hold, self._tokens = force, hold, tokens  # (L,) each

    @property
    def name(self) -> str:
        return self.inner.name

    def params(self) -> dict:
        return self.inner.params()

    def validate(self, gen_length: int, block_length: int) -> None:
        if gen_length != self._force.numel():
            raise ValueError(f"overrides were built for gen_length {self._force.numel()}, not {gen_length}")
        self.inner.validate(gen_length, block_length)

    def decide(self, state: DecodeState) -> Decision:
        due = (state.nfe == self.at_nfe).unsqueeze(1)  # (B, 1) rows at their branch step
        if not bool(due.any()):
            return self.inner.decide(state)
        device = state.eligible.device
        hold = self._hold.to(device) & due  # (B, L)
        force = self._force.to(device) & due & state.eligible
        held = bool(hold.any())
        decision = self.inner.decide(dataclasses.replace(state, eligible=state.eligible & ~hold) if held else state)
        tokens = torch.where(force, self._tokens.to(device), torch.full_like(state.tokens, -1))
        return dataclasses.replace(
            decision,
            unmask=(decision.unmask & ~hold) | force,
            tokens=tokens if bool((tokens >= 0).any()) else None,
            hold=hold if held else None,
        )
