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
    DEFAULT_FREE,
    LEVELS,
    check_answer,
    extract_answer,
    generate,
    is_correct,
    load_gsm8k,
    load_jsonl,
    parse_number,
    split_of,
    test_set,
    validation_set,
    verify_chain,
)
from dllm_viz.tasks.wordproblems import TEST_SET_MAX

FIXTURE = Path(__file__).parents[1] / "fixtures" / "gsm8k_test_sample.jsonl"
EQUATION = re.compile(r"(\d+) ([-+*/]) (\d+) = (\d+)")


# --- generator -------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(min_value=-(2**40), max_value=2**40),
    level=st.sampled_from(LEVELS),
    split=st.sampled_from(["train", "test"]),
)
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


@pytest.mark.parametrize("free", [0.0, DEFAULT_FREE])
def test_validation_train_and_test_splits_are_disjoint(free):
    """Checkpoints are chosen on validation problems: held out from training like the test set,
    and never one of the reports' test problems (the whole test set, not just its start)."""
    for level in LEVELS:
        validation = validation_set(level, 200, free)
        assert validation_set(level, 50, free) == validation[:50]
        questions = {p.question for p in validation}
        assert len(questions) == 200 and all(split_of(q) == "test" for q in questions)
        assert not questions & {p.question for p in test_set(level, TEST_SET_MAX, free)}
        assert not questions & {generate(seed, level, "train", free).question for seed in range(3000)}
    with pytest.raises(ValueError, match=r"n \(501\) must be ≤ 500"):
        test_set(1, TEST_SET_MAX + 1)


# --- free-choice problems (the default world) ------------------------------------------------


def _other_valid_solutions(problem):
    """Every solution text with a different choice of the open amounts (small search)."""
    texts = []

    def extend(i, x, steps):
        if i == len(problem.chain):
            texts.append(" ".join(steps) + f" #### {x}")
            return
        op, fixed = problem.chain[i]
        for b in [fixed] if fixed is not None else range(1, 10):
            y = {"+": x + b, "-": x - b, "*": x * b, "/": x // b if x % b == 0 else None}[op]
            if y is not None and y >= 1:
                extend(i + 1, y, steps + [f"has {x} {op} {b} = {y} things."])

    extend(0, problem.start, [])
    return texts


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**40),
    level=st.sampled_from(LEVELS),
    split=st.sampled_from(["train", "test"]),
)
def test_free_problems_are_deterministic_and_every_consistent_choice_checks(seed, level, split):
    problem = generate(seed, level, split, DEFAULT_FREE)
    assert generate(seed, level, split, DEFAULT_FREE) == problem
    assert split_of(problem.question) == split
    assert problem.check(problem.solution) and check_answer(problem.solution, problem.expected)
    assert len(problem.chain) == level and all(op in "+-" for op, b in problem.chain if b is None)
    for b in (b for _, b in problem.chain if b is not None):
        assert f" {b} " in f" {problem.question} ".replace(".", " ")  # stated amounts are in the question
    others = _other_valid_solutions(problem)
    assert others and all(problem.check(t) for t in others)
    assert len(others) > 1 or not problem.free  # a free problem has several right answers
    # Breaking the arithmetic, the start or the final answer is caught.
    x, op, b, y = EQUATION.findall(problem.solution)[-1]
    assert not problem.check(
        problem.solution.replace(f"= {y}", f"= {int(y) + 1}", 1).replace(f"#### {y}", f"#### {int(y) + 1}")
    )
    assert not problem.check(problem.solution.rsplit("####", 1)[0] + f"#### {int(y) + 1}")
    if problem.free:  # a fixed problem checks its final number only, as GSM8K graders do
        assert not problem.check(f"has {problem.start + 1}" + problem.solution.split(str(problem.start), 1)[1])


def test_free_problems_leave_amounts_open_and_stay_small():
    problems = [generate(seed, 2, "train", DEFAULT_FREE) for seed in range(500)]
    assert all(p.free for p in problems)
    assert sum(sum(b is None for _, b in p.chain) == 2 for p in problems) > 250  # mostly two open amounts
    assert max(int(v) for p in problems for v in re.findall(r"\d+", p.solution)) <= 30
    assert len({p.question for p in problems}) > 450
    assert "gives shells" in " ".join(p.question for p in problems) or "sells" in " ".join(p.question for p in problems)
    # free=0 is the fixed-answer world of earlier releases, unchanged
    assert generate(0, 1).question == "Mei buys 2 tickets for 6 dollars each. How many dollars does Mei pay in total?"


def test_free_held_out_set_is_disjoint_from_training():
    held_out = test_set(2, 500, DEFAULT_FREE)
    assert len({p.question for p in held_out}) == 500 and test_set(2, 50, DEFAULT_FREE) == held_out[:50]
    training = {generate(seed, level, "train", DEFAULT_FREE).question for level in LEVELS for seed in range(5000)}
    assert not {p.question for p in held_out} & training


