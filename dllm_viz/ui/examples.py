"""Prompt examples with known answers, from the built-in task's held-out split."""

from __future__ import annotations

from functools import lru_cache

KNOWN_ANSWER_POOL = 300  # held-out problems per level whose answers the app recognises


@lru_cache(maxsize=1)
def example_problems(per_level: int = 2) -> tuple:
    """A few held-out word problems (empty if the task module is missing): the default world's
    problems that leave an amount open first (where the decoding order decides the answer), then
    the other levels of that world, then problems that state every amount, per level."""
    try:
        from ..tasks import DEFAULT_FREE, DEFAULT_LEVEL, LEVELS, test_set
    except ImportError:
        return ()
    opened = [p for p in test_set(DEFAULT_LEVEL, 10 * per_level, DEFAULT_FREE) if p.free][: 2 * per_level]
    others = [p for level in LEVELS if level != DEFAULT_LEVEL for p in test_set(level, per_level, DEFAULT_FREE)]
    return tuple(opened + others + [p for level in LEVELS for p in test_set(level, per_level)])


@lru_cache(maxsize=1)
def _answers() -> dict[str, str]:
    try:
        from ..tasks import DEFAULT_FREE, LEVELS, test_set
    except ImportError:
        return {}
    return {
        p.question.strip(): p.expected
        for level in LEVELS
        for free in (0.0, DEFAULT_FREE)
        for p in test_set(level, KNOWN_ANSWER_POOL, free)
    }


def known_answer(prompt: str) -> str | None:
    """What a right answer to ``prompt`` states, when it is one of the built-in held-out
    problems: the number, or a free problem's chain (``"5 - ? + ?"``, see ``Problem.expected``)."""
    return _answers().get(prompt.strip())
