"""Decode one prompt from the command line and print the text, NFE and tokens per step.

    python -m dllm_viz.generate --prompt "Tom has 3 apples ..." --strategy threshold --threshold 0.8
    python -m dllm_viz.generate --prompt "Tom has 3 apples ..." --strategy policy:full-diffusion --block-length 64
    python -m dllm_viz.generate --model GSAI-ML/LLaDA-8B-Instruct --gen-length 256 --block-length 32 \\
        --strategy confidence --param steps=128 --save-trace trace.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass, field
from typing import Any

import torch

from .api import DecodeStream
from .backends import BUILTIN_MODEL, MaskedLMBackend, ModelLoadError, load_backend
from .engine import EngineConfig, Plan
from .flags import add_arguments, from_args
from .outputs import check_destination
from .strategies import POLICY, REGISTRY, Param, StrategySpec


def parse_params(pairs: list[str]) -> dict:
    """``["threshold=0.8", "steps=32"]`` → ``{"threshold": 0.8, "steps": 32}`` (JSON-typed values)."""
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--param {pair!r} must look like name=value")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def add_strategy_flags(parser: argparse.ArgumentParser) -> dict[str, str]:
    """One flag per strategy parameter of the registry's schema; returns ``dest → parameter name``.

    A parameter is ``--<name>``, or ``--<strategy>-<name>`` where the parser already has ``--<name>``
    (the policy's τ_π is ``--policy-temperature``; ``--temperature`` is the token temperature).
    """
    group = parser.add_argument_group("strategy parameters (each applies to the strategies named)")
    by_name: dict[str, tuple[Param, list[str]]] = {}
    for info in REGISTRY.values():
        for p in info.params:
            by_name.setdefault(p.name, (p, []))[1].append(info.name)
    dests = {}
    for name, (p, names) in by_name.items():
        default = "none" if p.default is None else p.default
        kwargs: dict[str, Any] = dict(
            type=p.type, default=None, choices=p.choices, help=f"{p.help} [{', '.join(names)}; default {default}]"
        )
        dash = name.replace("_", "-")
        try:
            action = group.add_argument(f"--{dash}", **kwargs)
        except argparse.ArgumentError:  # taken by the parser (``--temperature`` is the token temperature)
            action = group.add_argument(f"--{names[0]}-{dash}", **kwargs)
        dests[action.dest] = name
    return dests


def strategy_spec(name: str, params: dict) -> StrategySpec:
    """``--strategy`` and its parameters as a spec; ``policy`` with ``path=<folder>`` is ``policy:<folder>``."""
    if name == POLICY and "path" in params:
        params = dict(params)
        name = f"{POLICY}:{params.pop('path')}"
    return StrategySpec.parse(name, **params)


@dataclass(frozen=True)
class ModelFlags:
    """Which dLLM to load and how: the flags of every command that loads one.

    Attributes:
        model: a local folder or Hub id. device: where it runs (None: CUDA when available).
        trust_remote_code: allow a checkpoint's own code for models off the allow-list.
        model_code: LLaDA/Dream through the project's native classes or the checkpoint's code.
        threads: torch CPU threads. One by default: on CPU the built-in model gains nothing from
            intra-op threads, and on shared cores they spin (the README example: 1.1-2.0 s of model
            time at torch's default of 2, 0.23-0.32 s at 1).
    """

    model: str = field(default=BUILTIN_MODEL, metadata={"help": "local folder or Hub id (default: built-in tiny dLLM)"})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, cuda:1, … (default: CUDA when available)"})
    trust_remote_code: bool = field(default=False, metadata={"help": "allow remote code for models off the allow-list"})
    model_code: str = field(
        default="auto",
        metadata={
            "choices": ["auto", "native", "remote"],
            "help": "LLaDA/Dream: the project's native classes (auto, native) or the checkpoint's own code (remote)",
        },
    )
    threads: int = field(
        default=1, metadata={"help": "torch CPU threads (default 1; raise it for a large model on CPU)"}
    )

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise ValueError(f"--threads ({self.threads}) must be ≥ 1")

    def load(self) -> MaskedLMBackend:
        """Set the CPU threads and load the backend."""
        torch.set_num_threads(self.threads)
        return load_backend(
            self.model, device=self.device, trust_remote_code=self.trust_remote_code, model_code=self.model_code
        )


@dataclass(frozen=True)
class DecodeFlags:
    """The engine settings a command decodes with (see :class:`~dllm_viz.engine.EngineConfig`)."""

    gen_length: int = EngineConfig.gen_length
    block_length: int | None = field(
        default=None, metadata={"help": "default: gen-length / 8; equal to gen-length for full diffusion"}
    )
    temperature: float = field(default=0.0, metadata={"help": "token temperature (0: greedy)"})
    seed: int = 0
    cache: str = field(
        default="none",
        metadata={
            "choices": ["none", "prefix"],
            "help": "prefix: Fast-dLLM's block-wise prefix KV cache (approximate inside a block)",
        },
    )
    candidate_top_k: int | None = field(
        default=None,
        metadata={"help": "keep each position's k most likely tokens before confidences (Dream's generation uses 50)"},
    )

    def engine_config(self) -> EngineConfig:
        """The engine settings (block length L/8 when not given; 0 is an error, not the default)."""
        sampling: dict[str, Any] = dict(temperature=self.temperature, seed=self.seed, cache=self.cache)
        sampling["candidate_top_k"] = self.candidate_top_k
        if self.block_length is None:
            return EngineConfig.semi_ar(self.gen_length, **sampling)
        return EngineConfig(gen_length=self.gen_length, block_length=self.block_length, **sampling)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dllm_viz.generate", description=__doc__.splitlines()[0])
    parser.add_argument("--prompt", required=True)
    parser.add_argument(
        "--strategy",
        default="threshold",
        help=f"one of {', '.join(n for n in REGISTRY if n != POLICY)}, or policy:<folder | shipped name | hub id>",
    )
    parser.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="strategy parameter (repeatable)"
    )
    add_arguments(parser, ModelFlags)
    add_arguments(parser, DecodeFlags)
    parser.add_argument("--save-trace", default=None, metavar="PATH")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --save-trace file")
    strategy_flags = add_strategy_flags(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    try:
        model = from_args(ModelFlags, args)
        if args.save_trace:  # checked before decoding, so a refused path costs nothing
            check_destination(
                args.save_trace,
                kind="file",
                force=args.force,
                hint="pass --force to overwrite it, or choose another --save-trace",
            )
        config = from_args(DecodeFlags, args).engine_config()
        params = parse_params(args.param)
        for dest, name in strategy_flags.items():
            if getattr(args, dest) is not None:
                if name in params:
                    raise ValueError(f"{name} is given twice (a flag and --param); keep one")
                params[name] = getattr(args, dest)
        strategy = strategy_spec(args.strategy, params).build()
        plan = Plan(strategy, config)  # checked before the model loads
        out = DecodeStream.start(model.load(), [args.prompt], plan).result()
    except (ValueError, OSError, ModelLoadError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    assert out.traces is not None  # a stream records traces by default
    trace = out.traces[0]
    print(out.texts[0])
    print(
        f"NFE {out.nfe[0]}  tokens/step {config.gen_length / out.nfe[0]:.2f}  "
        f"model {sum(s.model_ms for s in trace.steps):.0f} ms  total {sum(s.step_ms for s in trace.steps):.0f} ms"
    )
    if args.save_trace:
        try:
            print(f"trace saved to {trace.save(args.save_trace)}")
        except OSError as err:  # e.g. no permission (the path itself was checked up front)
            print(f"error: trace not saved: {err}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
