"""Held-out accuracy and decoding speed of a dLLM, for the model card.

Accuracy comes from :func:`dllm_viz.eval.solve.solve`, the function training's periodic eval
and ``dllm_viz.eval`` sweeps also call, so they measure the same thing.

    python -m dllm_viz.tiny.evaluate --n 200   # per-level accuracy and CPU decoding speed

The CLI reports, for the model card, High-Confidence-K at one token per step per level in
semi-AR (BL = L/8) and full diffusion (BL = L), and denoising steps per second at batch 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import statistics
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from ..engine import EngineConfig, run
from ..eval.solve import solve
from ..strategies.base import Strategy
from ..tasks.wordproblems import DEFAULT_FREE, LEVELS, test_set

if TYPE_CHECKING:
    from ..backends import DLLM


@torch.inference_mode()
def steps_per_second(backend: DLLM, prompts: Sequence[str], strategy: Strategy, config: EngineConfig) -> list[float]:
    """Denoising steps per second of full decodes at batch 1, one value per prompt.

    Wall time of the whole engine loop (forward pass, features, strategy, commit, records),
    which is what the app waits for; the first prompt also warms up the kernels.
    """
    rates = []
    for prompt in prompts:
        start = time.perf_counter()
        result = run(backend, [prompt], strategy, config)
        rates.append(result.steps / (time.perf_counter() - start))
    return rates


def level_table(
    backend: DLLM, n: int, gen_length: int = 64, batch_size: int = 100, free: float = DEFAULT_FREE
) -> list[dict]:
    """High-Confidence-K, one token per step, per level, in semi-AR (BL = L/8) and full diffusion."""
    from ..strategies import build_strategy

    rows = []
    for config in (EngineConfig.semi_ar(gen_length), EngineConfig.full(gen_length)):
        block_length, setting = config.block_length, config.setting.partition(" BL=")[0]
        for level in LEVELS:
            report = solve(backend, test_set(level, n, free), build_strategy("confidence"), config, batch_size)
            rows.append(
                {"setting": setting, "block_length": block_length, "level": level, "free": free, **report.summary()}
            )
    return rows


def build_parser() -> argparse.ArgumentParser:
    """The command's flags (``python -m dllm_viz.tiny.evaluate --help``)."""
    from ..backends import BUILTIN_MODEL

    parser = argparse.ArgumentParser(prog="python -m dllm_viz.tiny.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=BUILTIN_MODEL)
    parser.add_argument("--n", type=int, default=200, help="held-out problems per level")
    parser.add_argument(
        "--free",
        type=float,
        nargs="+",
        default=[DEFAULT_FREE, 0.0],
        help="problem kinds: probability that an amount is left open (1: the default world, 0: fixed answers)",
    )
    parser.add_argument("--gen-length", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--speed-prompts", type=int, default=20, help="batch-1 decodes timed for steps/s")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --json file")
    # One thread by default: the tiny model gains nothing from intra-op threads on CPU, and on
    # shared cores extra threads spin (see README, "Measured results").
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    return parser


def measure_speed(backend: DLLM, n: int, gen_length: int) -> dict:
    """Steps per second of ``n`` batch-1 decodes (after one warm-up), printed and returned."""
    from ..strategies import build_strategy

    prompts = [p.question for p in test_set(2, n + 1, DEFAULT_FREE)]
    config = EngineConfig.semi_ar(gen_length)
    rates = steps_per_second(backend, prompts, build_strategy("confidence"), config)[1:]  # drop warm-up
    speed = {
        "median_steps_per_s": statistics.median(rates),
        "min_steps_per_s": min(rates),
        "prompts": len(rates),
        "threads": torch.get_num_threads(),
    }
    print(
        f"decoding speed, batch 1, L={gen_length}, {speed['threads']} CPU threads: "
        f"median {speed['median_steps_per_s']:.1f} steps/s (min {speed['min_steps_per_s']:.1f}) "
        f"over {len(rates)} decodes"
    )
    return speed


def main(argv: list[str] | None = None) -> dict:
    from ..backends import ModelLoadError, load_backend
    from ..outputs import check_destination

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:  # every input is checked before the first decode
        if args.threads < 1:
            raise ValueError(f"--threads ({args.threads}) must be ≥ 1")
        for name in ("n", "gen_length", "batch_size", "speed_prompts"):
            if getattr(args, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} ({getattr(args, name)}) must be ≥ 1")
        if args.gen_length % 8:
            raise ValueError(f"--gen-length ({args.gen_length}) must be a multiple of 8 (semi-AR uses BL = L/8)")
        if args.json:
            check_destination(
                args.json, kind="file", force=args.force, hint="pass --force to overwrite it, or choose another --json"
            )
        torch.set_num_threads(args.threads)
        backend = load_backend(args.model, device="cpu")
    except (ValueError, ModelLoadError) as err:
        parser.exit(2, f"error: {err}\n")
    rows = [r for free in args.free for r in level_table(backend, args.n, args.gen_length, args.batch_size, free)]
    print(f"High-Confidence-K, 1 token/step, L={args.gen_length}, {args.model}")
    print("| setting | problems | level | n | accuracy | mean NFE | no answer |\n|---|---|---|---|---|---|---|")
    for r in rows:
        kind = f"free={r['free']:g}" if r["free"] else "fixed"
        print(
            f"| {r['setting']} (BL={r['block_length']}) | {kind} | {r['level']} | {r['n']} "
            f"| {100 * r['accuracy']:.1f} % | {r['mean_nfe']:.1f} | {100 * r['no_answer']:.1f} % |"
        )
    speed = measure_speed(backend, args.speed_prompts, args.gen_length)
    result = {
        "levels": rows,
        "speed": speed,
        "command": "python -m dllm_viz.tiny.evaluate " + shlex.join(argv if argv is not None else sys.argv[1:]),
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
