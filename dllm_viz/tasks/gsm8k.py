"""GSM8K loader: the grade-school-math jsonl files, or the ``datasets`` copy when installed.

Each line of ``train.jsonl`` / ``test.jsonl`` (github.com/openai/grade-school-math, MIT) is
``{"question": ..., "answer": ...}`` where ``answer`` is the worked solution ending in
``#### N``, with calculator annotations ``<<a*b=c>>`` embedded. Bad lines (invalid JSON,
missing fields, no number after ``####``) are logged with their line number and skipped:
one broken line must never stop an evaluation run.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from pathlib import Path

from .answers import extract_answer
from .problem import Problem

logger = logging.getLogger(__name__)

_CALCULATOR = re.compile(r"<<.*?>>")


def strip_calculator(solution: str) -> str:
    """Remove GSM8K's calculator annotations: ``"16 - 3 = <<16-3=13>>13"`` → ``"16 - 3 = 13"``."""
    return _CALCULATOR.sub("", solution)


def _problem(record: object, where: str) -> Problem | None:
    """A Problem from one parsed record, or None (with a warning naming ``where``)."""
    if not isinstance(record, dict):
        logger.warning("%s: skipped, expected a JSON object, got %s", where, type(record).__name__)
        return None
    question, solution = record.get("question"), record.get("answer")
    if not isinstance(question, str) or not question.strip():
        logger.warning("%s: skipped, no 'question' text", where)
        return None
    if not isinstance(solution, str):
        logger.warning("%s: skipped, no 'answer' text", where)
        return None
    answer = extract_answer(solution)
    if answer is None:
        logger.warning("%s: skipped, the answer states no final number after '####': %r", where, solution[-60:])
        return None
    return Problem(question=question.strip(), solution=strip_calculator(solution).strip(), answer=answer, source=where)


def parse_jsonl(lines: Iterable[str], name: str = "<jsonl>") -> list[Problem]:
    """Problems from GSM8K-format jsonl lines; bad lines are logged (``name:line``) and skipped."""
    problems = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{name}:{lineno}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            logger.warning("%s: skipped, invalid JSON (%s)", where, err.msg)
            continue
        problem = _problem(record, where)
        if problem is not None:
            problems.append(problem)
    return problems


def load_jsonl(path: str | Path, limit: int | None = None) -> list[Problem]:
    """Problems from a GSM8K jsonl file (first ``limit`` valid ones if given).

    Raises:
        FileNotFoundError: the path does not exist (a wrong path is not a bad line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"GSM8K file {str(path)!r} does not exist")
    with path.open(encoding="utf-8") as f:
        problems = parse_jsonl(f, name=path.name)
    return problems[:limit] if limit is not None else problems


def load_gsm8k(source: str | Path = "test", limit: int | None = None) -> list[Problem]:
    """GSM8K problems from a jsonl path, or a split name via ``datasets`` when it is installed.

    Args:
        source: a ``.jsonl`` path, or ``"train"`` / ``"test"`` to load ``openai/gsm8k`` (config
            ``main``) with the optional ``datasets`` package (which may download it).
        limit: keep only the first ``limit`` problems.
    """
    if Path(source).suffix == ".jsonl" or Path(source).is_file():
        return load_jsonl(source, limit)
    if source not in ("train", "test"):
        raise ValueError(f"source ({str(source)!r}) must be a .jsonl path or 'train'/'test'")
    try:
        import datasets
    except ImportError:
        raise ValueError(
            f"loading GSM8K split {source!r} by name needs the 'datasets' package; "
            "install it or pass the path of a GSM8K .jsonl file"
        ) from None
    rows = datasets.load_dataset("openai/gsm8k", "main", split=source)
    problems = [p for i, row in enumerate(rows, start=1) if (p := _problem(dict(row), f"gsm8k/{source}:{i}"))]
    return problems[:limit] if limit is not None else problems
