"""Paired bootstrap confidence intervals for accuracy differences.

Two strategies decoded on the same problems are paired: a problem that is hard for one is
usually hard for the other, so resampling *problems* (not runs) and differencing within each
resample gives an interval far tighter, and more honest, than comparing two independent
binomial intervals. Seeds of a stochastic strategy are averaged per problem first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BOOTSTRAP_SAMPLES = 10_000


@dataclass(frozen=True)
class Difference:
    """``a − b`` in accuracy points, with its 95 % paired-bootstrap interval."""

    points: float
    low: float
    high: float

    @property
    def significant(self) -> bool:
        """Whether the 95 % interval excludes 0."""
        return self.low > 0 or self.high < 0

    def __str__(self) -> str:
        return f"{self.points:+.1f} points (95 % CI {self.low:+.1f} … {self.high:+.1f})"


def per_problem(correct_strings: Sequence[str]) -> np.ndarray:
    """Mean correctness per problem over seeds, from runs' ``"0110…"`` strings."""
    if not correct_strings or any(len(s) != len(correct_strings[0]) for s in correct_strings):
        raise ValueError("runs must be a non-empty list of equally long correctness strings")
    return np.mean([[c == "1" for c in s] for s in correct_strings], axis=0)


def paired_difference(a: np.ndarray, b: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> Difference:
    """Accuracy of ``a`` minus ``b`` (per-problem scores in [0, 1]) with a 95 % percentile interval.

    >>> d = paired_difference(np.ones(200), np.zeros(200))
    >>> (d.points, d.low, d.high, d.significant)
    (100.0, 100.0, 100.0, True)
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or not len(a):
        raise ValueError(f"paired scores must be two equally long vectors (got {a.shape} and {b.shape})")
    diff = a - b
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(samples, len(diff)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return Difference(100 * float(diff.mean()), 100 * float(low), 100 * float(high))
