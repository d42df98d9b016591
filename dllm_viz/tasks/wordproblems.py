"""Procedural GSM8K-style word problems: the built-in task with a checkable answer.

Each problem is a short story about one quantity (apples someone has, dollars someone pays,
animals on a farm, pages someone reads) changed by 1 to 3 arithmetic operations; the
difficulty level is the number of operations. The worked solution states one equation per
operation, as GSM8K does ("Tom has 12 + 5 = 17 apples."), then ``#### N``.

The language is closed (a few hundred words, see :func:`lexicon`), so the built-in model can use
a word-level vocabulary with digits split, and every response fits comfortably in 64 tokens.

Free choices (the default world): with probability ``free`` an addition or subtraction leaves
its amount unstated ("She gives shells to Lily."). Any positive amount that keeps the count
positive is then right, so a problem has many valid solutions; one is drawn for the training
text, and a completion is checked by :meth:`Problem.check`, which verifies that its written chain
of equations is consistent with the question (start, operations, stated amounts, arithmetic,
final answer). This is what makes the unmasking decision matter: the
model's per-position distributions mix the valid solutions, so committing a chosen amount
and the result that depends on it in the same step draws them independently and usually
breaks the arithmetic, while committing one and then the other is always consistent.

Held-out splits, by construction: a problem is held out iff a stable hash of its question
text falls in the held-out bucket (1 in 10). The training stream rejects held-out questions, so
no seed can ever show training (of the dLLM or of a policy) a held-out question. Held-out
questions serve two splits: :func:`test_set` is a fixed list (seeds 0, 1, 2, ... of the test
stream, deduplicated, at most ``TEST_SET_MAX``), read only by reports; :func:`validation_set`
draws held-out questions from its own stream and skips every question of the largest test set,
so checkpoint selection and tuning never see a test problem.
"""

from __future__ import annotations

import functools
import hashlib
import random
import re
from dataclasses import dataclass, field

from .answers import apply_op
from .problem import Problem

LEVELS = (1, 2, 3)
FREE_OPS = ("+", "-")  # operations whose amount a free problem may leave unstated
DEFAULT_FREE = 1.0  # the default world: every addition and subtraction is a free choice
# ... in one-operation problems. Measured: after a 58-min fine-tune on levels 1-3, High-Confidence-K
# solved 73 % of level-1 but 17 % of level-2 free problems (two open amounts left the 4M-parameter
# model to infer amounts backwards from results it had committed first, e.g. "4 - 1 = 3, 3 + 2 = 6").
DEFAULT_LEVEL = 1
SPLITS = ("train", "test", "validation")
TEST_BUCKETS = 10  # 1 in 10 question texts is held out (test and validation)
TEST_SET_MAX = 500  # the reports' test set; validation problems avoid all of its questions
MAX_VALUE = 999  # every intermediate result stays ≤ 3 digits, so a response stays short

# Operand ranges: one- and two-digit numbers, single-digit addends and small factors, as in
# most GSM8K steps. Kept small on purpose, from measurements of the built-in model on 2 CPU
# cores: with starts and addends up to 20 it reached 77 % on level 1 after ~16k steps, solving
# 106/107 multiplications and 14/14 divisions but only 12/37 additions and 22/42 subtractions
# (400 addition facts against ~150 product facts); fewer distinct facts means more
# repetitions of each within the training budget.
START_RANGE = (2, 12)
ADD_RANGE = (2, 9)
SUB_MAX = 9
FACTOR_RANGE = (2, 5)
PRODUCT_RANGE = ((2, 12), (2, 6))  # "a items for k dollars each"
# Free problems keep every value ≤ 30 (products ≤ 18, then amounts ≤ 9): a measured pilot
# fine-tuned on such chains lifted two-step accuracy from ≈45 % to ≈80 %, while larger
# intermediate results stayed unlearned at this model size.
FREE_PRODUCT_RANGE = ((2, 6), (2, 3))

PEOPLE = tuple(  # (name, grammatical gender), in the order the generator draws from
    tuple(person.split(":"))
    for person in (
        "Tom:m Anna:f Ben:m Lily:f Omar:m Sara:f Leo:m Nina:f Sam:m Maria:f Jack:m Emma:f Ravi:m Mei:f Carlos:m Zoe:f"
    ).split()
)
PRONOUNS = {
    "m": {"he": "he", "He": "He", "him": "him", "his": "his"},
    "f": {"he": "she", "He": "She", "him": "her", "his": "her"},
}
SYMBOLS = ("+", "-", "*", "/")


def _choices(key: str, *values: str) -> tuple[dict, ...]:
    return tuple({key: v} for v in values)


