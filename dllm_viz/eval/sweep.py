"""Accuracy-vs-NFE sweeps: strategies × parameters × settings × seeds on held-out problems.

Sweeps are plain functions returning rows (dicts), so the CLI, the app's Benchmark tab and
the model cards all compute the same numbers; plotting and tables live in ``report.py``.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import torch.distributed as dist

from ..blocks import setting_label
from ..engine import EngineConfig
from ..rl.distributed import Processes
from ..strategies import StrategySpec
from ..tasks.problem import Problem
from .solve import SolveReport, solve
from .stats import per_problem

if TYPE_CHECKING:
    from ..backends import DLLM


def heuristic_grid(gen_length: int, block_length: int, compact: bool = False) -> list[StrategySpec]:
    """The baseline grid of the paper's comparisons (samplers.md §6), valid for (L, BL).

    Fixed-k strategies run at 1, 2, 4 and 8 tokens per step (``steps`` = L/k, kept a multiple
    of the number of blocks) and at one step per block (all of L at once in full diffusion),
    the most parallel decode there is; thresholds and bounds span slow to fast. ``compact`` is
    for CPU budgets (about a third of the forward passes): High-Confidence-K keeps every k (the
    accuracy-vs-parallelism curve), the other fixed-k families run at 4 tokens per step and one
    step per block (Random-K at 4 only), with five λ, two factors and three γ (for each EB uncertainty).
    """
    n_blocks = gen_length // block_length

    def steps_for(per_step: Iterable[int], one_step_per_block: bool = True) -> list[int]:
        s = {gen_length // k for k in per_step if (gen_length // k) % n_blocks == 0 and gen_length // k >= n_blocks}
        return sorted(s | ({n_blocks} if one_step_per_block else set()), reverse=True)

    every, few = (1, 2, 4, 8), ((4,) if compact else (1, 2, 4, 8))
    grid = [StrategySpec("random", {"steps": s}) for s in steps_for(few, one_step_per_block=False)]
    grid += [StrategySpec("confidence", {"steps": s}) for s in steps_for(every)]
    grid += [StrategySpec(name, {"steps": s}) for name in ("margin", "entropy") for s in steps_for(few)]
    grid += [
        StrategySpec("threshold", {"threshold": t})
        for t in ((0.99, 0.9, 0.7, 0.5, 0.3) if compact else (0.99, 0.95, 0.9, 0.8, 0.7, 0.5, 0.3, 0.1))
    ]
    grid += [StrategySpec("factor", {"factor": f}) for f in ((1.0, 4.0) if compact else (0.5, 1.0, 2.0, 4.0))]
    grid += [  # EB-Sampler on entropy and on −log max-prob (the policy's only input) share γ's grid
        StrategySpec(name, {"gamma": g})
        for name in ("eb", "eb-maxprob")
        for g in ((0.01, 0.1, 1.0) if compact else (0.001, 0.01, 0.1, 0.5, 1.0, 2.0))
    ]
    return grid


def policy_grid(
    path: str, label: str, temperatures: Iterable[float] = (1.0,), betas: Iterable[float] = (1.0,)
) -> list[StrategySpec]:
    """A shipped policy at several test-time knobs (τ_π, β), in the test-time form of its trained
    action (``mode="auto"``: Bernoulli with argmax fallback, or plus-one)."""
    return [
        StrategySpec("policy", {"mode": "auto", "temperature": t, "beta": b}, policy=path, label=label)
        for t in temperatures
        for b in betas
    ]


SUBSETS = ("all", "free")  # every problem; the problems that leave an amount open (Problem.free)


def subset_of(row: Mapping) -> str:
    """A run's problem subset; rows written before subsets existed (no ``subset`` column) cover all."""
    return row.get("subset") or "all"


def subset_label(subset: str, n: int) -> str:
    """How reports name a subset: ``"all 500 problems"``, ``"309 problems with an open amount"``."""
    return f"all {n} problems" if subset == "all" else f"{n} problems with an open amount"


def panels(summary: Iterable[dict]) -> dict[tuple[str, str], list[dict]]:
    """Summary rows by (setting, subset), settings in order of appearance and ``all`` before ``free``:
    each panel is one table, one plot panel, one front and one target check."""
    rows = list(summary)
    settings = list(dict.fromkeys(r["setting"] for r in rows))
    keys = sorted(
        dict.fromkeys((r["setting"], subset_of(r)) for r in rows),
        key=lambda k: (settings.index(k[0]), SUBSETS.index(k[1])),
    )
    return {k: [r for r in rows if (r["setting"], subset_of(r)) == k] for k in keys}


def _row(report: SolveReport, gen_length: int, subset: str, open_bits: str) -> dict:
    return {
        "subset": subset,
        "n": report.n,
        "accuracy": report.accuracy,
        "mean_nfe": report.mean_nfe,
        "tokens_per_step": gen_length / report.mean_nfe,
        "no_answer": report.no_answer,
        "seconds": report.seconds,
        "correct": "".join("1" if c else "0" for c in report.correct),  # per problem, for paired CIs
        "open": open_bits,  # per problem of the whole set: 1 where it leaves an amount open
    }


