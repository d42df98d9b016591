"""Held-out accuracy of a dLLM on verifiable problems, decoded by the project's engine.

A thin composition of :func:`dllm_viz.engine.run` (decoding) and
:meth:`dllm_viz.tasks.Problem.check` (checking); it is what training's periodic eval,
``dllm_viz.eval`` sweeps and the model card's evaluation all call, so they measure the same
thing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..engine import EngineConfig, Plan, run_prepared
from ..strategies.base import Strategy
from ..tasks.answers import extract_answer
from ..tasks.problem import Problem

if TYPE_CHECKING:
    from ..backends import DLLM


@dataclass
class SolveReport:
    """Outcome of decoding a list of problems.

    Attributes:
        n: number of problems.
        correct: per problem, whether the final answer matched.
        nfe: per problem, forward passes used.
        texts: per problem, the decoded generation (cut at the first EOS).
        seconds: wall time of the decoding.
    """

    n: int
    correct: list[bool] = field(default_factory=list)
    nfe: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def accuracy(self) -> float:
        return sum(self.correct) / self.n

    @property
    def mean_nfe(self) -> float:
        return sum(self.nfe) / self.n

    @property
    def no_answer(self) -> float:
        """Fraction of generations that never state a ``#### N`` (e.g. cut short by an early EOS)."""
        return sum(extract_answer(t) is None for t in self.texts) / self.n

    def subset(self, keep: Sequence[bool]) -> SolveReport:
        """The report of the problems where ``keep`` is true (``seconds`` stays the whole run's time:
        the problems were decoded together, so their time cannot be split)."""
        if len(keep) != self.n or not any(keep):
            raise ValueError(f"keep must flag 1 … {self.n} of the {self.n} problems (got {sum(keep)} of {len(keep)})")
        picked = [i for i, k in enumerate(keep) if k]
        return SolveReport(
            n=len(picked),
            correct=[self.correct[i] for i in picked],
            nfe=[self.nfe[i] for i in picked],
            texts=[self.texts[i] for i in picked],
            seconds=self.seconds,
        )

    @classmethod
    def interleave(cls, shards: Sequence[SolveReport]) -> SolveReport:
        """The report of all problems from each rank's report of ``problems[rank::world]`` (the inverse
        of :meth:`dllm_viz.rl.distributed.Processes.shard`, ``world = len(shards)``). The shards were
        decoded at the same time, so ``seconds`` is the slowest one's."""
        world, n = len(shards), sum(s.n for s in shards)
        if not shards or any(s.n != len(range(r, n, world)) for r, s in enumerate(shards)):
            sizes = [s.n for s in shards]
            raise ValueError(f"shards must hold problems[r::{world}] of {n} problems (got sizes {sizes})")
        report = cls(n=n, seconds=max(s.seconds for s in shards))
        for name in ("correct", "nfe", "texts"):
            merged: list = [None] * n
            for r, shard in enumerate(shards):
                merged[r::world] = getattr(shard, name)
            setattr(report, name, merged)
        return report

    def summary(self) -> dict:
        return {
            "n": self.n,
            "accuracy": self.accuracy,
            "mean_nfe": self.mean_nfe,
            "no_answer": self.no_answer,
            "seconds": self.seconds,
        }


def solve(
    backend: DLLM,
    problems: Sequence[Problem],
    strategy: Strategy,
    config: EngineConfig,
    batch_size: int = 64,
) -> SolveReport:
    """Decode every problem's question with ``strategy`` and check the answers.

    Args:
        backend: a loaded backend (``dllm_viz.backends.load_backend`` or ``MaskedLMBackend``).
        problems: the problems; ``question`` is the prompt, ``answer`` the gold number.
        strategy: the unmasking strategy.
        config: engine settings (L, BL, temperature, seed).
        batch_size: prompts decoded together (rows finish independently; NFE is per row).
    """
    if not problems:
        raise ValueError("problems must not be empty")
    if batch_size < 1:
        raise ValueError(f"batch_size ({batch_size}) must be ≥ 1")
    plan = Plan(strategy, config)  # the strategy checked once, for every batch
    report = SolveReport(n=len(problems))
    start = time.perf_counter()
    for i in range(0, len(problems), batch_size):
        chunk = problems[i : i + batch_size]
        result = run_prepared(backend, plan.prepare(backend, [p.question for p in chunk]))
        report.texts += result.texts
        report.nfe += result.nfe.tolist()
        report.correct += [p.check(text) for text, p in zip(result.texts, chunk, strict=True)]
    report.seconds = time.perf_counter() - start
    return report
