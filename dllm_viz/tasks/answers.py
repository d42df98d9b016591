"""One answer extractor and checker for every task (built-in word problems and GSM8K).

GSM8K writes the final answer on the last line as ``#### 18``; the prompts of the
unmasking-policy paper (Jazbec et al. 2025) ask for ``\\boxed{18}``. A completion may contain
both or several of either (a model that restarts its solution), so the *last* one counts,
as in the GSM8K and lm-eval graders. Comparison is numeric (``18``, ``18.0``, ``1,018`` and
``$18`` are all understood), exact (``Fraction``), never a float tolerance.
"""

from __future__ import annotations

import re
from fractions import Fraction

# A number as people write it in solutions: sign, thousands separators, decimals.
_NUMBER = r"-?\$?\s*-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\.\d+"
_NUMBER_RE = re.compile(_NUMBER)
_HASHES_RE = re.compile(r"####\s*(" + _NUMBER + r")")
_BOXED_RE = re.compile(r"\\boxed\s*\{")
_FRAC_RE = re.compile(r"\\[dt]?frac\s*\{\s*(-?\d+)\s*\}\s*\{\s*(-?\d+)\s*\}")


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
    gold_value = parse_number(gold)
    if gold_value is None:
        gold_raw = extract_answer(gold)
        if gold_raw is None:
            raise ValueError(f"gold answer {gold!r} is neither a number nor a solution with '#### N'")
        gold_value = parse_number(gold_raw)
    predicted = extract_answer(completion)
    if predicted is None:
        return False
    value = parse_number(predicted)
    return value is not None and value == gold_value
