"""One answer extractor and checker for every task (built-in word problems and GSM8K).

GSM8K writes the final answer on the last line as ``#### 18``; the prompts of the
unmasking-policy paper (Jazbec et al. 2025) ask for ``\\boxed{18}``. A completion may contain
both or several of either (a model that restarts its solution), so the *last* one counts,
as in the GSM8K and lm-eval graders. Comparison is numeric (``18``, ``18.0``, ``1,018`` and
``$18`` are all understood), exact (``Fraction``), never a float tolerance.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fractions import Fraction

# A number as people write it in solutions: sign, thousands separators, decimals.
_NUMBER = r"-?\$?\s*-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\.\d+"
_NUMBER_RE = re.compile(_NUMBER)
_HASHES_RE = re.compile(r"####\s*(" + _NUMBER + r")")
_BOXED_RE = re.compile(r"\\boxed\s*\{")
_FRAC_RE = re.compile(r"\\[dt]?frac\s*\{\s*(-?\d+)\s*\}\s*\{\s*(-?\d+)\s*\}")

# A built-in problem's steps: per equation ``(op, amount)``, amount None when the question leaves it free.
Chain = Sequence[tuple[str, int | None]]


def parse_number(text: str) -> Fraction | None:
    """The value of one written number, or None if ``text`` is not one.

    >>> parse_number("1,234.50"), parse_number("$18"), parse_number("-3")
    (Fraction(2469, 2), Fraction(18, 1), Fraction(-3, 1))
    >>> parse_number("\\\\frac{3}{4}"), parse_number("3/4"), parse_number("many")
    (Fraction(3, 4), Fraction(3, 4), None)
    """
    text = text.strip().rstrip(".").strip()
    frac = _FRAC_RE.fullmatch(text) or re.fullmatch(r"(-?\d+)\s*/\s*(-?\d+)", text)
    if frac:
        num, den = int(frac.group(1)), int(frac.group(2))
        return Fraction(num, den) if den else None
    if not _NUMBER_RE.fullmatch(text):
        return None
    cleaned = text.replace(",", "").replace("$", "").replace(" ", "")
    negative = cleaned.count("-") % 2 == 1
    value = Fraction(cleaned.replace("-", ""))
    return -value if negative else value


def _boxed_contents(text: str) -> list[tuple[int, str]]:
    """(start offset, content) of every ``\\boxed{...}``, with nested braces balanced."""
    found = []
    for match in _BOXED_RE.finditer(text):
        depth, i = 1, match.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            found.append((match.start(), text[match.end() : i - 1]))
    return found


def extract_answer(text: str) -> str | None:
    """The final answer written in a solution: the last ``#### N`` or ``\\boxed{N}``.

    Returns the number as written (commas and ``$`` removed), or None when the text
    states no final answer or the stated one is not a number.

    >>> extract_answer("She makes 9 * 2 = 18 dollars.\\n#### 18")
    '18'
    >>> extract_answer("so the answer is \\\\boxed{1,024}.")
    '1024'
    >>> extract_answer("#### 3 then I changed my mind: \\\\boxed{4}")
    '4'
    >>> extract_answer("#### seven") is None
    True
    """
    candidates: list[tuple[int, str]] = [(m.start(), m.group(1)) for m in _HASHES_RE.finditer(text)]
    for start, content in _boxed_contents(text):
        content = content.strip()
        if parse_number(content) is not None:
            candidates.append((start, content))
            continue
        # e.g. "\boxed{18 \text{ dollars}}": take the first number inside.
        inner = _NUMBER_RE.search(content)
        if inner:
            candidates.append((start, inner.group(0)))
    if not candidates:
        return None
    _, raw = max(candidates, key=lambda c: c[0])
    return raw.replace(",", "").replace("$", "").replace(" ", "")


def is_correct(completion: str, gold: str) -> bool:
    """Whether ``completion`` states the same final number as ``gold``.

    ``gold`` is either a bare number (``"18"``) or a full GSM8K solution ending in ``#### 18``.

    >>> is_correct("Tom has 12 + 6 = 18 apples. #### 18", "18.0")
    True
    >>> is_correct("#### 17", "She makes 9 * 2 = 18.\\n#### 18")
    False
    """
    return number_error(completion, gold) is None


def number_error(completion: str, gold: str) -> str | None:
    """What is wrong with ``completion``'s final number against ``gold``, in words (None when right).

    >>> number_error("#### 16", "15")
    'final answer 16 ≠ expected 15'
    """
    gold_value = parse_number(gold)
    if gold_value is None:
        gold_raw = extract_answer(gold)
        if gold_raw is None:
            raise ValueError(f"gold answer {gold!r} is neither a number nor a solution with '#### N'")
        gold_value = parse_number(gold_raw)
        if gold_value is None:
            raise ValueError(f"gold answer {gold!r} ends in '#### {gold_raw}', which is not a number")
    predicted = extract_answer(completion)
    value = None if predicted is None else parse_number(predicted)
    if value is None:
        return "no final answer (#### N)"
    return None if value == gold_value else f"final answer {predicted} ≠ expected {_plain(gold_value)}"


def _plain(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else str(float(value))


_EQUATION_RE = re.compile(r"(\d+)\s*([-+*/])\s*(\d+)\s*=\s*(\d+)")
_OPS = {
    "+": lambda x, b: x + b,
    "-": lambda x, b: x - b,
    "*": lambda x, b: x * b,
    "/": lambda x, b: x // b if b and x % b == 0 else None,
}


def apply_op(op: str, x: int, b: int) -> int | None:
    """``x op b`` in whole numbers (None for a division with a remainder): the arithmetic the
    generator writes and the verifier checks."""
    return _OPS[op](x, b)


def verify_chain(completion: str, start: int, chain: Chain) -> bool:
    """Whether ``completion`` writes a valid chain of equations for a built-in problem.

    The solution must contain exactly one equation ``x op b = y`` per step of ``chain``, in
    order, where the first ``x`` is ``start``, each next ``x`` is the previous ``y``, ``op`` is
    the step's operation, ``b`` is the step's amount when the question states it (any positive
    whole number when it is free, None), every ``y`` is right and positive, and the final
    answer (``#### N``) is the last ``y``. So a problem with free amounts accepts every
    consistent choice and nothing else.

    >>> verify_chain("Mei has 5 - 3 = 2 shells. #### 2", 5, [("-", None)])
    True
    >>> verify_chain("Mei has 5 - 3 = 1 shells. #### 1", 5, [("-", None)])
    False
    >>> verify_chain("Tom pays 3 * 4 = 12 dollars. Tom pays 12 + 2 = 14 dollars. #### 14", 3, [("*", 4), ("+", None)])
    True
    """
    return chain_error(completion, start, chain) is None


def chain_error(completion: str, start: int, chain: Chain) -> str | None:
    """The first rule of :func:`verify_chain` that ``completion`` breaks, in words (None when right),
    so a verdict can say what is wrong.

    >>> chain_error("Mei has 5 - 3 = 1 shells. #### 1", 5, [("-", None)])
    '5 - 3 = 1 does not hold'
    >>> chain_error("Mei has 5 - 3 = 2 shells. #### 3", 5, [("-", None)])
    'final answer 3 ≠ result 2'
    """
    equations = _EQUATION_RE.findall(completion)
    if len(equations) != len(chain):
        return f"{len(equations)} equation(s) written, the problem has {len(chain)} step(s)"
    x = start
    for (xs, op, bs, ys), (want_op, want_b) in zip(equations, chain, strict=True):
        x_written, b, y = int(xs), int(bs), int(ys)
        equation = f"{xs} {op} {bs} = {ys}"
        if x_written != x:
            return f"{equation} starts from {xs}, not {x}"
        if op != want_op:
            return f"{equation} uses {op}, the problem asks for {want_op}"
        if b < 1 or (want_b is not None and b != want_b):
            return f"{equation} uses {bs}, the problem says {want_b}" if want_b else f"{equation}: the amount is 0"
        if y < 1 or apply_op(op, x, b) != y:
            return f"{equation} does not hold"
        x = y
    final = extract_answer(completion)
    if final is None:
        return "no final answer (#### N)"
    return None if parse_number(final) == x else f"final answer {final} ≠ result {x}"


def chain_expression(start: int, chain: Chain) -> str:
    """A free problem's expected answer as text: its chain with ``?`` for each open amount.

    >>> chain_expression(5, [("-", None), ("*", 2)])
    '5 - ? * 2'
    """
    return " ".join([str(start), *(f"{op} {'?' if b is None else b}" for op, b in chain)])


def _parse_chain_expression(text: str) -> tuple[int, list[tuple[str, int | None]]] | None:
    tokens = text.split()
    if len(tokens) < 3 or len(tokens) % 2 == 0 or not tokens[0].isdigit():
        return None
    chain: list[tuple[str, int | None]] = []
    for op, amount in zip(tokens[1::2], tokens[2::2], strict=True):
        if op not in _OPS or not (amount == "?" or amount.isdigit()):
            return None
        chain.append((op, None if amount == "?" else int(amount)))
    return int(tokens[0]), chain


def check_answer(completion: str, expected: str) -> bool:
    """Whether ``completion`` is right, given what a problem expects.

    ``expected`` is a final number (or a GSM8K solution: :func:`is_correct`), or a free
    problem's chain expression such as ``"5 - ? + ?"`` (:func:`chain_expression`), which
    accepts any consistent choice of the open amounts (:func:`verify_chain`).

    >>> check_answer("Mei has 5 - 3 = 2 shells. #### 2", "5 - ?"), check_answer("#### 2", "2")
    (True, True)
    """
    return answer_error(completion, expected) is None


def answer_error(completion: str, expected: str) -> str | None:
    """What is wrong with ``completion`` in words (None when it is right): the verdict a class reads.

    >>> answer_error("Mei has 4 + 3 = 8 shells. #### 8", "4 + ?")
    '4 + 3 = 8 does not hold'
    """
    if "?" in expected:
        parsed = _parse_chain_expression(expected)
        if parsed is None:
            raise ValueError(f"expected answer {expected!r} is neither a number nor a chain like '5 - ? + ?'")
        return chain_error(completion, *parsed)
    return number_error(completion, expected)
