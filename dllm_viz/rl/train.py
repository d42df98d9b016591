"""Train an unmasking policy with GRPO on the built-in word problems (the dLLM stays frozen).

    python -m dllm_viz.rl.train --out-dir outputs/policy-a1 --alpha 1 --iterations 150
    python -m dllm_viz.rl.train --out-dir outputs/policy-full --block-length 64 --es-thresholds 0.9

Each iteration collects one rollout batch (prompts × G rollouts), computes group advantages and
takes ``num_iterations`` optimiser steps on the clipped step-level GRPO loss. Metrics go to
``metrics.jsonl`` every iteration; ``checkpoint-last`` (policy + optimiser + RNG, resumable
with ``--resume``) every ``--save-every`` iterations; ``checkpoint-best`` whenever the
held-out reward improves: every ``--eval-every`` iterations the policy decodes
``--eval-problems`` test-split problems once each at a fixed seed (:func:`.rollout.heldout_reward`);
the training reward is watched too (10-iteration moving average) but never picks a checkpoint, since
it is measured on the batches the policy is fitted to.
The loop is plain PyTorch on one device; the rollout and update functions take tensors, so an
``accelerate`` wrapper can shard prompts across processes without changing them.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from collections import deque
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from ..backends import BUILTIN_MODEL, ModelLoadError, load_backend
from ..engine import EngineConfig
from ..outputs import check_destination
from ..policy import DiTConfidencePolicy, PolicyConfig
from ..tasks.wordproblems import DEFAULT_FREE, DEFAULT_LEVEL, LEVELS, test_set
from ..tasks.wordproblems import generate as generate_problem
from .config import GRPOConfig
from .distributed import Processes, setup
from .grpo import expert_mixture_log_prob, group_advantages, grpo_loss, should_skip_update
from .optim import build_optimizer
from .rollout import RolloutBatch, collect_rollouts, heldout_reward
from .steps import replay_log_probs

logger = logging.getLogger(__name__)
MOVING_AVERAGE = 10


def training_problems(iteration: int, count: int, seed: int, levels=LEVELS, free: float = 0.0):
    """The prompts of one iteration: deterministic in (seed, iteration), train split only."""
    rng = random.Random(f"grpo/{seed}/{iteration}")
    return [generate_problem(rng.randrange(2**31), rng.choice(levels), "train", free) for _ in range(count)]


def heldout_problems(count: int, levels, free: float) -> list:
    """The fixed held-out problems that select the checkpoint: the first of each level's test set."""
    per_level = -(-count // len(levels))
    return [p for level in levels for p in test_set(level, per_level, free)][:count]


def grpo_update(policy, batch: RolloutBatch, advantages: torch.Tensor, grpo: GRPOConfig, optimizer, schedule) -> dict:
    """``num_iterations`` clipped-ratio steps on one rollout batch (ratios vs rollout-time log-probs)."""
    old = batch.steps.old_log_prob
    expert = batch.expert.unsqueeze(1).to(old.device)
    if grpo.num_experts:
        old = torch.where(expert, expert_mixture_log_prob(old, grpo.num_generations, grpo.num_experts), old)
    stats = {}
    for _ in range(grpo.num_iterations):
        new = replay_log_probs(policy, batch.steps)
        if grpo.num_experts:
            new = torch.where(expert, expert_mixture_log_prob(new, grpo.num_generations, grpo.num_experts), new)
        out = grpo_loss(new, old, advantages, batch.steps.active, grpo.epsilon)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), grpo.max_grad_norm)
        optimizer.step()
        schedule.step()
        stats = {"loss": out.loss.item(), "clip_fraction": float(out.clip_fraction), "grad_norm": float(grad_norm)}
    return stats


def save_checkpoint(path: Path, policy, optimizer, schedule, state: dict) -> None:
    """Policy as safetensors + config.json; optimiser moments as safetensors; the rest JSON."""
    path.mkdir(parents=True, exist_ok=True)
    policy.save_pretrained(path)
    opt = optimizer.state_dict()
    tensors = {f"{i}.{k}": v.contiguous() for i, s in opt["state"].items() for k, v in s.items() if torch.is_tensor(v)}
    save_file(tensors, str(path / "optimizer.safetensors"))
    meta = {"param_groups": opt["param_groups"], "schedule": schedule.state_dict(), **state}
    (path / "trainer_state.json").write_text(json.dumps(meta, indent=1))


