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
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class EvalFlags:
    """What the sweep decodes (problems, settings, seeds, strategies) and where its report goes;
    the model comes from :class:`~dllm_viz.generate.ModelFlags`. Checked by :func:`check_inputs`."""

    level: tuple[int, ...] = field(default=(DEFAULT_LEVEL,), metadata={"help": "word-problem levels to pool"})
    free: float = field(
        default=DEFAULT_FREE,
        metadata={"help": "probability that an amount is left open (several valid answers); 0: every amount stated"},
    )
    # --problems: torchrun's own parser reads `--n` as an ambiguous abbreviation of its flags
    n: int = field(default=200, metadata={"aliases": ("--problems",), "help": "held-out problems per level"})
    split: str = field(
        default="test",
        metadata={
            "choices": ("test", "validation"),
            "help": "validation: for tuning (τ_π, β, checkpoints); test: for reported numbers only",
        },
    )
    gen_length: int = EngineConfig.gen_length
    settings: str = field(
        default="semi-ar,full", metadata={"help": "comma list of semi-ar (BL = L/8) and full (BL = L)"}
    )
    seeds: tuple[int, ...] = (0, 1, 2)
    batch_size: int = 100
    policy: tuple[str, ...] = field(default=(), metadata={"repeatable": True, "help": "policy folder (repeatable)"})
    temperatures: tuple[float, ...] = field(default=(1.0,), metadata={"help": "policy τ_π grid"})
    betas: tuple[float, ...] = field(default=(1.0,), metadata={"help": "policy β grid"})
    policy_label: str | None = field(
        default=None,
        metadata={
            "help": "one family name for all --policy folders (e.g. one front across α); default: policy:<folder>"
        },
    )
    heuristics: bool = True  # --no-heuristics
    compact: bool = field(default=False, metadata={"help": "fewer heuristic points per family (CPU budgets)"})
    strategies: str | None = field(default=None, metadata={"help": "comma list restricting the heuristic families"})
    out: str = "outputs/eval"
    force: bool = field(default=False, metadata={"help": "write into a non-empty --out folder, replacing its report"})
    include: tuple[Path, ...] = field(
        default=(),
        metadata={
            "repeatable": True,
            "help": "runs.csv of an earlier sweep on the same problems to report alongside (repeatable)",
        },
    )

    def __post_init__(self) -> None:
        for name in ("level", "seeds", "policy", "temperatures", "betas", "include"):
            object.__setattr__(self, name, tuple(getattr(self, name)))  # argparse gives lists


def build_parser() -> argparse.ArgumentParser:
    """The command's flags (``python -m dllm_viz.eval --help``), generated from
    :class:`~dllm_viz.generate.ModelFlags` and :class:`EvalFlags`."""
    parser = argparse.ArgumentParser(prog="python -m dllm_viz.eval", description=__doc__.splitlines()[0])
    add_arguments(parser, ModelFlags)  # --model, --device, --trust-remote-code, --model-code, --threads
    add_arguments(parser, EvalFlags)
    return parser


@dataclass
class Inputs:
    """A sweep's checked inputs: the problems, block lengths, policies, earlier rows and the model."""

    problems: list[Problem]
    block_lengths: list[int]
    policies: list[StrategySpec]
    earlier: list[dict]
    backend: DLLM


def check_inputs(flags: EvalFlags, args: argparse.Namespace, block_lengths: list[int], processes: Processes) -> Inputs:
    """Every input and the destination, checked before any decoding so a mistake costs nothing
    (ValueError, OSError or ModelLoadError naming it); then the model (its flags read from ``args``
    among the checks) is loaded."""
    L = flags.gen_length
    if L < 1:
        raise ValueError(f"--gen-length ({L}) must be ≥ 1")
    held_out = test_set if flags.split == "test" else validation_set
    problems = [p for level in flags.level for p in held_out(level, flags.n, flags.free)]
    model = from_args(ModelFlags, args)  # refuses --threads < 1
    if len(problems) < processes.world:
        raise ValueError(
            f"{len(problems)} problems (--n × levels) cannot be shared by {processes.world} processes; "
            "use more problems or fewer processes"
        )
    check_destination(
        flags.out, kind="folder", force=flags.force, hint="pass --force to replace its report, or choose another --out"
    )
    earlier = _included_rows(list(flags.include), problems, L, block_lengths)
    policies = [
        s
        for path in flags.policy
        for s in policy_grid(path, flags.policy_label or f"policy:{Path(path).name}", flags.temperatures, flags.betas)
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
    flags: EvalFlags = from_args(EvalFlags, args)
    logging.basicConfig(level=logging.WARNING)
    processes = setup()

    # 1. Check every input and the destination before any decoding, so a mistake costs nothing.
    names = {"semi-ar": default_block_length(flags.gen_length), "full": flags.gen_length}
    try:
        block_lengths = [names[s.strip()] for s in flags.settings.split(",")]
    except KeyError as err:
        parser.error(f"unknown setting {err}; use semi-ar and/or full")
    try:
        inputs = check_inputs(flags, args, block_lengths, processes)
    except (OSError, ValueError, ModelLoadError) as err:
        parser.exit(2, f"error: {err}\n")
    L = flags.gen_length

    def specs_for(bl: int) -> list[StrategySpec]:
        grid = heuristic_grid(L, bl, compact=flags.compact) if flags.heuristics else []
        if flags.strategies:
            keep = set(flags.strategies.split(","))
            grid = [s for s in grid if s.name in keep]
        return grid + inputs.policies

    # 2. Sweep, then write the report.
    bar = tqdm(total=1, desc="sweep", disable=not processes.main)

    def progress(done: int, total: int, what: str) -> None:
        bar.total = total
        bar.set_postfix_str(what[:60])
        bar.update(done - bar.n)

    rows = sweep(
        inputs.backend, inputs.problems, [], inputs.block_lengths, L, list(flags.seeds), flags.batch_size,
        specs_for=specs_for, progress=progress, processes=processes,
    )  # fmt: skip
    bar.close()
    if processes.main:  # every process holds all rows; rank 0 writes them
        _write(flags, args.model, argv, inputs.earlier + rows, len(inputs.problems))
    processes.close()
    return 0


def _write(flags: EvalFlags, model: str, argv: list[str] | None, rows: list[dict], n_problems: int) -> None:
    """The report of ``rows`` into ``--out``, printed with where it went."""
    summary = summarize(rows)
    command = "python -m dllm_viz.eval " + " ".join(map(shlex.quote, argv if argv is not None else sys.argv[1:]))
    kind = "free-choice" if flags.free else "fixed-answer"
    title = (  # levels and seeds as lists, as the reports always showed them
        f"{Path(model).name}: {n_problems} {flags.split}-split {kind} problems (levels {list(flags.level)}, "
        f"free={flags.free:g}), L={flags.gen_length}, seeds {list(flags.seeds)}"
    )
    paths = write_report(rows, summary, flags.out, title, command)
    print(Path(paths["md"]).read_text())
    print("wrote", ", ".join(str(p) for p in paths.values()))


if __name__ == "__main__":
    raise SystemExit(main())
