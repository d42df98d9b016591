"""Sweep strategies on held-out problems and write the accuracy-vs-NFE report.

    python -m dllm_viz.eval --n 200 --seeds 0 1 2 --out docs/results/tiny-baselines
    python -m dllm_viz.eval --policy assets/policies/semi-ar-alpha1 --temperatures 0.5 1.0 --betas 1 2 4 \\
        --no-heuristics --out outputs/policy-eval
    torchrun --standalone --nproc-per-node 2 -m dllm_viz.eval --problems 200 --out outputs/eval

Under ``torchrun`` each process decodes its shard of the problems (one GPU each when there are
GPUs, gloo on CPU) and rank 0 writes the report, the same as one process would (``seconds`` aside).

Writes runs.csv (one row per run and problem subset: all problems, and those with an open amount),
results.md (per setting and subset: accuracy ± std over seeds, mean NFE, tokens/step, Pareto-front
markers; then the target verdicts), pareto.html (interactive, plotly.js inside) and pareto.png
(kaleido, which needs Chrome/Chromium). Inputs and ``--out`` are checked before any decoding; a non-empty ``--out``
is refused unless ``--force``.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ..backends import DLLM, ModelLoadError, load_backend
from ..blocks import default_block_length
from ..engine import EngineConfig
from ..flags import add_arguments, from_args
from ..generate import ModelFlags
from ..outputs import check_destination
from ..rl.distributed import Processes, setup
from ..strategies import StrategySpec
from ..tasks.problem import Problem
from ..tasks.wordproblems import DEFAULT_FREE, DEFAULT_LEVEL, test_set, validation_set
from .report import has_free_rows, read_runs, write_report
from .sweep import heuristic_grid, policy_grid, summarize, sweep


def build_parser() -> argparse.ArgumentParser:
    """The command's flags (``python -m dllm_viz.eval --help``)."""
    parser = argparse.ArgumentParser(prog="python -m dllm_viz.eval", description=__doc__.splitlines()[0])
    add_arguments(parser, ModelFlags)  # --model, --device, --trust-remote-code, --model-code, --threads
    parser.add_argument("--level", type=int, nargs="+", default=[DEFAULT_LEVEL], help="word-problem levels to pool")
    parser.add_argument(
        "--free",
        type=float,
        default=DEFAULT_FREE,
        help="probability that an amount is left open (several valid answers); 0: every amount stated",
    )
    parser.add_argument(  # --problems: torchrun's own parser reads `--n` as an ambiguous abbreviation of its flags
        "--n", "--problems", dest="n", type=int, default=200, help="held-out problems per level"
    )
    parser.add_argument(
        "--split",
        choices=("test", "validation"),
        default="test",
        help="validation: for tuning (τ_π, β, checkpoints); test: for reported numbers only",
    )
    parser.add_argument("--gen-length", type=int, default=EngineConfig.gen_length)
    parser.add_argument("--settings", default="semi-ar,full", help="comma list of semi-ar (BL = L/8) and full (BL = L)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batch-size", type=int, default=100)
    _policy_and_output_flags(parser)
    return parser


def _policy_and_output_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", action="append", default=[], help="policy folder (repeatable)")
    parser.add_argument("--temperatures", type=float, nargs="+", default=[1.0], help="policy τ_π grid")
    parser.add_argument("--betas", type=float, nargs="+", default=[1.0], help="policy β grid")
    parser.add_argument(
        "--policy-label",
        default=None,
        help="one family name for all --policy folders (e.g. one front across α); default: policy:<folder>",
    )
    parser.add_argument("--no-heuristics", action="store_true")
    parser.add_argument("--compact", action="store_true", help="fewer heuristic points per family (CPU budgets)")
    parser.add_argument("--strategies", default=None, help="comma list restricting the heuristic families")
    parser.add_argument("--out", default="outputs/eval")
    parser.add_argument(
        "--force", action="store_true", help="write into a non-empty --out folder, replacing its report"
    )
    parser.add_argument(
        "--include",
        type=Path,
        action="append",
        default=[],
        help="runs.csv of an earlier sweep on the same problems to report alongside (repeatable)",
    )


@dataclass
class Inputs:
    """A sweep's checked inputs: the problems, block lengths, policies, earlier rows and the model."""

    problems: list[Problem]
    block_lengths: list[int]
    policies: list[StrategySpec]
    earlier: list[dict]
    backend: DLLM