def load_checkpoint(path: Path, policy, optimizer, schedule) -> dict:
    meta = json.loads((path / "trainer_state.json").read_text())
    policy.load_state_dict(DiTConfidencePolicy.from_pretrained(path).state_dict())
    tensors = load_file(str(path / "optimizer.safetensors"))
    state: dict = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta.pop("param_groups")})
    schedule.load_state_dict(meta.pop("schedule"))
    return meta


def train(args: argparse.Namespace, procs: Processes = Processes()) -> Path:
    """Run (or resume) GRPO; under ``torchrun`` each process takes its share of the prompts."""
    # 1. Check every setting and the output folder before anything is written.
    out = Path(args.out_dir)
    last = out / "checkpoint-last"
    if not args.resume:
        check_destination(
            out, kind="folder", force=False, hint="pass --resume to continue the run there, or choose a new --out-dir"
        )
    elif not (last / "trainer_state.json").exists():
        check_destination(
            out, kind="folder", force=False, hint="it holds no checkpoint-last/ to --resume, so choose a new --out-dir"
        )
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads ({args.threads}) must be ≥ 1")
    if not args.levels or set(args.levels) - set(LEVELS):
        raise ValueError(f"levels must be among {list(LEVELS)}, got {args.levels}")
    procs.check_prompts(args.prompts)
    procs.barrier()  # every process has checked the folder before rank 0 writes to it
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    grpo = GRPOConfig(
        num_generations=args.group_size,
        prompts_per_batch=args.prompts,
        reward=args.reward,
        alpha=args.alpha,
        learning_rate=args.lr,
        warmup_steps=args.warmup,
        epsilon=args.epsilon,
        num_iterations=args.num_iterations,
        es_thresholds=tuple(args.es_thresholds),
        es_block_length=args.es_block_length or args.gen_length // 8,
        seed=args.seed,
        total_steps=args.iterations * args.num_iterations,
    )
    engine = EngineConfig(gen_length=args.gen_length, block_length=args.block_length or args.gen_length // 8)
    if not 1 <= args.top_p <= engine.top_k:
        raise ValueError(f"--top-p ({args.top_p}) must be between 1 and the engine's top_k ({engine.top_k})")
    grpo.check_engine(engine.gen_length, engine.block_length)
    backend = load_backend(
        args.model, device=procs.device(args.device), trust_remote_code=getattr(args, "trust_remote_code", False)
    )
    policy = DiTConfidencePolicy(PolicyConfig(hidden_size=args.hidden, ffn_size=4 * args.hidden, top_p=args.top_p)).to(
        backend.device
    )
    learner = procs.wrap(policy)  # DDP under torchrun: its backward averages gradients over processes
    optimizer, schedule = build_optimizer(policy, grpo)
    start, history, best = 0, deque(maxlen=MOVING_AVERAGE), float("-inf")
    selection = heldout_problems(args.eval_problems, args.levels, args.free) if args.eval_every else []
    # 2. Train.
    if procs.main:
        out.mkdir(parents=True, exist_ok=True)
    if args.resume and (last / "trainer_state.json").exists():
        meta = load_checkpoint(last, policy, optimizer, schedule)
        start, best = meta["iteration"] + 1, meta["best"]
        history.extend(meta["history"])
        logger.info("resumed from %s at iteration %d", last, start)
    if procs.main:
        (out / "run_config.json").write_text(
            json.dumps(
                {
                    "grpo": grpo.to_dict(),
                    "engine": engine.to_dict(),
                    "model": str(args.model),
                    "args": vars(args),
                    "processes": procs.world,
                },
                indent=1,
                default=str,
            )
        )
    metrics = (out / "metrics.jsonl").open("a") if procs.main else None
    bar = tqdm(
        range(start, args.iterations),
        initial=start,
        total=args.iterations,
        desc="GRPO",
        disable=args.no_progress or not procs.main,
    )
    for it in bar:
        if args.stop_after is not None and it >= start + args.stop_after:
            if procs.main:
                save_checkpoint(
                    last, policy, optimizer, schedule, {"iteration": it - 1, "best": best, "history": list(history)}
                )
            break
        t0 = time.perf_counter()
        problems = procs.shard(training_problems(it, grpo.prompts_per_batch, args.seed, args.levels, args.free))
        batch = collect_rollouts(
            backend, policy, problems, grpo, engine, seed=args.seed * 100_003 + it + 7_919 * procs.rank
        )
        advantages = group_advantages(batch.rewards, grpo.group_size).to(backend.device)
        row = {
            "iteration": it,
            **procs.mean(
                {
                    "reward": float(batch.rewards.mean()),
                    "correct": float(batch.correct[~batch.expert].float().mean()),
                    "nfe": float(batch.nfe[~batch.expert].float().mean()),
                    "mean_unmask_prob": batch.mean_unmask_prob,
                }
            ),
            "lr": schedule.get_last_lr()[0],
            "skipped": procs.all(should_skip_update(advantages, grpo.skip_advantage_tol)),
        }
        if not row["skipped"]:
            row.update(procs.mean(grpo_update(learner, batch, advantages, grpo, optimizer, schedule)))
        history.append(row["reward"])
        row["reward_ma"] = sum(history) / len(history)
        row["seconds"] = time.perf_counter() - t0
        if not procs.main:
            continue  # rank 0 evaluates, logs and saves; the others go on to the next rollouts
        if selection and ((it + 1) % args.eval_every == 0 or it + 1 == args.iterations):
            with torch.no_grad():
                row.update(heldout_reward(backend, policy, selection, grpo, engine, seed=args.seed))
        metrics.write(json.dumps(row) + "\n")
        metrics.flush()
        bar.set_postfix(
            reward=f"{row['reward']:.3f}",
            correct=f"{row['correct']:.2f}",
            nfe=f"{row['nfe']:.1f}",
            p=f"{row['mean_unmask_prob']:.2f}",
        )
        state = {"iteration": it, "best": best, "history": list(history)}
        if "heldout_reward" in row and row["heldout_reward"] > best:
            best = state["best"] = row["heldout_reward"]
            policy.save_pretrained(out / "checkpoint-best")
            (out / "checkpoint-best" / "selection.json").write_text(
                json.dumps(
                    {
                        "iteration": it,
                        "heldout_reward": best,
                        "heldout_correct": row["heldout_correct"],
                        "heldout_nfe": row["heldout_nfe"],
                        "heldout_problems": len(selection),
                        "reward_ma": row["reward_ma"],
                    }
                )
            )
        if (it + 1) % args.save_every == 0 or it + 1 == args.iterations:
            save_checkpoint(last, policy, optimizer, schedule, state)
    if procs.main:
        metrics.close()
        if not (out / "checkpoint-best").exists():
            policy.save_pretrained(out / "checkpoint-best")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dllm_viz.rl.train", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=BUILTIN_MODEL)
    parser.add_argument(
        "--trust-remote-code", action="store_true", help="allow remote code for models off the allow-list"
    )
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--iterations", type=int, default=150, help="rollout batches")
    parser.add_argument("--prompts", type=int, default=16, help="prompt groups per rollout batch")
    parser.add_argument("--group-size", type=int, default=8, help="G, policy rollouts per prompt")
    parser.add_argument("--alpha", type=float, default=0.0)
    parser.add_argument("--reward", default="multiplicative", choices=["multiplicative", "additive"])
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--epsilon", type=float, default=0.5)
    parser.add_argument("--num-iterations", type=int, default=2, help="optimiser steps per rollout batch")
    parser.add_argument("--gen-length", type=int, default=64)
    parser.add_argument("--block-length", type=int, default=None, help="default L/8; L for full diffusion")
    parser.add_argument(
        "--es-thresholds", type=float, nargs="*", default=[], help="expert steering λ per expert rollout"
    )
    parser.add_argument("--es-block-length", type=int, default=None)
    parser.add_argument("--hidden", type=int, default=128, help="policy width (paper: 128)")
    parser.add_argument(
        "--top-p",
        type=int,
        default=1,
        help="largest token probabilities per position the policy sees (paper: 1, the max-prob "
        "confidence; its ablation: 50; here at most the engine's top_k, 5)",
    )
    parser.add_argument(
        "--levels", type=int, nargs="+", default=[DEFAULT_LEVEL], help="word-problem levels to train on"
    )
    parser.add_argument(
        "--free",
        type=float,
        default=DEFAULT_FREE,
        help="probability that a problem's amount is left open (several valid answers); 0: all stated",
    )
    parser.add_argument(
        "--eval-every",
        type=int,
        default=10,
        help="iterations between held-out evaluations, which select checkpoint-best (0: never)",
    )
    parser.add_argument("--eval-problems", type=int, default=64, help="held-out problems per evaluation")
    parser.add_argument("--seed", type=int, default=123)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--save-every", type=int, default=10)
    parser.add_argument("--device", default=None)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--stop-after", type=int, default=None, help="stop after this many iterations (resume later)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    procs = setup()
    try:
        train(args, procs)
    except (ValueError, ModelLoadError) as err:
        parser.exit(2, f"error: {err}\n")
    finally:
        procs.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
