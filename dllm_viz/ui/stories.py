"""Curated examples: a prompt, settings and two strategies where a learned policy and a heuristic
part ways, with a caption saying what to look at.

The Compare tab opens on the first story whose strategies this build has, so a visitor's first
click on Run shows the two panes committing different tokens. Stories are chosen, not invented:
``python -m dllm_viz.ui.stories`` runs a pair of strategies through the app's own lockstep path on
held-out problems and lists the problems where their answers differ; the captions below describe
what those runs show (tests/ui/test_stories.py re-runs every story and checks that the panes diverge
and that pane A's answer is right and pane B's wrong).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..assets import shipped_policies
from ..flags import add_arguments, from_args
from ..strategies import POLICY, StrategySpec
from .allowed_models import default_model
from .picker import pane_title, with_policy_defaults

if TYPE_CHECKING:
    from ..engine import EngineConfig
    from ..tasks import Problem
    from .session import Comparison


@dataclass(frozen=True)
class Story:
    """One curated comparison.

    Attributes:
        title: the button text.
        prompt: a held-out problem (its answer is known, so both panes get ✓/✗).
        caption: what to look at, in one or two sentences.
        a, b: the panes' strategies and parameters (A: the learned policy).
        full_diffusion: BL = L; else semi-AR with ``block_length``.
    """

    title: str
    prompt: str
    caption: str
    a: StrategySpec
    b: StrategySpec
    full_diffusion: bool = False
    gen_length: int = 64
    block_length: int = 8
    seed: int = 0

    @property
    def effective_block_length(self) -> int:
        return self.gen_length if self.full_diffusion else self.block_length

    def available(self) -> bool:
        """Whether this build can run both panes (shipped policies can be absent)."""
        return all(spec.name != POLICY or spec.policy in shipped_policies() for spec in (self.a, self.b))


STORIES: tuple[Story, ...] = (
    Story(
        "Full diffusion: learned policy vs LLaDA's fixed schedule",
        "There are 4 goats on a farm. The farmer buys more goats. How many goats does the farm have now?",
        "B (High-Confidence-K, 8 tokens per step, LLaDA's default) spends its first six steps on the trailing "
        "end-of-sequence tokens, the most confident ones, then has to commit the open amount and the result in the "
        "same step, drawn independently: they disagree (4 + 2 = 1). A (the learned policy that reads each "
        "position's confidence and entropy, with the plus-one action) commits the sentence's frame and the padding "
        "in its second step, the open amount as its one extra pick in the third, then the result and the answer "
        "that amount pins down: right in 4 forward passes.",
        a=StrategySpec(POLICY, policy="full-diffusion-entropy"),  # at its own τ_π and β (trained_for.json)
        b=StrategySpec("confidence", {"steps": 8}),
        full_diffusion=True,
    ),
    Story(
        "Semi-AR blocks: learned policy vs one step per block",
        "A farm has 6 goats. The farmer sells goats. How many goats does the farm have now?",
        "Blocks of 8 tokens. B (High-Confidence-K, one step per block) commits the whole first block at once: the "
        "open amount and the result are drawn in the same forward pass, so the equation breaks (6 - 3 = 2). "
        "A (the learned policy that reads confidence and entropy, with the plus-one action) commits the block's "
        "fixed words and, as its one extra pick, the amount; then the result alone: one more forward pass, a "
        "correct chain.",
        a=StrategySpec(POLICY, policy="semi-ar-entropy"),  # at its own τ_π and β (trained_for.json)
        b=StrategySpec("confidence", {"steps": 8}),
    ),
)


def stories() -> tuple[Story, ...]:
    """The curated stories this build can run, in display order."""
    return tuple(s for s in STORIES if s.available())


def default_story() -> Story | None:
    found = stories()
    return found[0] if found else None


# ---- finding candidates -----------------------------------------------------------------------


def run_pair(
    prompt: str, a: StrategySpec, b: StrategySpec, config: EngineConfig, model: str | None = None
) -> Comparison:
    """Both panes on ``prompt`` through the app's lockstep path; the finished Comparison."""
    from .examples import known_answer
    from .lockstep import collect
    from .session import Comparison, new_run_id

    a, b = with_policy_defaults(a), with_policy_defaults(b)
    comp = Comparison(
        new_run_id(), None, None, labels=(f"A · {pane_title(a)}", f"B · {pane_title(b)}"), expected=known_answer(prompt)
    )
    for _ in collect(comp, model or default_model(), prompt, (a, b), config):
        pass
    return comp


def candidates(
    a: StrategySpec, b: StrategySpec, config: EngineConfig, problems: Iterable[Problem], model: str | None = None
) -> list[dict]:
    """Problems where A's answer is right and B's wrong, fewest A steps first."""
    found = []
    for problem in problems:
        comp = run_pair(problem.question, a, b, config, model)
        va, vb = comp.verdict(comp.a), comp.verdict(comp.b)
        assert va is not None and vb is not None and comp.a is not None and comp.b is not None  # both finished
        if va.correct and not vb.correct:
            found.append(
                {
                    "prompt": problem.question,
                    "divergence": comp.divergence,
                    "nfe_a": comp.a.nfe,
                    "nfe_b": comp.b.nfe,
                    "text_a": comp.a.text,
                    "text_b": comp.b.text,
                }
            )
    return sorted(found, key=lambda c: (c["nfe_a"], c["divergence"] or 0))


def _spec(text: str) -> StrategySpec:
    """A strategy as :meth:`StrategySpec.parse` reads it, then ``key=value`` parameters:
    ``heuristic:threshold,threshold=0.7``."""
    choice, *pairs = text.split(",")
    params = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        params[key] = float(value) if "." in value else int(value)
    return StrategySpec.parse(choice, **params)


@dataclass(frozen=True)
class StoriesFlags:
    """A search for a story: the two panes' strategies, the decoding settings and the problems tried."""

    a: StrategySpec = field(metadata={"type": _spec, "help": "e.g. policy:full-diffusion-es"})
    b: StrategySpec = field(metadata={"type": _spec, "help": "e.g. heuristic:threshold,threshold=0.7"})
    full: bool = field(default=False, metadata={"help": "full diffusion (BL = L)"})
    gen_length: int = 64
    block_length: int = field(default=8, metadata={"help": "semi-AR block length (ignored with --full)"})
    n: int = field(default=50, metadata={"help": "held-out problems to try"})
    show: int = field(default=8, metadata={"help": "candidates printed"})


def build_parser() -> argparse.ArgumentParser:
    """The command's flags, generated from :class:`StoriesFlags`."""
    parser = argparse.ArgumentParser(
        prog="python -m dllm_viz.ui.stories",
        description="List held-out problems where pane A is right and pane B wrong.",
    )
    add_arguments(parser, StoriesFlags)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ..engine import EngineConfig
    from ..tasks import DEFAULT_FREE, DEFAULT_LEVEL, test_set

    args = from_args(StoriesFlags, build_parser().parse_args(argv))
    L = args.gen_length
    config = EngineConfig.full(L) if args.full else EngineConfig(gen_length=L, block_length=args.block_length)
    found = candidates(args.a, args.b, config, test_set(DEFAULT_LEVEL, args.n, DEFAULT_FREE))
    print(f"{len(found)} of {args.n} problems: A right, B wrong")
    for c in found[: args.show]:
        print(
            f"- diverge at step {c['divergence']}, NFE A {c['nfe_a']} vs B {c['nfe_b']}: {c['prompt']}\n"
            f"    A: {c['text_a']!r}\n    B: {c['text_b']!r}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
