"""Verifiable tasks: built-in word problems, GSM8K, and the one answer checker for both.

>>> from dllm_viz.tasks import generate, is_correct
>>> problem = generate(seed=0, level=1)
>>> is_correct(problem.solution, problem.answer)
True
"""

from .answers import answer_error, check_answer, extract_answer, is_correct, parse_number, verify_chain
from .gsm8k import load_gsm8k, load_jsonl, parse_jsonl, strip_calculator
from .problem import Problem
from .wordproblems import (
    DEFAULT_FREE,
    DEFAULT_LEVEL,
    LEVELS,
    generate,
    lexicon,
    split_of,
    test_set,
    validation_set,
)

__all__ = [
    "DEFAULT_FREE",
    "DEFAULT_LEVEL",
    "LEVELS",
    "Problem",
    "answer_error",
    "check_answer",
    "extract_answer",
    "generate",
    "is_correct",
    "lexicon",
    "load_gsm8k",
    "load_jsonl",
    "parse_jsonl",
    "parse_number",
    "split_of",
    "strip_calculator",
    "test_set",
    "validation_set",
    "verify_chain",
]
