"""Decode one prompt from the command line and print the text, NFE and tokens per step.

    python -m dllm_viz.generate --prompt "Tom has 3 apples ..." --strategy threshold --param threshold=0.8
    python -m dllm_viz.generate --model GSAI-ML/LLaDA-8B-Instruct --gen-length 256 --block-length 32 \\
        --strategy confidence --param steps=128 --save-trace trace.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

import torch

from .backends import BUILTIN_MODEL, ModelLoadError, load_backend
from .engine import EngineConfig, decode_generation, generate
from .outputs import check_destination
from .strategies import HEURISTICS, build_strategy
from .trace import Trace


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


def build_any_strategy(name: str, params: dict):
    """A heuristic by name, or ``policy`` (learned; ``path=<folder>`` plus sampling options)."""
    if name == "policy":
        from .strategies.learned import LearnedPolicy

        return LearnedPolicy.from_pretrained(**params)
    return build_strategy(name, **params)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dllm_viz.generate", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=BUILTIN_MODEL, help="local folder or Hub id (default: built-in tiny dLLM)")
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--strategy", default="threshold", help=f"one of {', '.join(sorted(HEURISTICS))}, or policy")
    parser.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="strategy parameter (repeatable)"
    )
    parser.add_argument("--gen-length", type=int, default=EngineConfig.gen_length)
    parser.add_argument(
        "--block-length", type=int, default=None, help="default: gen-length / 8; equal to gen-length for full diffusion"
    )
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None)
    parser.add_argument(
        "--trust-remote-code", action="store_true", help="allow remote code for models off the allow-list"
    )
    parser.add_argument(
        "--model-code",
        default="auto",
        choices=["auto", "native", "remote"],
        help="LLaDA/Dream: the project's native classes (auto, native) or the checkpoint's own code (remote)",
    )
    parser.add_argument(
        "--cache",
        default="none",
        choices=["none", "prefix"],
        help="prefix: Fast-dLLM's block-wise prefix KV cache (approximate inside a block)",
    )
    parser.add_argument(
        "--candidate-top-k",
        type=int,
        default=None,
        help="keep each position's k most likely tokens before confidences (Dream's generation uses 50)",
    )
    parser.add_argument("--save-trace", default=None, metavar="PATH")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --save-trace file")
    # One thread: on CPU the built-in model gains nothing from intra-op threads, and on shared
    # cores they spin (the README example: 1.1-2.0 s of model time at torch's default of 2, 0.23-0.32 s at 1).
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (default 1; raise it for a large model on CPU)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    try:
        if args.threads < 1:
            raise ValueError(f"--threads ({args.threads}) must be ≥ 1")
        torch.set_num_threads(args.threads)
        if args.save_trace:  # checked before decoding, so a refused path costs nothing
            check_destination(
                args.save_trace,
                kind="file",
                force=args.force,
                hint="pass --force to overwrite it, or choose another --save-trace",
            )
        config = EngineConfig.semi_ar(
            args.gen_length,
            args.block_length,
            temperature=args.temperature,
            seed=args.seed,
            cache=args.cache,
            candidate_top_k=args.candidate_top_k,
        )
        strategy = build_any_strategy(args.strategy, parse_params(args.param))
        backend = load_backend(
            args.model, device=args.device, trust_remote_code=args.trust_remote_code, model_code=args.model_code
        )
        records = list(generate(backend, [args.prompt], strategy, config))
    except (ValueError, OSError, ModelLoadError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    last = records[-1]
    text = decode_generation(backend, last.tokens[0].tolist())
    nfe = int(last.nfe[0])
    print(text)
    print(
        f"NFE {nfe}  tokens/step {config.gen_length / nfe:.2f}  model {sum(r.model_ms for r in records):.0f} ms  "
        f"total {sum(r.step_ms for r in records):.0f} ms"
    )
    if args.save_trace:
        prompt_ids = backend.encode_prompt(args.prompt)
        trace = Trace.from_records(records, 0, backend, args.prompt, prompt_ids, strategy, config, text=text)
        try:
            print(f"trace saved to {trace.save(args.save_trace)}")
        except OSError as err:  # e.g. no permission (the path itself was checked up front)
            print(f"error: trace not saved: {err}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
