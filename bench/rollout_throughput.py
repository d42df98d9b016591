"""GRPO throughput: seconds per iteration (rollouts + update) and rollouts per second.

Runs the real trainer (:class:`dllm_viz.rl.GRPOTrainer`) for a few iterations from a trained
policy — a fresh one decodes ~10× slower for its first iterations, which no long run sees for
long — at each batch size (prompts × 8 rollouts), in one process or, with ``--processes 2``,
under ``torchrun`` (gloo on CPU: each process decodes half the groups).

    python bench/rollout_throughput.py                                   # 64 and 128 rollouts, 1 process
    python bench/rollout_throughput.py --processes 1 2 --iterations 6

Prints a table; it measures, it asserts nothing. Two heavy jobs on 2 cores slow each other:
run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

GROUP = 8


def run_once(args: argparse.Namespace, rollouts: int, out: Path) -> None:
    """Train ``args.iterations`` iterations of ``rollouts`` rollouts in this process (or this rank)."""
    import torch

    from dllm_viz.assets import shipped_policies
    from dllm_viz.policy import DiTConfidencePolicy
    from dllm_viz.rl import GRPOConfig
    from dllm_viz.rl.distributed import setup
    from dllm_viz.rl.trainer import GRPOTrainConfig, GRPOTrainer

    torch.set_num_threads(args.threads)
    procs = setup()
    policy = DiTConfidencePolicy.from_pretrained(shipped_policies()[args.policy])
    grpo = GRPOConfig(prompts_per_batch=rollouts // GROUP, num_generations=GROUP, alpha=3.0, warmup_steps=1)
    config = GRPOTrainConfig(
        out_dir=str(out),
        iterations=args.iterations,
        grpo=grpo,
        gen_length=args.gen_length,
        block_length=args.block_length,
        eval_every=0,
        save_every=args.iterations,
        threads=args.threads,
        progress=False,
    )
    GRPOTrainer(config, policy=policy, procs=procs).train()
    procs.close()


def measure(args: argparse.Namespace, rollouts: int, processes: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        flags = [
            "--worker",
            str(rollouts),
            str(out),
            *("--iterations", str(args.iterations), "--threads", str(args.threads)),
            *("--gen-length", str(args.gen_length), "--block-length", str(args.block_length), "--policy", args.policy),
        ]
        if processes == 1:
            cmd = [sys.executable, __file__, *flags]
        else:
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]
            cmd += [__file__, *flags]
        subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    seconds = [r["seconds"] for r in rows[1:]]  # the first iteration warms caches up
    median = statistics.median(seconds)
    return {
        "rollouts": rollouts,
        "processes": processes,
        "s_per_iteration": median,
        "rollouts_per_s": rollouts / median,
        "nfe": statistics.mean(r["nfe"] for r in rows[1:]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, nargs="+", default=[64, 128], help="rollouts per batch (× 8)")
    parser.add_argument("--processes", type=int, nargs="+", default=[1])
    parser.add_argument("--iterations", type=int, default=5, help="iterations per measurement (the first is dropped)")
    parser.add_argument("--policy", default="full-diffusion", help="shipped policy to start from")
    parser.add_argument("--gen-length", type=int, default=64)
    parser.add_argument("--block-length", type=int, default=64, help="64: full diffusion")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--worker", nargs=2, metavar=("ROLLOUTS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.iterations < 2:
        parser.error("--iterations must be ≥ 2 (the first is dropped)")
    if args.worker:
        run_once(args, int(args.worker[0]), Path(args.worker[1]))
        return
    for r in args.rollouts:
        if r % GROUP or (r // GROUP) % max(args.processes):
            parser.error(f"--rollouts {r} must be a multiple of {GROUP} × the largest process count")
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {args.threads} torch thread(s) per process"
    print(f"{machine}, starting from policy {args.policy}")
    print("| rollouts | processes | s / iteration | rollouts / s | mean NFE |")
    print("|---|---|---|---|---|")
    for processes in args.processes:
        for rollouts in args.rollouts:
            m = measure(args, rollouts, processes)
            print(
                f"| {m['rollouts']} | {m['processes']} | {m['s_per_iteration']:.2f} | {m['rollouts_per_s']:.1f} "
                f"| {m['nfe']:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
