"""Paired accuracy differences between chosen runs of earlier sweeps, on every subset.

The report's target check compares each policy point with the best matched heuristic only; a
claim such as "the new policy beats the old one" needs its own paired interval:

    python -m dllm_viz.eval.pairs outputs/a/runs.csv outputs/b/runs.csv --n 500 \\
        --pair "policy:new|temperature=0.5, beta=1.0" "eb|gamma=0.5"

A run is named ``strategy|parameters`` as the report's tables print them (parameters may be a
unique part). Prints one line per subset and pair; reads files, decodes nothing.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..flags import add_arguments, from_args
from .report import read_runs
from .stats import paired_difference
from .sweep import summarize


def find(summary: Sequence[dict], name: str, setting: str | None, subset: str) -> dict:
    """The one summary entry ``strategy|parameters`` names (parameters matched as a substring)."""
    strategy, _, params = name.partition("|")
    hits = [
        s
        for s in summary
        if s["strategy"] == strategy
        and params.strip() in s["params"]
        and s["subset"] == subset
        and (setting is None or s["setting"] == setting)
    ]
    if len(hits) != 1:
        found = sorted({f"{s['strategy']}|{s['params']} ({s['setting']})" for s in hits})
        raise ValueError(
            f"{name!r} names {len(hits)} runs on the {subset} subset{': ' + '; '.join(found) if found else ''}"
        )
    return hits[0]


@dataclass(frozen=True)
class PairsFlags:
    """Which runs of the sweeps' files to compare: the sweeps' problems, length and setting."""

    n: int = field(metadata={"help": "problems the sweeps used"})
    gen_length: int = field(default=64, metadata={"help": "L of the sweeps' runs"})
    setting: str | None = field(default=None, metadata={"help": "e.g. 'full diffusion' (default: any, if unique)"})

    def __post_init__(self) -> None:
        if self.gen_length < 1:
            raise ValueError(f"--gen-length ({self.gen_length}) must be ≥ 1")


def build_parser() -> argparse.ArgumentParser:
    """The command's flags: the files and pairs to compare, then :class:`PairsFlags`."""
    parser = argparse.ArgumentParser(prog="python -m dllm_viz.eval.pairs", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="runs.csv files of sweeps on the same problems")
    parser.add_argument(
        "--pair", nargs=2, action="append", required=True, metavar=("A", "B"), help="A minus B (repeatable)"
    )
    add_arguments(parser, PairsFlags)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        flags = from_args(PairsFlags, args)
        rows = [r for path in args.runs for r in read_runs(path, flags.n, flags.gen_length)]
        summary = summarize(rows)
        for subset in sorted({s["subset"] for s in summary}):
            for a_name, b_name in args.pair:
                a, b = (find(summary, name, flags.setting, subset) for name in (a_name, b_name))
                if a["per_problem"] is None or b["per_problem"] is None:
                    raise ValueError(f"{a_name!r} or {b_name!r} has no per-problem results")
                d = paired_difference(a["per_problem"], b["per_problem"])
                print(
                    f"{subset} ({a['n'] if subset == 'all' else len(a['per_problem'])} problems): {a_name} "
                    f"{a['accuracy']:.1f} % @ NFE {a['mean_nfe']:.2f} − {b_name} {b['accuracy']:.1f} % @ NFE "
                    f"{b['mean_nfe']:.2f} = {d.points:+.1f} points (95 % CI {d.low:+.1f} … {d.high:+.1f})"
                )
    except (OSError, ValueError) as err:
        parser.exit(2, f"error: {err}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
