"""The record every task produces: a question, a worked solution and its checkable answer."""

from __future__ import annotations

from dataclasses import dataclass

from .answers import chain_expression, check_answer


@dataclass(frozen=True)
class Problem:
    """One verifiable problem.

    Attributes:
        question: the text the model is prompted with.
        solution: worked solution ending in ``#### N``, exactly as GSM8K writes it.
        answer: the final number ``N`` as a string (what :func:`~.answers.is_correct` compares).
        level: difficulty (number of arithmetic operations) for built-in problems, None for GSM8K.
        source: where it came from, e.g. ``"wordproblem"`` or ``"gsm8k:test.jsonl:12"``.
        start: built-in problems: the first number of the solution's chain of equations.
        chain: built-in problems: per equation ``(op, amount)``, ``amount`` None when the
            question leaves it free (then several answers are right; see :meth:`check`).
    """

    question: str
    solution: str
    answer: str
    level: int | None = None
    source: str = ""
    start: int | None = None
    chain: tuple[tuple[str, int | None], ...] = ()

    @property
    def free(self) -> bool:
        """Whether the question leaves an amount open, so more than one answer is right."""
        return any(amount is None for _, amount in self.chain)

    @property
    def expected(self) -> str:
        """What a right completion states, as text that :func:`~.answers.check_answer` reads:
        the final number, or for a free problem its chain with ``?`` for the open amounts."""
        if not self.free:
            return self.answer
        if self.start is None:
            raise ValueError("a free problem needs its `start` (the first number of its chain)")
        return chain_expression(self.start, self.chain)

    def check(self, completion: str) -> bool:
        """Whether ``completion`` solves the problem: :func:`~.answers.check_answer` against
        :attr:`expected`, the one check that the app and the RL rewards also apply to that text.
        A fixed problem compares the final number; a free one verifies the written chain of
        equations, since any consistent choice of the open amounts is right."""
        return check_answer(completion, self.expected)

    def to_dict(self) -> dict:
        """GSM8K-compatible dict (``question``/``answer`` = full solution) plus our fields."""
        return {
            "question": self.question,
            "answer": self.solution,
            "final": self.answer,
            "level": self.level,
            "source": self.source,
            "start": self.start,
            "chain": [list(step) for step in self.chain],
        }