def check_inputs(args: argparse.Namespace, block_lengths: list[int], processes: Processes) -> Inputs:
    """Every input and the destination, checked before any decoding so a mistake costs nothing
    (ValueError, OSError or ModelLoadError naming it); then the model is loaded."""
    L = args.gen_length
    if L < 1:
        raise ValueError(f"--gen-length ({L}) must be ≥ 1")
    held_out = test_set if args.split == "test" else validation_set
    problems = [p for level in args.level for p in held_out(level, args.n, args.free)]
    model = from_args(ModelFlags, args)  # refuses --threads < 1
    if len(problems) < processes.world:
        raise ValueError(
            f"{len(problems)} problems (--n × levels) cannot be shared by {processes.world} processes; "
            "use more problems or fewer processes"
        )
    check_destination(
        args.out, kind="folder", force=args.force, hint="pass --force to replace its report, or choose another --out"
    )
    earlier = _included_rows(args.include, problems, L, block_lengths)
    policies = [
        s
        for path in args.policy
        for s in policy_grid(path, args.policy_label or f"policy:{Path(path).name}", args.temperatures, args.betas)
    ]
    for spec in policies:
        spec.build()  # loads and validates the policy folder now, not halfway through the sweep
    torch.set_num_threads(model.threads)
    backend = load_backend(
        model.model,
        device=processes.device(model.device),
        trust_remote_code=model.trust_remote_code,
        model_code=model.model_code,
    )
    return Inputs(problems, block_lengths, policies, earlier, backend)


def _included_rows(paths: list[Path], problems: list[Problem], L: int, block_lengths: list[int]) -> list[dict]:
    """The rows of earlier sweeps' runs.csv (``--include``) in this sweep's settings."""
    earlier = []
    open_bits = "".join("1" if p.free else "0" for p in problems)
    for path in paths:
        included = read_runs(path, expect_n=len(problems), gen_length=L, open_bits=open_bits)
        if 0 < open_bits.count("1") < len(problems) and not has_free_rows(included):
            logging.warning(
                "%s has no rows for the problems with an open amount (written before subsets, without "
                "per-problem NFE, so they cannot be derived): its runs appear in the all-problem tables only",
                path,
            )
        earlier += [r for r in included if r["block_length"] in block_lengths]  # only this sweep's settings
    return earlier


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    processes = setup()

    # 1. Check every input and the destination before any decoding, so a mistake costs nothing.
    names = {"semi-ar": default_block_length(args.gen_length), "full": args.gen_length}
    try:
        block_lengths = [names[s.strip()] for s in args.settings.split(",")]
    except KeyError as err:
        parser.error(f"unknown setting {err}; use semi-ar and/or full")
    try:
        inputs = check_inputs(args, block_lengths, processes)
    except (OSError, ValueError, ModelLoadError) as err:
        parser.exit(2, f"error: {err}\n")
    L = args.gen_length

    def specs_for(bl: int) -> list[StrategySpec]:
        grid = [] if args.no_heuristics else heuristic_grid(L, bl, compact=args.compact)
        if args.strategies:
            keep = set(args.strategies.split(","))
            grid = [s for s in grid if s.name in keep]
        return grid + inputs.policies

    # 2. Sweep, then write the report.
    bar = tqdm(total=1, desc="sweep", disable=not processes.main)

    def progress(done: int, total: int, what: str) -> None:
        bar.total = total
        bar.set_postfix_str(what[:60])
        bar.update(done - bar.n)

    rows = sweep(
        inputs.backend, inputs.problems, [], inputs.block_lengths, L, args.seeds, args.batch_size,
        specs_for=specs_for, progress=progress, processes=processes,
    )  # fmt: skip
    bar.close()
    if processes.main:  # every process holds all rows; rank 0 writes them
        _write(args, argv, inputs.earlier + rows, len(inputs.problems))
    processes.close()
    return 0


def _write(args: argparse.Namespace, argv: list[str] | None, rows: list[dict], n_problems: int) -> None:
    """The report of ``rows`` into ``--out``, printed with where it went."""
    summary = summarize(rows)
    command = "python -m dllm_viz.eval " + " ".join(map(shlex.quote, argv if argv is not None else sys.argv[1:]))
    kind = "free-choice" if args.free else "fixed-answer"
    title = (
        f"{Path(args.model).name}: {n_problems} {args.split}-split {kind} problems (levels {args.level}, "
        f"free={args.free:g}), L={args.gen_length}, seeds {args.seeds}"
    )
    paths = write_report(rows, summary, args.out, title, command)
    print(Path(paths["md"]).read_text())
    print("wrote", ", ".join(str(p) for p in paths.values()))


if __name__ == "__main__":
    raise SystemExit(main())