@dataclass(frozen=True)
class Story:
    """One template family.

    Attributes:
        name: identifier, for statistics.
        start: sentences that introduce the first quantity ``{a}``; with ``product_start`` they
            state ``{a}`` times ``{k}``, which counts as the first operation.
        ops: sentence variants per operation symbol, using ``{b}`` for the operand.
        step: the solution sentence for one operation, ``{x} {op} {b} = {y}``.
        questions: the final question variants.
        slots: per slot, the alternatives (dicts of placeholder values) drawn once per problem.
        product_start: see ``start``.
    """

    name: str
    start: tuple[str, ...]
    ops: dict[str, tuple[str, ...]]
    step: str
    questions: tuple[str, ...]
    slots: tuple[tuple[dict, ...], ...] = field(default=())
    product_start: bool = False

    def templates(self) -> list[str]:
        return [*self.start, *(s for v in self.ops.values() for s in v), self.step, *self.questions]


STORIES = (
    Story(
        name="items",
        start=("{name} has {a} {unit}.", "{name} collects {a} {unit}.", "{name} starts with {a} {unit}."),
        ops={
            "+": ("{He} buys {b} more {unit}.", "{He} finds {b} more {unit}.", "{friend} gives {him} {b} more {unit}."),
            "-": ("{He} gives {b} {unit} to {friend}.", "{He} loses {b} {unit}.", "{He} sells {b} {unit}."),
            "*": ("Then the number of {unit} {he} has becomes {b} times as large.",),
            "/": ("{He} puts the {unit} into {b} equal groups and keeps one group.",),
        },
        step="{name} has {x} {op} {b} = {y} {unit}.",
        questions=("How many {unit} does {name} have now?", "How many {unit} does {name} have in the end?"),
        slots=(
            _choices(
                "unit",
                "apples",
                "pencils",
                "stickers",
                "marbles",
                "cookies",
                "books",
                "cards",
                "eggs",
                "shells",
                "stamps",
                "toys",
                "flowers",
                "candies",
                "balloons",
                "beads",
                "crayons",
            ),
        ),
    ),
    Story(
        name="money",
        start=("{name} has {a} dollars.", "{name} saves {a} dollars."),
        ops={
            "+": ("{He} earns {b} dollars for {chore}.", "{friend} gives {him} {b} dollars."),
            "-": ("{He} spends {b} dollars on {thing}.", "{He} pays {b} dollars for {thing}."),
            "*": ("Then {his} money grows to {b} times as much.",),
            "/": ("{He} splits the money into {b} equal parts and keeps one part.",),
        },
        step="{name} has {x} {op} {b} = {y} dollars.",
        questions=("How many dollars does {name} have now?", "How many dollars does {name} have left?"),
        slots=(
            _choices("chore", "washing cars", "walking dogs", "mowing lawns", "cleaning rooms"),
            _choices("thing", "a book", "a toy", "lunch", "a ticket", "a gift", "a hat"),
        ),
    ),
    Story(
        name="farm",
        start=("A farm has {a} {unit}.", "There are {a} {unit} on a farm."),
        ops={
            "+": ("{b} more {unit} arrive.", "The farmer buys {b} more {unit}.", "{b} baby {unit} are born."),
            "-": ("{b} {unit} are sold.", "The farmer sells {b} {unit}.", "{b} {unit} run away."),
            "*": ("Then the number of {unit} becomes {b} times as large.",),
            "/": ("The {unit} are split into {b} equal pens and the farm keeps one pen.",),
        },
        step="The farm has {x} {op} {b} = {y} {unit}.",
        questions=("How many {unit} does the farm have now?",),
        slots=(_choices("unit", "cows", "sheep", "goats", "pigs", "ducks", "hens", "horses", "rabbits"),),
    ),
    Story(
        name="rate",
        start=("{name} {verb} {a} {unit} every day for {k} days.", "For {k} days, {name} {verb} {a} {unit} each day."),
        ops={
            "+": ("After that {he} {verb} {b} more {unit}.", "On the last day {he} also {verb} {b} extra {unit}."),
            "-": ("But {b} of the {unit} do not count.",),
        },
        step="{name} {verb} {x} {op} {b} = {y} {unit}.",
        questions=("How many {unit} does {name} {base} in all?",),
        slots=(
            (
                {"verb": "reads", "base": "read", "unit": "pages"},
                {"verb": "runs", "base": "run", "unit": "miles"},
                {"verb": "swims", "base": "swim", "unit": "laps"},
                {"verb": "writes", "base": "write", "unit": "letters"},
                {"verb": "bakes", "base": "bake", "unit": "cakes"},
            ),
        ),
        product_start=True,
    ),
    Story(
        name="shop",
        start=("{name} buys {a} {good} for {k} dollars each.", "{name} buys {a} {good} that cost {k} dollars each."),
        ops={
            "+": ("{He} also pays {b} dollars for {thing}.", "Shipping costs {b} dollars more."),
            "-": ("{He} uses a coupon for {b} dollars off.", "The shop gives {him} {b} dollars back."),
        },
        step="{name} pays {x} {op} {b} = {y} dollars.",
        questions=("How many dollars does {name} pay in total?",),
        slots=(
            _choices("good", "pens", "notebooks", "tickets", "cups", "shirts", "plants"),
            _choices("thing", "a bag", "a card", "a box", "a ribbon"),
        ),
        product_start=True,
    ),
)


