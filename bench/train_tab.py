"""The Train tab's run, timed: a preset trained end to end as the app trains it.

Runs :func:`dllm_viz.ui.train_run.train` (the job behind the Train tab and ``/train``: heuristic
probe, untrained validation, GRPO batches with checkpoints, probe snapshots, evaluations every 5
batches, the published policy folder) on the built-in model, at one torch thread by default.

    python bench/train_tab.py                        # 30 batches of full diffusion, 8 prompts × 8 rollouts
    python bench/train_tab.py --batches 6 --threads 2
    python bench/train_tab.py --preset 4                  # the tab's 4th preset (semi-AR), as the tab runs it
    python bench/train_tab.py --batches 2 --prompts 2 --group-size 2 --eval-problems 4   # a smoke run

Prints the wall time, the median batch, and the validation reward before and after. It measures,
it asserts nothing; another heavy process on the machine slows it: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import resource
import statistics
import threading
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/train_tab.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--preset", type=int, default=None, help="time the tab's N-th preset (1-based) instead of --batches/--setting"
    )
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the issue's bar: one core)")
    parser.add_argument("--setting", default="full diffusion", choices=("full diffusion", "semi-AR"))
    parser.add_argument("--seed", type=int, default=123)
    parser.add_argument("--prompts", type=int, default=8, help="prompts per batch (the tab's recipe: 8)")
    parser.add_argument("--group-size", type=int, default=8, help="rollouts per prompt (the tab's recipe: 8)")
    parser.add_argument("--eval-problems", type=int, default=64, help="validation problems (the tab's recipe: 64)")
    parser.add_argument(
        "--smart-init", type=float, default=None, help="the policy's output bias at init (default: the tab's recipe)"
    )
    args = parser.parse_args(argv)

    # The app caps a session's training (15 min of wall time); a bench on a busy machine would hit
    # it and time a shorter run than asked. An explicit $DLLM_VIZ_TRAIN_CAP_S still wins.
    os.environ.setdefault("DLLM_VIZ_TRAIN_CAP_S", "inf")
    import torch

    torch.set_num_threads(args.threads)
    from dllm_viz.ui import allowed_models, runtime
    from dllm_viz.ui.train_run import TrainRun, train
    from dllm_viz.ui.train_settings import PRESETS, TrainSettings

    if not allowed_models.builtin_model_installed():
        parser.exit(2, "error: the built-in model is not installed (assets/tiny-dllm)\n")
    recipe = dict(seed=args.seed, prompts=args.prompts, group_size=args.group_size, eval_problems=args.eval_problems)
    if args.smart_init is not None:
        recipe["smart_init"] = args.smart_init
    if args.preset is None:
        settings = TrainSettings(setting=args.setting, batches=args.batches, **recipe)
    elif 1 <= args.preset <= len(PRESETS):
        name, preset = list(PRESETS.items())[args.preset - 1]
        print(f"preset: {name}")
        settings = dataclasses.replace(preset, **recipe)
    else:
        parser.exit(2, f"error: --preset must be 1 … {len(PRESETS)}: {', '.join(PRESETS)}\n")
    t0 = time.perf_counter()
    runtime.get_backend(allowed_models.default_model())
    load = time.perf_counter() - t0
    run = TrainRun(settings, allowed_models.default_model())
    t0, cpu0 = time.perf_counter(), time.process_time()
    train(threading.Event(), run)  # never set: a StopSignal would stop unpolled
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    held = [(r["iteration"] + 1, r["heldout_reward"]) for r in run.rows if "heldout_reward" in r]
    load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    cores = os.cpu_count()
    print(f"machine: {platform.machine()}, {cores} cores, load average {load_avg:.2f}, torch threads {args.threads}")
    shape = f"{settings.prompts} prompts × {settings.group_size} rollouts"
    print(f"run: {settings.setting}, {len(run.rows)} batches of {shape}")
    print(f"model load {load:.1f} s (not counted); run {wall:.1f} s = {wall / 60:.2f} min ({run.status})")
    print(f"CPU time of the run: {cpu:.1f} s = {cpu / 60:.2f} min (what it costs one core when cores are shared)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB on Linux
    print(f"peak RSS of the process (model, run, imports): {peak:.1f} GB")
    print(f"median batch {statistics.median(r['seconds'] for r in run.rows):.2f} s (rollouts + update)")
    print(
        f"validation reward: untrained {run.baseline['heldout_reward']:.3f}; "
        + ", ".join(f"after {b}: {v:.3f}" for b, v in held)
    )
    first, last = run.baseline, ([r for r in run.rows if "heldout_nfe" in r] or [run.baseline])[-1]
    print(
        f"validation accuracy @ NFE: untrained {first['heldout_correct']:.1%} @ {first['heldout_nfe']:.1f}, "
        f"last {last['heldout_correct']:.1%} @ {last['heldout_nfe']:.1f}; rollout NFE: first batch "
        f"{run.rows[0]['nfe']:.1f}, last {run.rows[-1]['nfe']:.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
