"""The record every task produces: a question, a worked solution and its checkable answer."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One verifiable problem.

    Attributes:
        question: the text the model is prompted with.
        solution: worked solution ending in ``#### N``, exactly as GSM8K writes it.
        answer: the final number ``N`` as a string (what :func:`~.answers.is_correct` compares).
        level: difficulty (number of arithmetic operations) for built-in problems, None for GSM8K.
        source: where it came from, e.g. ``"wordproblem"`` or ``"gsm8k:test.jsonl:12"``.
    """

    question: str
    solution: str
    answer: str
    level: int | None = None
    source: str = ""

    def to_dict(self) -> dict:
        """GSM8K-compatible dict (``question``/``answer`` = full solution) plus our fields."""
        return {"question": self.question, "answer": self.solution, "final": self.answer,
                "level": self.level, "source": self.source}