def split_of(question: str) -> str:
    """``"test"`` (held out: test or validation) or ``"train"``: a stable hash of the question
    text picks the bucket."""
    digest = hashlib.blake2b(question.encode("utf-8"), digest_size=8).digest()
    return "test" if int.from_bytes(digest, "big") % TEST_BUCKETS == 0 else "train"


def _operand(rng: random.Random, op: str, x: int) -> int | None:
    """A valid operand for ``x op b`` (results stay in [2, MAX_VALUE], so never "1 apples"),
    or None if there is none."""
    if op == "+":
        hi = min(ADD_RANGE[1], MAX_VALUE - x)
        return rng.randint(ADD_RANGE[0], hi) if hi >= ADD_RANGE[0] else None
    if op == "-":
        return rng.randint(1, min(x - 2, SUB_MAX)) if x >= 3 else None
    if op == "*":
        hi = min(FACTOR_RANGE[1], MAX_VALUE // x)
        return rng.randint(FACTOR_RANGE[0], hi) if hi >= FACTOR_RANGE[0] else None
    divisors = [k for k in range(FACTOR_RANGE[0], FACTOR_RANGE[1] + 1) if x % k == 0 and x // k >= 2]
    return rng.choice(divisors) if divisors else None


def _free_templates(story: Story, op: str) -> tuple[str, ...]:
    """The operation sentences that still read as English with ``{b}`` dropped
    ("{He} sells {b} {unit}." → "She sells shells."; not "{b} {unit} run away.")."""
    return tuple(
        t
        for t in story.ops[op]
        if not t.startswith("{b}") and "{b} of" not in t and "{b} dollars off" not in t and "{b} extra" not in t
    )


def _sentence(rng: random.Random, story: Story, op: str, b: int, free: bool, fill: dict) -> str:
    if free:
        return " ".join(rng.choice(_free_templates(story, op)).format(b="", **fill).split())
    templates = story.ops[op]
    return rng.choice(templates).format(b=b, **fill)


def _draw(rng: random.Random, level: int, free: float = 0.0) -> Problem:
    """One problem from ``rng`` (any split); see :func:`generate`."""
    story = rng.choice(STORIES)
    (name, sex), friend = rng.sample(PEOPLE, 2)
    fill = {"name": name, "friend": friend[0], **PRONOUNS[sex]}
    for slot in story.slots:
        fill.update(rng.choice(slot))
    sentences, steps = [], []
    chain: list[tuple[str, int | None]] = []
    if story.product_start:
        a_range, k_range = FREE_PRODUCT_RANGE if free > 0 else PRODUCT_RANGE
        a, k = rng.randint(*a_range), rng.randint(*k_range)
        start, x = a, a * k
        sentences.append(rng.choice(story.start).format(a=a, k=k, **fill))
        steps.append(story.step.format(x=a, op="*", b=k, y=x, **fill))
        chain.append(("*", k))
    else:
        start = x = rng.randint(*START_RANGE)
        sentences.append(rng.choice(story.start).format(a=x, **fill))
    while len(steps) < level:
        # A free step is an addition or subtraction whose sentence reads well without its amount.
        is_free = free > 0 and rng.random() < free
        ops = [op for op in story.ops if not is_free or (op in FREE_OPS and _free_templates(story, op))]
        options = [(op, b) for op in ops if (b := _operand(rng, op, x)) is not None]
        if not options:  # e.g. "+" unavailable near MAX_VALUE: fall back to a stated amount
            is_free = False
            options = [(op, b) for op in story.ops if (b := _operand(rng, op, x)) is not None]
        op, b = rng.choice(options)  # never empty: every story has "-" (any x ≥ 3) and "+" (any x ≤ 997)
        y = apply_op(op, x, b)
        assert y is not None, "_operand only offers amounts that divide evenly"
        sentences.append(_sentence(rng, story, op, b, is_free, fill))
        steps.append(story.step.format(x=x, op=op, b=b, y=y, **fill))
        chain.append((op, None if is_free else b))
        x = y
    sentences.append(rng.choice(story.questions).format(**fill))
    return Problem(
        question=" ".join(sentences),
        solution=" ".join(steps) + f" #### {x}",
        answer=str(x),
        level=level,
        source=f"wordproblem:{story.name}",
        start=start,
        chain=tuple(chain),
    )


def _check_level(level: int) -> None:
    if level not in LEVELS:
        raise ValueError(f"level ({level!r}) must be one of {LEVELS} (the number of operations)")


def _check_free(free: float) -> None:
    if not isinstance(free, (int, float)) or not 0.0 <= free <= 1.0:
        raise ValueError(f"free ({free!r}) must be a probability in [0, 1]")


def _stream_name(split: str, level: int, free: float) -> str:
    # free = 0 keeps the original streams, so the fixed-answer problems of earlier releases are unchanged.
    return f"wordproblem/{split}/{level}" + (f"/free{free:g}" if free else "")


def generate(seed: int, level: int, split: str = "train", free: float = 0.0) -> Problem:
    """The problem of ``(seed, level, split, free)``: the same arguments always give the same problem.

    Args:
        seed: any integer; each split has its own stream, so seeds need not be disjoint.
        level: number of arithmetic operations, 1 to 3.
        split: ``"train"``, ``"test"`` or ``"validation"``; the question's hash bucket always
            matches it (validation questions are held out too, from a stream of their own).
        free: probability that an addition or subtraction leaves its amount unstated
            (several valid answers; see the module docstring). 0 gives the fixed-answer problems.

    >>> generate(0, 1).question == generate(0, 1).question
    True
    """
    _check_level(level)
    if split not in SPLITS:
        raise ValueError(f"split ({split!r}) must be one of {SPLITS}")
    _check_free(free)
    rng = random.Random(f"{_stream_name(split, level, free)}/{seed}")
    bucket = "train" if split == "train" else "test"
    while True:  # rejection: ~1.1 draws for train, ~10 for the held-out splits
        problem = _draw(rng, level, free)
        if split_of(problem.question) == bucket:
            return problem


def _distinct(level: int, n: int, free: float, split: str, exclude: frozenset = frozenset()) -> list[Problem]:
    """The first ``n`` distinct problems of a split's stream whose questions are not in ``exclude``."""
    _check_level(level)
    _check_free(free)
    if n < 1:
        raise ValueError(f"n ({n}) must be ≥ 1")
    seen, seed = set(exclude), 0
    out: list[Problem] = []
    while len(out) < n:
        problem = generate(seed, level, split, free)
        seed += 1
        if problem.question not in seen:
            seen.add(problem.question)
            out.append(problem)
        if seed > 100 * n + 10 * len(exclude):
            raise RuntimeError(f"level {level} has fewer than {n} distinct {split} problems")
    return out


def test_set(level: int, n: int = TEST_SET_MAX, free: float = 0.0) -> list[Problem]:
    """The fixed test problems of one level: the first ``n`` (≤ ``TEST_SET_MAX``) distinct
    test-stream problems. Only reports read them."""
    if n > TEST_SET_MAX:
        raise ValueError(f"n ({n}) must be ≤ {TEST_SET_MAX}, the test set's size (validation problems lie beyond it)")
    return _distinct(level, n, free, "test")


def validation_set(level: int, n: int = 256, free: float = 0.0) -> list[Problem]:
    """Held-out problems for checkpoint selection and tuning: the first ``n`` distinct problems of
    the validation stream, none of whose questions is in the test set (all ``TEST_SET_MAX``)."""
    _check_level(level)
    _check_free(free)
    return _distinct(level, n, free, "validation", _test_questions(level, free))


@functools.lru_cache(maxsize=16)  # the whole test set, built once per level and free (0.4 s each time)
def _test_questions(level: int, free: float) -> frozenset[str]:
    return frozenset(p.question for p in test_set(level, TEST_SET_MAX, free))


test_set.__test__ = False  # type: ignore[attr-defined]  # not a pytest test, though tests import it by this name


def lexicon() -> list[str]:
    """Every literal text the generator can emit (templates with slots removed, slot values),
    so a word-level tokenizer can be built that never meets an unknown word."""
    texts = ["####", "=", *SYMBOLS]
    for story in STORIES:
        texts += [re.sub(r"\{\w+\}", " ", t) for t in story.templates()]
        texts += [v for slot in story.slots for alt in slot for v in alt.values()]
    texts += [name for name, _ in PEOPLE]
    texts += [v for forms in PRONOUNS.values() for v in forms.values()]
    return texts