def test_verifier_rejects_inconsistent_chains_and_accepts_any_valid_choice():
    chain = [("-", None), ("+", None)]
    assert verify_chain("Mei has 9 - 3 = 6 shells. Mei has 6 + 4 = 10 shells. #### 10", 9, chain)
    assert verify_chain("Mei has 9 - 7 = 2 shells. Mei has 2 + 1 = 3 shells. #### 3", 9, chain)
    assert not verify_chain("Mei has 9 - 3 = 6 shells. Mei has 5 + 4 = 9 shells. #### 9", 9, chain)  # broken link
    assert not verify_chain("Mei has 9 - 3 = 5 shells. Mei has 5 + 4 = 9 shells. #### 9", 9, chain)  # arithmetic
    assert not verify_chain("Mei has 9 - 9 = 0 shells. Mei has 0 + 4 = 4 shells. #### 4", 9, chain)  # none left
    assert not verify_chain("Mei has 9 - 3 = 6 shells. Mei has 6 - 4 = 2 shells. #### 2", 9, chain)  # wrong op
    assert not verify_chain("Mei has 9 - 3 = 6 shells. #### 6", 9, chain)  # a step missing
    assert not verify_chain("Mei has 9 - 3 = 6 shells. Mei has 6 + 4 = 10 shells. #### 11", 9, chain)
    assert not verify_chain("Tom pays 3 * 5 = 15 dollars. #### 15", 3, [("*", 4)])  # a stated amount changed
    assert check_answer("Mei has 9 - 3 = 6 shells. Mei has 6 + 4 = 10 shells. #### 10", "9 - ? + ?")
    with pytest.raises(ValueError, match="neither a number nor a chain"):
        check_answer("#### 3", "9 ? ?")


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: generate(0, 1, "train", 1.5), r"free \(1.5\) must be a probability"),
        (lambda: generate(0, 4), r"level \(4\) must be one of \(1, 2, 3\)"),
        (lambda: generate(0, 1, "dev"), r"split \('dev'\) must be one of"),
        (lambda: test_set(0, 5), r"level \(0\)"),
        (lambda: test_set(1, 0), r"n \(0\) must be ≥ 1"),
    ],
)
def test_bad_generator_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- answers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
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
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize(
    "completion, gold, expected",
    [
        ("#### 18", "18", True),
        ("#### 18.0", "18", True),
        ("#### 1,000", "1000", True),
        ("\\boxed{\\frac{1}{2}}", "0.5", True),
        ("#### 17", "18", False),
        ("no final answer", "18", False),
        ("#### 18", "Janet sells 16 - 3 - 4 = 9 eggs.\n#### 18", True),
        ("#### 19", "Janet sells 16 - 3 - 4 = 9 eggs.\n#### 18", False),
    ],
)
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
    assert [p.answer for p in problems] == [
        "18",
        "3",
        "70000",
        "540",
        "20",
        "64",
        "260",
        "160",
        "45",
        "460",
        "366",
        "694",
    ]
    raw = [json.loads(line) for line in FIXTURE.read_text().splitlines()]
    for problem, record in zip(problems, raw, strict=True):
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
    for lineno, reason in [
        (2, "invalid JSON"),
        (3, "no 'question'"),
        (4, "no final number"),
        (5, "expected a JSON object"),
        (7, "no 'answer'"),
    ]:
        assert any(m.startswith(f"bad.jsonl:{lineno}: skipped") and reason in m for m in messages), (lineno, messages)


def test_gsm8k_source_errors():
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        load_gsm8k("missing.jsonl")
    with pytest.raises(ValueError, match=r"source \('validation'\) must be a .jsonl path"):
        load_gsm8k("validation")


@pytest.mark.parametrize(
    "completion, expected, reason",
    [
        ("Tom has 4 + 3 = 7 pens. #### 7", "4 + ?", None),
        ("Tom has 4 + 3 = 8 pens. #### 8", "4 + ?", "4 + 3 = 8 does not hold"),
        ("Tom has 4 + 3 = 7 pens. #### 8", "4 + ?", "final answer 8 ≠ result 7"),
        ("Tom has 5 + 3 = 8 pens. #### 8", "4 + ?", "5 + 3 = 8 starts from 5, not 4"),
        ("Tom has 4 - 3 = 1 pens. #### 1", "4 + ?", "4 - 3 = 1 uses -, the problem asks for +"),
        ("Tom has 4 + 2 = 6 pens. He has 6 - 1 = 5. #### 5", "4 + 3 - ?", "4 + 2 = 6 uses 2, the problem says 3"),
        ("Tom has pens.", "4 + ?", "0 equation(s) written, the problem has 1 step(s)"),
        ("Tom has 4 + 3 = 7 pens.", "4 + ?", "no final answer (#### N)"),
        ("#### 16", "15", "final answer 16 ≠ expected 15"),
        ("#### 15", "15", None),
    ],
)
def test_answer_error_says_what_is_wrong_and_agrees_with_check_answer(completion, expected, reason):
    from dllm_viz.tasks import answer_error

    assert answer_error(completion, expected) == reason
    assert check_answer(completion, expected) is (reason is None)
