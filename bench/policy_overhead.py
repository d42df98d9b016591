"""Policy overhead: one policy forward (the paper's 331k-parameter DiT) / one dLLM forward.

Both are timed at the shapes of a real decoding step: the dLLM on prompt + L tokens, the policy
on the L generation positions, batch 1 by default.

    python bench/policy_overhead.py                       # the built-in tiny model
    python bench/policy_overhead.py --model PATH --gen-length 64 --batch 8 --threads 1

Prints timings and the ratio; it measures, it asserts nothing.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from dllm_viz.backends import BUILTIN_MODEL, load_backend
from dllm_viz.policy import DiTConfidencePolicy

PROMPT = "Tom has 3 boxes with 12 pens in each box. He gives away 7 pens. How many pens does he have left?"


def best_time(fn, repeats: int) -> float:
    """Fastest of ``repeats`` calls in seconds (noise on a shared machine only adds time)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=BUILTIN_MODEL)
    parser.add_argument("--policy", default=None, help="policy folder (default: freshly initialised, same cost)")
    parser.add_argument("--gen-length", type=int, default=64)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not Path(args.model, "config.json").exists() and args.model == BUILTIN_MODEL:
        raise SystemExit(f"no built-in model at {BUILTIN_MODEL}; pass --model")
    backend = load_backend(args.model, device="cpu")
    policy = DiTConfidencePolicy.from_pretrained(args.policy) if args.policy else DiTConfidencePolicy()
    policy.eval()
    B, L = args.batch, args.gen_length
    ids = torch.tensor([backend.encode_prompt(PROMPT) + [backend.mask_id] * L] * B)
    conf, masked, t = torch.rand(B, L), torch.ones(B, L, dtype=torch.bool), torch.zeros(B)

    model_s = best_time(lambda: backend.logits(ids, None), args.repeats)
    with torch.no_grad():
        policy_s = best_time(lambda: policy(conf, masked, t), args.repeats)
    n_model = sum(p.numel() for p in backend.model.parameters())
    n_policy = sum(p.numel() for p in policy.parameters())
    print(
        f"dLLM  : {args.model} ({n_model / 1e6:.2f}M params), {ids.shape[1]} tokens, batch {B}: "
        f"{model_s * 1e3:.2f} ms/forward"
    )
    print(f"policy: {n_policy:,} params, {L} positions, batch {B}: {policy_s * 1e3:.2f} ms/forward")
    print(
        f"ratio policy/model: {policy_s / model_s:.3f}  "
        f"({torch.get_num_threads()} threads, {platform.machine()}, fastest of {args.repeats})"
    )


if __name__ == "__main__":
    main()
