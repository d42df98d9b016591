"""Decode speed at LLaDA-8B's shape on a GPU, with and without the prefix KV cache: one table.

Per prompt length and cache (``none`` / ``prefix``): the latency to the first step (prompt encoding,
canvas, the first forward pass, which with the cache also stores every layer's keys and values, and
the first commit), tokens/s over the whole decode, NFE, mean forward time per NFE and peak GPU memory.
The model is a native LLaDA with random weights built on the device (``tests/replicas.py``: meta
init, materialised and initialised there, no download, no 16 GB in host memory); the time per
forward depends on the shapes, not on the weights. High-Confidence-K commits one token per step, so
both caches run the same NFE (= L) and differ only in what each forward costs.

    python bench/gpu_decode.py          # a GPU: LLaDA-8B shapes, bf16, prompts 256 and 1024, L=256, BL=32
    python bench/gpu_decode.py --tiny   # seconds on a CPU: tiny shapes, checks the script runs

It measures and prints; it asserts nothing. Each row is the fastest of ``--repeats`` decodes after
``--warmup`` unmeasured ones (noise only ever adds time); peak memory is over those repeats.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the hub-layout replica builders

from dllm_viz.backends.hf import default_device_dtype  # noqa: E402
from dllm_viz.engine import EngineConfig, generate  # noqa: E402
from dllm_viz.models.loading import InsufficientMemory  # noqa: E402
from dllm_viz.strategies import build_strategy  # noqa: E402

# LLaDA-8B-Instruct's config.json (docs/native-models.md, LLaDAConfig): 32 heads of 128, no GQA.
LLADA_8B = dict(d_model=4096, layers=32, heads=32, mlp=12288)
TINY = dict(d_model=64, layers=2, heads=2, mlp=128, prompt_lengths=[32], gen_length=16, block_length=8, repeats=1)
VOCAB = 126464  # kept at every size: the output layer and the features over it are part of a step's cost
CPU_MAX_PARAMS = 1e9  # 8B parameters on a CPU would take hours per decode; that run belongs on a GPU


def approx_params(d_model: int, layers: int, mlp: int) -> float:
    """Parameters of a LLaDA of these sizes (embedding + output, attention, gated MLP; norms ignored)."""
    return 2 * VOCAB * d_model + layers * (4 * d_model * d_model + 3 * d_model * mlp)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def decode_once(backend, prompts: list[list[int]], strategy: str, config: EngineConfig) -> dict:
    """One timed decode: seconds to the first step and to the end, NFE, summed forward ms."""
    device = backend.device
    sync(device)
    start = time.perf_counter()
    first, forward_ms, last = None, 0.0, None
    for last in generate(backend, prompts, build_strategy(strategy), config):
        if first is None:
            sync(device)
            first = time.perf_counter() - start
        forward_ms += last.model_ms
    sync(device)
    assert last is not None and first is not None  # gen_length >= 1: at least one step
    return dict(first_s=first, wall_s=time.perf_counter() - start, nfe=int(last.nfe.max()), forward_ms=forward_ms)


def measure(backend, prompt_length: int, cache: str, args: argparse.Namespace) -> dict:
    """The fastest of ``args.repeats`` decodes after ``args.warmup``, as one table row."""
    config = EngineConfig(gen_length=args.gen_length, block_length=args.block_length, cache=cache)
    prompts = [[5 + (i % 20) for i in range(prompt_length)]] * args.batch  # word ids of the replica tokenizer
    for _ in range(args.warmup):
        decode_once(backend, prompts, args.strategy, config)
    cuda = backend.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(backend.device)
    runs = [decode_once(backend, prompts, args.strategy, config) for _ in range(args.repeats)]
    best = min(runs, key=lambda r: r["wall_s"])
    return dict(
        prompt=prompt_length,
        cache=cache,
        nfe=best["nfe"],
        first_ms=best["first_s"] * 1e3,
        forward_ms=best["forward_ms"] / best["nfe"],
        tokens_s=args.batch * args.gen_length / best["wall_s"],
        wall_s=best["wall_s"],
        peak_gib=torch.cuda.max_memory_allocated(backend.device) / 2**30 if cuda else None,
    )


def table(rows: list[dict]) -> str:
    """The rows as one markdown table; speed-up is tokens/s over the same prompt's no-cache row."""
    base = {r["prompt"]: r["tokens_s"] for r in rows if r["cache"] == "none"}
    lines = [
        "| prompt | cache | NFE | first step (ms) | forward (ms/NFE) | tokens/s | decode (s) | speed-up "
        "| peak GPU (GiB) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        speedup = f"{r['tokens_s'] / base[r['prompt']]:.2f}x" if r["prompt"] in base else "-"
        peak = "-" if r["peak_gib"] is None else f"{r['peak_gib']:.2f}"
        lines.append(
            f"| {r['prompt']} | {r['cache']} | {r['nfe']} | {r['first_ms']:.1f} | {r['forward_ms']:.2f} "
            f"| {r['tokens_s']:.1f} | {r['wall_s']:.2f} | {speedup} | {peak} |"
        )
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true", help=f"CPU-sized defaults: {TINY} (explicit flags still win)")
    p.add_argument("--d-model", type=int, default=LLADA_8B["d_model"])
    p.add_argument("--layers", type=int, default=LLADA_8B["layers"])
    p.add_argument("--heads", type=int, default=LLADA_8B["heads"], help="attention heads (= KV heads, as in LLaDA)")
    p.add_argument("--mlp", type=int, default=LLADA_8B["mlp"], help="MLP hidden size")
    p.add_argument("--prompt-lengths", type=int, nargs="+", default=[256, 1024])
    p.add_argument("--gen-length", type=int, default=256)
    p.add_argument("--block-length", type=int, default=32)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--strategy", default="confidence", help="a strategy name with its defaults (confidence: NFE = L)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    p.add_argument("--dtype", default=None, choices=["bfloat16", "float16", "float32"], help="default: bf16 on cuda")
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv: list[str] | None = None) -> list[dict]:
    p = parser()
    if p.parse_known_args(argv)[0].tiny:
        p.set_defaults(**TINY)
    args = p.parse_args(argv)
    device = torch.device(args.device) if args.device else default_device_dtype()[0]
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is available here (use --tiny on a CPU)")
    dtype = getattr(torch, args.dtype) if args.dtype else torch.bfloat16 if device.type == "cuda" else torch.float32
    if device.type == "cpu" and approx_params(args.d_model, args.layers, args.mlp) > CPU_MAX_PARAMS:
        p.error("these shapes have over 1B parameters: run them on a GPU, or pass --tiny (or smaller shapes) on a CPU")

    from replicas import llada_on_device

    sizes = dict(d=args.d_model, heads=args.heads, kv_heads=args.heads, layers=args.layers, hidden=args.mlp)
    try:
        backend = llada_on_device(device, dtype, seed=args.seed, **sizes)
    except InsufficientMemory as err:
        p.error(str(err))
    rows = [measure(backend, P, cache, args) for P in args.prompt_lengths for cache in ("none", "prefix")]

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    params = sum(t.numel() for t in backend.model.parameters())
    print(
        f"device: {device} ({name}), torch {torch.__version__}, {str(dtype).removeprefix('torch.')}, "
        f"{torch.get_num_threads()} CPU threads\n"
        f"model: random LLaDA-shaped, d_model {args.d_model}, {args.layers} layers, {args.heads} heads, "
        f"MLP {args.mlp}, vocabulary {VOCAB} ({params / 1e9:.2f}B parameters)\n"
        f"decode: batch {args.batch}, L={args.gen_length}, BL={args.block_length}, strategy {args.strategy}, "
        f"best of {args.repeats} after {args.warmup} warm-up\n"
    )
    print(table(rows), flush=True)
    return rows


if __name__ == "__main__":
    main()
