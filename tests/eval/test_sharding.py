"""Evaluation sharded over processes: ``torchrun -m dllm_viz.eval`` writes what one process writes."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest

from dllm_viz.eval import sweep
from dllm_viz.eval.solve import SolveReport
from dllm_viz.rl.distributed import Processes
from dllm_viz.tasks.problem import Problem

# Few problems, an odd count (shards of 3 and 2), one with an open amount (so `free` rows too), a
# stochastic strategy at two seeds and thresholds whose NFE and correctness differ between problems.
ARGS = ["--problems", "5", "--settings", "full", "--strategies", "random,threshold", "--compact", "--seeds", "0", "1"]
ARGS += ["--threads", "1"]


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([*cmd, "-m", "dllm_viz.eval", *args], capture_output=True, text=True, timeout=300, env=env)


def _runs(path) -> list[dict]:
    """runs.csv without the wall time, which is the only column allowed to differ."""
    with path.open(newline="") as fh:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(fh)]


def test_two_cpu_processes_write_the_report_of_one_through_torchrun(tmp_path):
    """Each process decodes half the problems; rank 0's runs.csv and results.md equal a one-process run's."""
    from dllm_viz.eval.__main__ import main

    one, two = tmp_path / "one", tmp_path / "two"
    assert main([*ARGS, "--out", str(one)]) == 0
    done = _torchrun(*ARGS, "--out", str(two))
    assert done.returncode == 0, done.stderr[-3000:]

    single, sharded = _runs(one / "runs.csv"), _runs(two / "runs.csv")
    assert [(r["correct"], r["mean_nfe"]) for r in sharded] == [(r["correct"], r["mean_nfe"]) for r in single]
    assert sharded == single
    assert {r["subset"] for r in single} == {"all", "free"} and len({r["mean_nfe"] for r in single}) > 1
    report = (two / "results.md").read_text().replace(str(two), str(one))
    assert report == (one / "results.md").read_text()

    bad = _torchrun(*[a if a != "5" else "1" for a in ARGS], "--out", str(tmp_path / "bad"))
    assert bad.returncode != 0 and "1 problems (--n × levels) cannot be shared by 2 processes" in bad.stderr


def test_interleaved_shards_restore_problem_order():
    whole = SolveReport(n=5, correct=[True, False, True, True, False], nfe=[1, 2, 3, 4, 5], texts=list("abcde"))
    procs = [Processes(rank=r, world=2) for r in range(2)]
    shards = [
        SolveReport(
            n=len(p.shard(whole.nfe)),
            correct=p.shard(whole.correct),
            nfe=p.shard(whole.nfe),
            texts=p.shard(whole.texts),
            seconds=float(p.rank),
        )
        for p in procs
    ]
    merged = SolveReport.interleave(shards)
    assert (merged.correct, merged.nfe, merged.texts, merged.seconds) == (whole.correct, whole.nfe, whole.texts, 1.0)
    with pytest.raises(ValueError, match=r"shards must hold problems\[r::2\] of 5 problems \(got sizes \[2, 3\]\)"):
        SolveReport.interleave(shards[::-1])


def test_sweep_refuses_more_processes_than_problems(tiny_backend):
    problems = [Problem("one plus two", "#### 3", "3")]
    with pytest.raises(ValueError, match=r"problems \(1\) must be at least the number of processes \(2\)"):
        sweep(tiny_backend, problems, [], [8], gen_length=8, processes=Processes(rank=1, world=2))
