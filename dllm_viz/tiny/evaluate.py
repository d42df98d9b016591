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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from ..engine import EngineConfig, run
from ..eval.solve import solve
from ..flags import add_arguments, from_args
from ..generate import ModelFlags
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


@dataclass(frozen=True)
class CPUModelFlags(ModelFlags):
    """:class:`~dllm_viz.generate.ModelFlags` on the CPU unless told otherwise: the command reports
    CPU decoding speed for the model card."""

    device: str | None = field(default="cpu", metadata={"help": "where it runs (default cpu: the speed is CPU speed)"})


@dataclass(frozen=True)
class EvaluateFlags:
    """What the command measures and where it writes the results; every input checked when made."""

    n: int = field(default=200, metadata={"help": "held-out problems per level"})
    free: tuple[float, ...] = field(
        default=(DEFAULT_FREE, 0.0),
        metadata={
            "help": "problem kinds: probability that an amount is left open (1: the default world, 0: fixed answers)"
        },
    )
    gen_length: int = field(default=64, metadata={"help": "L, the response length (a multiple of 8)"})
    batch_size: int = field(default=100, metadata={"help": "problems decoded together for accuracy"})
    speed_prompts: int = field(default=20, metadata={"help": "batch-1 decodes timed for steps/s"})
    json: str | None = field(default=None, metadata={"help": "also write the results here"})
    force: bool = field(default=False, metadata={"help": "overwrite an existing --json file"})

    def __post_init__(self) -> None:
        object.__setattr__(self, "free", tuple(self.free))  # argparse gives a list
        for name in ("n", "gen_length", "batch_size", "speed_prompts"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} ({getattr(self, name)}) must be ≥ 1")
        if self.gen_length % 8:
            raise ValueError(f"--gen-length ({self.gen_length}) must be a multiple of 8 (semi-AR uses BL = L/8)")


def build_parser() -> argparse.ArgumentParser:
    """The command's flags (``python -m dllm_viz.tiny.evaluate --help``), generated from
    :class:`CPUModelFlags` and :class:`EvaluateFlags`."""
    parser = argparse.ArgumentParser(prog="python -m dllm_viz.tiny.evaluate", description=__doc__.splitlines()[0])
    add_arguments(parser, CPUModelFlags)
    add_arguments(parser, EvaluateFlags)
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
    from ..backends import ModelLoadError
    from ..outputs import check_destination

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:  # every input is checked before the first decode
        model = from_args(CPUModelFlags, args)  # refuses --threads < 1
        flags = from_args(EvaluateFlags, args)
        if flags.json:
            check_destination(
                flags.json,
                kind="file",
                force=flags.force,
                hint="pass --force to overwrite it, or choose another --json",
            )
        backend = model.load()
    except (ValueError, ModelLoadError) as err:
        parser.exit(2, f"error: {err}\n")
    L = flags.gen_length
    rows = [r for free in flags.free for r in level_table(backend, flags.n, L, flags.batch_size, free)]
    print(f"High-Confidence-K, 1 token/step, L={L}, {model.model}")
    print("| setting | problems | level | n | accuracy | mean NFE | no answer |\n|---|---|---|---|---|---|---|")
    for r in rows:
        kind = f"free={r['free']:g}" if r["free"] else "fixed"
        print(
            f"| {r['setting']} (BL={r['block_length']}) | {kind} | {r['level']} | {r['n']} "
            f"| {100 * r['accuracy']:.1f} % | {r['mean_nfe']:.1f} | {100 * r['no_answer']:.1f} % |"
        )
    speed = measure_speed(backend, flags.speed_prompts, L)
    result = {
        "levels": rows,
        "speed": speed,
        "command": "python -m dllm_viz.tiny.evaluate " + shlex.join(argv if argv is not None else sys.argv[1:]),
    }
    if flags.json:
        with open(flags.json, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
