"""Engine overhead: (engine step incl. features, strategy and trace capture) / (bare forward).

Both loops run the same number of forward passes (L, one token per step) on the same model
and canvas length, batch 1, so the ratio isolates what the engine adds per step.

    python bench/engine_overhead.py                 # the built-in tiny model
    python bench/engine_overhead.py --model PATH --gen-length 64 --repeats 5

Prints timings and the ratio; it measures, it asserts nothing.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from dllm_viz.backends import BUILTIN_MODEL, load_backend
from dllm_viz.engine import EngineConfig, generate
from dllm_viz.strategies import build_strategy
from dllm_viz.trace import Trace

PROMPT = "Tom has 3 boxes with 12 pens in each box. He gives away 7 pens. How many pens does he have left?"


def bare_forward_loop(backend, ids: list[int], steps: int) -> float:
    """Seconds for ``steps`` forward passes on an all-mask canvas: the lower bound."""
    x = torch.tensor([ids], device=backend.device)
    start = time.perf_counter()
    for _ in range(steps):
        backend.logits(x, None)
    if backend.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def engine_loop(backend, config: EngineConfig) -> float:
    """Seconds for a full engine run with trace capture (what the app does)."""
    strategy = build_strategy("confidence")  # one token per step → exactly L forwards
    start = time.perf_counter()
    records = list(generate(backend, [PROMPT], strategy, config))
    Trace.from_records(records, 0, backend, PROMPT, backend.encode_prompt(PROMPT), strategy, config)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="default: the built-in model (assets/tiny-dllm)")
    parser.add_argument("--gen-length", type=int, default=64)
    parser.add_argument("--block-length", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = args.model or BUILTIN_MODEL
    backend = load_backend(model, device="cpu")
    config = EngineConfig(gen_length=args.gen_length, block_length=args.block_length)
    ids = backend.encode_prompt(PROMPT) + [backend.mask_id] * config.gen_length
    engine_loop(backend, config), bare_forward_loop(backend, ids, 4)  # warm-up
    bare, eng = [], []
    for _ in range(args.repeats):  # interleave so drift hits both equally
        bare.append(bare_forward_loop(backend, ids, config.gen_length))
        eng.append(engine_loop(backend, config))
    # Minimums: on a shared machine, noise only ever adds time, so the fastest repeat is the
    # closest to the true cost; the median ratio is printed too.
    b, e = min(bare), min(eng)
    n_params = sum(p.numel() for p in backend.model.parameters())
    print(
        f"model: {model} ({n_params / 1e6:.2f}M params), canvas {len(ids)} tokens, L={config.gen_length}, "
        f"BL={config.block_length}, batch 1, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}"
    )
    print(
        f"bare forward loop : {b * 1e3:8.1f} ms for {config.gen_length} forwards "
        f"({b / config.gen_length * 1e3:.2f} ms/forward)"
    )
    print(f"engine + trace    : {e * 1e3:8.1f} ms ({config.gen_length / e:.1f} steps/s)")
    median_ratio = statistics.median(eng) / statistics.median(bare)
    print(
        f"overhead ratio    : {e / b:.3f}  (fastest of {args.repeats}; median ratio {median_ratio:.3f}; "
        f"spread bare {min(bare) * 1e3:.0f}-{max(bare) * 1e3:.0f} ms, "
        f"engine {min(eng) * 1e3:.0f}-{max(eng) * 1e3:.0f} ms)"
    )


if __name__ == "__main__":
    main()
