"""Tasks: the word-problem generator, the GSM8K loader and the one answer checker."""

from __future__ import annotations

import json
import logging
import re
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dllm_viz.tasks import (
    LEVELS,
    extract_answer,
    generate,
    is_correct,
    load_gsm8k,
    load_jsonl,
    parse_number,
    split_of,
    test_set,
)

FIXTURE = Path(__file__).parent / "fixtures" / "gsm8k_test_sample.jsonl"
EQUATION = re.compile(r"(\d+) ([-+*/]) (\d+) = (\d+)")


# --- generator -------------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(seed=st.integers(min_value=-(2**40), max_value=2**40), level=st.sampled_from(LEVELS),
       split=st.sampled_from(["train", "test"]))
def test_generator_is_deterministic_and_every_step_checks(seed, level, split):
    problem = generate(seed, level, split)
    assert generate(seed, level, split) == problem
    equations = EQUATION.findall(problem.solution)
    assert len(equations) == level == problem.level
    value = None
    for x, op, b, y in equations:
        x, b, y = int(x), int(b), int(y)
        assert value is None or x == value, "each step must continue from the previous result"
        exact = {"+": x + b, "-": x - b, "*": x * b, "/": Fraction(x, b)}[op]
        assert exact == y and 2 <= y <= 999
        value = y
    assert problem.solution.endswith(f"#### {value}") and problem.answer == str(value)
    assert is_correct(problem.solution, problem.answer)
    assert split_of(problem.question) == split


def test_seeds_give_varied_problems():
    questions = {generate(seed, 2).question for seed in range(200)}
    assert len(questions) > 190
    stories = {generate(seed, 1).source for seed in range(200)}
    assert len(stories) == 5  # every template family shows up


def test_held_out_set_is_fixed_distinct_and_never_trained_on():
    held_out = test_set(1, 60)
    assert test_set(1, 60) == held_out
    assert test_set(1, 20) == held_out[:20]
    assert len({p.question for p in held_out}) == 60
    questions = {p.question for level in LEVELS for p in test_set(level, 60)}
    training = {generate(seed, level).question for level in LEVELS for seed in range(3000)}
    assert not questions & training


@pytest.mark.parametrize("call, message", [
    (lambda: generate(0, 4), r"level \(4\) must be one of \(1, 2, 3\)"),
    (lambda: generate(0, 1, "validation"), r"split \('validation'\) must be one of"),
    (lambda: test_set(0, 5), r"level \(0\)"),
    (lambda: test_set(1, 0), r"n \(0\) must be ≥ 1"),
])
def test_bad_generator_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- answers ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("She makes 9 * 2 = 18 dollars.\n#### 18", "18"),
    ("#### 1,234", "1234"),
    ("#### -5", "-5"),
    ("#### $18.50", "18.50"),
    ("#### 18.", "18"),
    ("The answer is \\boxed{42}.", "42"),
    ("\\boxed{18 \\text{ dollars}}", "18"),
    ("\\boxed{\\frac{3}{4}}", "\\frac{3}{4}"),
    ("#### 3 wait, no: \\boxed{4}", "4"),
    ("\\boxed{4} then #### 5", "5"),
    ("#### 7 ... #### 8", "8"),
    ("Tom has 12 + 5 = 17 apples.", None),
    ("#### seven", None),
    ("\\boxed{x}", None),
    ("\\boxed{12", None),
])
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize("completion, gold, expected", [
    ("#### 18", "18", True),
    ("#### 18.0", "18", True),
    ("#### 1,000", "1000", True),
    ("\\boxed{\\frac{1}{2}}", "0.5", True),
    ("#### 17", "18", False),
    ("no final answer", "18", False),
    ("#### 18", "Janet sells 16 - 3 - 4 = 9 eggs.\n#### 18", True),
    ("#### 19", "Janet sells 16 - 3 - 4 = 9 eggs.\n#### 18", False),
])
def test_is_correct_compares_numbers(completion, gold, expected):
    assert is_correct(completion, gold) is expected


def test_gold_without_a_number_is_an_error():
    with pytest.raises(ValueError, match="gold answer 'many' is neither a number"):
        is_correct("#### 3", "many")


def test_parse_number():
    assert parse_number("1,234.5") == Fraction(2469, 2)
    assert parse_number("-$3") == -3
    assert parse_number("3/0") is None
    assert parse_number("12abc") is None


# --- GSM8K -----------------------------------------------------------------------------------

def test_real_gsm8k_lines_load_and_check():
    problems = load_jsonl(FIXTURE)
    assert [p.answer for p in problems] == ["18", "3", "70000", "540", "20", "64", "260", "160", "45", "460", "366", "694"]
    raw = [json.loads(line) for line in FIXTURE.read_text().splitlines()]
    for problem, record in zip(problems, raw):
        assert is_correct(record["answer"], problem.answer)  # the checker reads GSM8K's own solutions
        assert is_correct(problem.solution, problem.answer)
        assert "<<" not in problem.solution and problem.question == record["question"].strip()
    assert problems[0].source == "gsm8k_test_sample.jsonl:1"
    assert len(load_gsm8k(FIXTURE, limit=3)) == 3


def test_malformed_lines_are_reported_with_line_numbers_and_skipped(tmp_path, caplog):
    good = {"question": "What is 2 + 2?", "answer": "2 + 2 = <<2+2=4>>4\n#### 4"}
    lines = [
        json.dumps(good),
        '{"question": "broken", "answer": ',
        json.dumps({"answer": "#### 3"}),
        json.dumps({"question": "How many?", "answer": "We cannot tell.\n#### many"}),
        json.dumps(["not", "an", "object"]),
        "",
        json.dumps({"question": "Q?", "answer": 7}),
        json.dumps(good),
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.WARNING, logger="dllm_viz.tasks.gsm8k"):
        problems = load_jsonl(path)
    assert [p.source for p in problems] == ["bad.jsonl:1", "bad.jsonl:8"]
    assert problems[0].solution == "2 + 2 = 4\n#### 4"
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 5
    for lineno, reason in [(2, "invalid JSON"), (3, "no 'question'"), (4, "no final number"),
                           (5, "expected a JSON object"), (7, "no 'answer'")]:
        assert any(m.startswith(f"bad.jsonl:{lineno}: skipped") and reason in m for m in messages), (lineno, messages)


def test_gsm8k_source_errors():
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        load_gsm8k("missing.jsonl")
    with pytest.raises(ValueError, match=r"source \('validation'\) must be a .jsonl path"):
        load_gsm8k("validation")