def sweep(
    backend: DLLM,
    problems: Sequence[Problem],
    specs: Sequence[StrategySpec],
    block_lengths: Sequence[int],
    gen_length: int = 64,
    seeds: Sequence[int] = (0, 1, 2),
    batch_size: int = 64,
    specs_for: Callable[[int], Sequence[StrategySpec]] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    processes: Processes = Processes(),
) -> list[dict]:
    """Rows per (setting, strategy, seed) with accuracy, mean NFE and tokens per step: one over all
    problems (``subset="all"``) and, when some but not all problems leave an amount open, one over
    those (``subset="free"``). Problems with every amount stated are solved by nearly every
    strategy, so they shrink every measured difference; the ``free`` rows show where the decision
    matters. Both rows carry per-problem correctness and which problems are open (``open``).

    Deterministic strategies (see :attr:`StrategySpec.stochastic`) run for the first seed only:
    at temperature 0 the other seeds would repeat the same decode (their summary says 1 seed).

    Args:
        specs_for: optional ``block_length -> specs`` when the grid depends on the setting
            (fixed-k step counts do); otherwise ``specs`` is used for every setting.
        progress: called as ``progress(done, total, description)`` after this process's part of each run.
        processes: under ``torchrun`` (:func:`dllm_viz.rl.distributed.setup`), each process decodes its
            shard of the problems (``problems[rank::world]``) and every process returns the rows of all
            of them. Each row draws from its own random stream (:mod:`dllm_viz.rng`), so the rows equal a
            one-process sweep's, except ``seconds`` (the slowest shard's).
    """
    if len(problems) < processes.world:
        raise ValueError(f"problems ({len(problems)}) must be at least the number of processes ({processes.world})")
    jobs = [
        (bl, spec, seed)
        for bl in block_lengths
        for spec in (specs_for(bl) if specs_for else specs)
        for seed in (seeds if spec.stochastic else seeds[:1])
    ]
    is_open = [p.free for p in problems]
    open_bits = "".join("1" if f else "0" for f in is_open)
    mine, reports = processes.shard(problems), []
    for i, (bl, spec, seed) in enumerate(jobs):
        config = EngineConfig(gen_length=gen_length, block_length=bl, seed=seed)
        reports.append(solve(backend, mine, spec.build(), config, batch_size=batch_size))
        if progress:
            progress(i + 1, len(jobs), f"{setting_label(gen_length, bl)} {spec.family} {spec.describe()} seed {seed}")
    rows = []
    for (bl, spec, seed), report in zip(jobs, _gather(reports, processes), strict=True):
        run = {
            "setting": setting_label(gen_length, bl),
            "block_length": bl,
            "strategy": spec.family,
            "params": spec.describe(),
            "seed": seed,
        }
        rows.append({**run, **_row(report, gen_length, "all", open_bits)})
        if 0 < sum(is_open) < len(problems):
            rows.append({**run, **_row(report.subset(is_open), gen_length, "free", open_bits)})
    return rows


def _gather(reports: list[SolveReport], processes: Processes) -> list[SolveReport]:
    """Each run's report over all problems, from every process's reports over its shard (one exchange
    after the whole sweep, so no process waits for the others between runs)."""
    if processes.world == 1:
        return reports
    shards: list = [None] * processes.world
    dist.all_gather_object(shards, reports)
    return [SolveReport.interleave([shard[j] for shard in shards]) for j in range(len(reports))]


def summarize(rows: Sequence[dict]) -> list[dict]:
    """Aggregate seeds per (setting, subset, strategy, parameters) (a run listed twice counts once):
    mean ± std accuracy (in %), mean NFE, tokens per step, and per-problem correctness averaged over
    seeds (``per_problem``, None for runs recorded without it)."""
    groups: dict[tuple, list[dict]] = {}
    seen = set()
    for row in rows:
        run = (row["setting"], subset_of(row), row["strategy"], row["params"], row["seed"])
        if run in seen:  # the same run in two included sweeps counts once
            continue
        seen.add(run)
        groups.setdefault(run[:4], []).append(row)
    out = []
    for (setting, subset, strategy, params), rs in groups.items():
        accs = [100 * r["accuracy"] for r in rs]
        out.append(
            {
                "setting": setting,
                "subset": subset,
                "strategy": strategy,
                "params": params,
                "seeds": len(rs),
                "n": rs[0]["n"],
                "accuracy": statistics.fmean(accs),
                "accuracy_std": statistics.pstdev(accs) if len(accs) > 1 else 0.0,
                "mean_nfe": statistics.fmean(r["mean_nfe"] for r in rs),
                "tokens_per_step": statistics.fmean(r["tokens_per_step"] for r in rs),
                "no_answer": 100 * statistics.fmean(r["no_answer"] for r in rs),
                "per_problem": per_problem([r["correct"] for r in rs]) if all(r.get("correct") for r in rs) else None,
            }
        )
    return out


def pareto_front(points: Sequence[dict]) -> list[dict]:
    """Points not dominated in (lower mean NFE, higher accuracy), sorted by NFE.

    >>> [p["mean_nfe"] for p in pareto_front([{"mean_nfe": 8, "accuracy": 50}, {"mean_nfe": 10, "accuracy": 40},
    ...                                        {"mean_nfe": 16, "accuracy": 70}])]
    [8, 16]
    """
    front, best = [], float("-inf")
    for p in sorted(points, key=lambda p: (p["mean_nfe"], -p["accuracy"])):
        if p["accuracy"] > best:
            front.append(p)
            best = p["accuracy"]
    return front
