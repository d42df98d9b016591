"""Prefix KV cache: what it costs in accuracy (drift) and what it saves in forward time.

Drift: the same prompts decoded with ``cache="none"`` and ``cache="prefix"`` (greedy, same
strategy): how many generations stay identical, how many tokens agree, and, on the built-in model's
held-out word problems, the accuracy of each. Speed: High-Confidence-K with one token per step
(the same NFE with and without the cache), forward time summed over the run, on a random-weight
LLaDA-shaped native model built here (no download).

    python bench/prefix_cache.py                     # built-in model (if shipped) + LLaDA/Dream replicas
    python bench/prefix_cache.py --n 100 --speed-d-model 512 --speed-prompt 512

It measures and prints; it asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the hub-layout replica builders

from dllm_viz.backends import BUILTIN_MODEL, load_backend  # noqa: E402
from dllm_viz.engine import EngineConfig, run  # noqa: E402
from dllm_viz.strategies import build_strategy  # noqa: E402

STRATEGIES = {"confidence": {}, "threshold": {"threshold": 0.9}}


def drift(backend, prompts, gen_length, block_length, batch, problems=None) -> list[dict]:
    """Per strategy: identical generations, token agreement, NFE and (with problems) accuracy."""
    rows = []
    for name, params in STRATEGIES.items():
        out = {}
        for cache in ("none", "prefix"):
            config = EngineConfig(gen_length=gen_length, block_length=block_length, cache=cache)
            tokens, nfe, texts = [], [], []
            for i in range(0, len(prompts), batch):
                result = run(backend, prompts[i : i + batch], build_strategy(name, **params), config)
                tokens.append(result.tokens)
                nfe += result.nfe.tolist()
                texts += result.texts
            out[cache] = (torch.cat(tokens), nfe, texts)
        (a, nfe_a, text_a), (b, nfe_b, text_b) = out["none"], out["prefix"]
        row = dict(
            strategy=name,
            n=len(prompts),
            identical=float((a == b).all(1).float().mean()),
            token_agreement=float((a == b).float().mean()),
            nfe_none=statistics.mean(nfe_a),
            nfe_prefix=statistics.mean(nfe_b),
        )
        if problems is not None:
            row["accuracy_none"] = statistics.mean(p.check(t) for p, t in zip(problems, text_a, strict=True))
            row["accuracy_prefix"] = statistics.mean(p.check(t) for p, t in zip(problems, text_b, strict=True))
        rows.append(row)
    return rows


def speed(
    d_model: int,
    layers: int,
    prompt_length: int,
    gen_length: int,
    block_length: int,
    repeats: int,
    device: str = "cpu",
    dtype: str = "float32",
) -> dict:
    """Forward milliseconds per run with and without the cache at equal NFE (= L), on a random
    LLaDA-shaped native model built in memory (``--speed-d-model 4096 --speed-layers 32`` on a GPU
    is LLaDA-8B's shape: 32 heads, MLP 12288, vocabulary 126464)."""
    from replicas import llada_on_device

    heads = max(1, d_model // 128)
    hidden = 12288 if d_model == 4096 else int(d_model * 8 / 3) // 8 * 8
    sizes = dict(d=d_model, heads=heads, kv_heads=heads, layers=layers, hidden=hidden)
    backend = llada_on_device(device, getattr(torch, dtype), **sizes)
    prompt = [5 + (i % 20) for i in range(prompt_length)]
    result = dict(
        device=device, dtype=dtype, d_model=d_model, layers=layers, prompt=prompt_length, gen_length=gen_length
    )
    for cache in ("none", "prefix"):
        config = EngineConfig(gen_length=gen_length, block_length=block_length, cache=cache)
        runs = []
        for _ in range(repeats + 1):  # the first run warms up
            start = time.perf_counter()
            out = run(backend, [prompt], build_strategy("confidence"), config, keep_records=True)
            runs.append((sum(r.model_ms for r in out.records), (time.perf_counter() - start) * 1e3, int(out.nfe[0])))
        best = min(runs[1:])
        result[cache] = dict(model_ms=round(best[0], 1), wall_ms=round(best[1], 1), nfe=best[2])
    result["speedup_model"] = result["none"]["model_ms"] / result["prefix"]["model_ms"]
    result["speedup_wall"] = result["none"]["wall_ms"] / result["prefix"]["wall_ms"]
    return result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64, help="prompts per drift measurement")
    parser.add_argument("--gen-length", type=int, default=64)
    parser.add_argument("--block-length", type=int, default=8)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--replica-n", type=int, default=16, help="prompts for the random-weight replicas")
    parser.add_argument("--speed-d-model", type=int, default=256)
    parser.add_argument("--speed-layers", type=int, default=4)
    parser.add_argument("--speed-prompt", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="for the speed run (cuda: use --dtype bfloat16)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--skip", nargs="*", default=[], choices=["builtin", "replicas", "speed"])
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    report = {}
    if "builtin" not in args.skip and (Path(BUILTIN_MODEL) / "config.json").is_file():
        from dllm_viz.tasks.wordproblems import DEFAULT_FREE, DEFAULT_LEVEL, test_set

        problems = test_set(DEFAULT_LEVEL, args.n, DEFAULT_FREE)
        backend = load_backend(BUILTIN_MODEL, device="cpu")
        report["builtin"] = drift(
            backend, [p.question for p in problems], args.gen_length, args.block_length, args.batch, problems
        )
        show("builtin", report["builtin"])
    if "replicas" not in args.skip:
        from replicas import WORDS, save_dream_replica, save_llada_replica

        root = Path(tempfile.mkdtemp())
        g = torch.Generator().manual_seed(0)
        prompts = [
            " ".join(WORDS[int(i)] for i in torch.randint(0, len(WORDS), (6,), generator=g))
            for _ in range(args.replica_n)
        ]
        for name, save in (("llada-replica", save_llada_replica), ("dream-replica", save_dream_replica)):
            backend = load_backend(str(save(root / name)), device="cpu")
            report[name] = drift(backend, prompts, 32, 8, args.batch)
            show(name, report[name])
    if "speed" not in args.skip:
        report["speed"] = speed(
            args.speed_d_model,
            args.speed_layers,
            args.speed_prompt,
            args.gen_length,
            args.block_length,
            args.repeats,
            args.device,
            args.dtype,
        )
        show("speed", report["speed"])
    return report


def show(key: str, value) -> None:
    print(f"== {key}")
    for row in value if isinstance(value, list) else [value]:
        print(
            "  " + ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True
        )


if __name__ == "__main__":
    main()
