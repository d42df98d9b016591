"""GRPO as a trainer object over one complete config (TRL-style): ``GRPOTrainer(config).train()``.

Each iteration collects one rollout batch (prompts × G rollouts), computes group advantages and
runs :func:`~.grpo.grpo_update`. Metrics go to ``metrics.jsonl`` every iteration;
``checkpoint-last`` (policy + optimiser + schedule, resumable) every ``save_every`` iterations;
``checkpoint-best`` whenever the validation reward improves: every ``eval_every`` iterations the
policy decodes ``eval_problems`` validation-split problems (never test problems) once each at a
fixed seed, at the test-time knobs the reports use (``eval_temperature``, ``eval_beta``, argmax
fallback; :func:`.rollout.heldout_reward`); the training reward is watched too (10-iteration
moving average) but never picks a checkpoint, since it is measured on the batches the policy is
fitted to.
The loop is plain PyTorch; under ``torchrun`` each process takes its share of the prompts.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import torch
from tqdm import tqdm

from ..backends import BUILTIN_MODEL, DLLM, load_backend
from ..engine import EngineConfig
from ..flags import to_args
from ..outputs import check_destination
from ..policy import DiTConfidencePolicy, PolicyConfig
from ..policy.checkpoint import CONFIG_NAME, check_policy_dir, read_policy_config
from ..tasks.problem import Problem
from ..tasks.wordproblems import DEFAULT_FREE, DEFAULT_LEVEL, LEVELS, validation_set
from ..tasks.wordproblems import generate as generate_problem
from ..training import atomic_dir, load_optimizer, read_state, save_checkpoint
from .config import GRPOConfig
from .distributed import Processes
from .grpo import build_optimizer, group_advantages, grpo_update, should_skip_update
from .rollout import RolloutBatch, collect_rollouts, heldout_reward

logger = logging.getLogger(__name__)
MOVING_AVERAGE = 10

# Called after every logged iteration with the trainer and that iteration's metrics row (what
# metrics.jsonl gets); a true return stops the run there, with checkpoint-last saved, as
# ``stop_after`` does. How the app's Train tab watches a run and stops it between batches.
BatchCallback = Callable[["GRPOTrainer", dict], "bool | None"]


@dataclass(frozen=True)
class GRPOTrainConfig:
    """A whole GRPO run: the GRPO settings plus where, on what and for how long (the
    ``TrainingArguments`` of :class:`GRPOTrainer`; every field is a command-line flag)."""

    out_dir: str = field(metadata={"help": "run folder (metrics, checkpoints)"})
    model: str = field(default=BUILTIN_MODEL, metadata={"help": "the frozen dLLM"})
    trust_remote_code: bool = field(default=False, metadata={"help": "allow remote code for models off the allow-list"})
    iterations: int = field(default=150, metadata={"help": "rollout batches"})
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    gen_length: int = field(default=64, metadata={"help": "L, generation length"})
    block_length: int | None = field(default=None, metadata={"help": "default L/8; L for full diffusion"})
    hidden: int = field(default=128, metadata={"help": "policy width (paper: 128)"})
    smart_init: float = field(
        default=-2.0,
        metadata={
            "help": "output bias at init: every position starts with unmask probability near sigmoid(this) "
            "(paper: -2.0, ~0.12, a careful start; higher starts faster and spends fewer forwards early on)"
        },
    )
    top_p: int = field(
        default=1,
        metadata={
            "help": "largest token probabilities per position the policy sees (paper: 1, the max-prob "
            "confidence; its ablation: 50; here at most the engine's top_k, 5)"
        },
    )
    entropy_input: bool = field(
        default=False,
        metadata={"help": "also show the policy each position's entropy (what EB-Sampler reads; not in the paper)"},
    )
    init_from: str | None = field(
        default=None,
        metadata={
            "help": "start from this trained policy (a policy folder, e.g. an earlier run's checkpoint-best) "
            "instead of a fresh init: the next stage of an α curriculum; its width, inputs and action must "
            "match these flags"
        },
    )
    levels: tuple[int, ...] = field(
        default=(DEFAULT_LEVEL,), metadata={"nargs": "+", "help": "word-problem levels to train on"}
    )
    free: float = field(
        default=DEFAULT_FREE,
        metadata={"help": "probability that a problem's amount is left open (several valid answers); 0: all stated"},
    )
    eval_every: int = field(
        default=10,
        metadata={"help": "iterations between held-out evaluations, which select checkpoint-best (0: never)"},
    )
    eval_problems: int = field(
        default=256,
        metadata={"help": "validation problems per evaluation (64 could not rank checkpoints: their reward sat flat)"},
    )
    eval_temperature: float = field(
        default=1.0, metadata={"help": "τ_π of the validation decodes (select at the τ_π the reports use)"}
    )
    eval_beta: float = field(default=1.0, metadata={"help": "β of the validation decodes"})
    save_every: int = field(default=10, metadata={"help": "iterations between checkpoint-last saves"})
    threads: int | None = field(default=None, metadata={"help": "torch CPU threads (default: torch's)"})
    device: str | None = field(default=None, metadata={"help": "torch device (default: the backend's choice)"})
    resume: bool = field(default=False, metadata={"help": "continue the run in --out-dir from checkpoint-last"})
    stop_after: int | None = field(default=None, metadata={"help": "stop after this many iterations (resume later)"})
    progress: bool = field(default=True, metadata={"help": "hide the progress bar"})

    def __post_init__(self) -> None:
        object.__setattr__(self, "levels", tuple(self.levels))  # the CLI and JSON hand back lists
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"--threads ({self.threads}) must be ≥ 1")
        if not self.levels or set(self.levels) - set(LEVELS):
            raise ValueError(f"levels must be among {list(LEVELS)}, got {list(self.levels)}")


def training_problems(
    iteration: int, count: int, seed: int, levels: Sequence[int] = LEVELS, free: float = 0.0
) -> list[Problem]:
    """The prompts of one iteration: deterministic in (seed, iteration), train split only."""
    rng = random.Random(f"grpo/{seed}/{iteration}")
    return [generate_problem(rng.randrange(2**31), rng.choice(levels), "train", free) for _ in range(count)]


def heldout_problems(count: int, levels: Sequence[int], free: float) -> list[Problem]:
    """The fixed problems that select the checkpoint: the first of each level's validation set
    (disjoint from the test set the reports read)."""
    per_level = -(-count // len(levels))
    return [p for level in levels for p in validation_set(level, per_level, free)][:count]


def policy_architecture(config: GRPOTrainConfig) -> PolicyConfig:
    """The policy a run trains: a fresh one from the flags, or ``init_from``'s, which must be the
    same network seeing the same inputs and acting the same way (checked before any model loads)."""
    fresh = PolicyConfig(
        hidden_size=config.hidden,
        ffn_size=4 * config.hidden,
        top_p=config.top_p,
        entropy_input=config.entropy_input,
        action=config.grpo.action,
        smart_init=config.smart_init,
    )
    if config.init_from is None:
        return fresh
    folder = check_policy_dir(config.init_from)
    found = read_policy_config(folder / CONFIG_NAME) if (folder / CONFIG_NAME).is_file() else PolicyConfig()
    flags = {"hidden_size": "--hidden", "top_p": "--top-p", "entropy_input": "--entropy-input", "action": "--action"}
    differ = [
        f"{flag} {getattr(fresh, name)!r} vs {getattr(found, name)!r}"
        for name, flag in flags.items()
        if getattr(fresh, name) != getattr(found, name)
    ]
    if differ:
        raise ValueError(
            f"--init-from {config.init_from} is a different policy than these flags ask for: {'; '.join(differ)}"
        )
    return found


class GRPOTrainer:
    """Trains an unmasking policy against a frozen dLLM.

    Args:
        config: the run; every setting and the output folder are checked here, before the
            model is loaded or anything written.
        backend: the dLLM (default: ``load_backend(config.model)``).
        policy: the network to train (default: a fresh seeded ``DiTConfidencePolicy``).
        procs: this process's place under ``torchrun`` (default: a single process).
        callbacks: :data:`BatchCallback` s, called in order after each iteration (single process
            only: a stop that one rank alone decided would leave the others waiting).
    """

    def __init__(
        self,
        config: GRPOTrainConfig,
        backend: DLLM | None = None,
        policy: DiTConfidencePolicy | None = None,
        procs: Processes = Processes(),
        callbacks: Sequence[BatchCallback] = (),
    ) -> None:
        if callbacks and procs.world > 1:
            raise ValueError(f"callbacks need a single process, not {procs.world} (torchrun)")
        self.config, self.procs, self.callbacks = config, procs, tuple(callbacks)
        self.out = Path(config.out_dir)
        self.last = self.out / "checkpoint-last"
        if not config.resume:
            check_destination(
                self.out,
                kind="folder",
                force=False,
                hint="pass --resume to continue the run there, or choose a new --out-dir",
            )
        elif not (self.last / "trainer_state.json").exists():
            check_destination(
                self.out,
                kind="folder",
                force=False,
                hint="it holds no checkpoint-last/ to --resume, so choose a new --out-dir",
            )
        procs.check_prompts(config.grpo.prompts_per_batch)
        procs.barrier()  # every process has checked the folder before rank 0 writes to it
        torch.manual_seed(config.grpo.seed)
        if config.threads:
            torch.set_num_threads(config.threads)
        self.grpo = config.grpo.resolved(config.gen_length, config.iterations * config.grpo.num_iterations)
        self.engine = EngineConfig.semi_ar(config.gen_length, config.block_length)
        if not 1 <= config.top_p <= self.engine.top_k:
            raise ValueError(f"--top-p ({config.top_p}) must be between 1 and the engine's top_k ({self.engine.top_k})")
        self.grpo.check_engine(self.engine.gen_length, self.engine.block_length)
        architecture = policy_architecture(config)
        if backend is None:
            backend = load_backend(
                config.model, device=procs.device(config.device), trust_remote_code=config.trust_remote_code
            )
        if policy is None:
            if config.init_from is None:
                policy = DiTConfidencePolicy(architecture)
            else:
                policy = DiTConfidencePolicy.from_pretrained(config.init_from)
        self.backend, self.policy = backend, policy
        self.policy.to(self.backend.device)
        self.learner = procs.wrap(self.policy)  # DDP under torchrun: its backward averages gradients
        self.optimizer, self.schedule = build_optimizer(self.policy, self.grpo)

    def update(self, batch: RolloutBatch, advantages: torch.Tensor) -> dict[str, float]:
        """One GRPO update on a rollout batch (:func:`~.grpo.grpo_update`)."""
        return grpo_update(
            self.learner, batch.steps, advantages, self.grpo, self.optimizer, self.schedule, expert=batch.expert
        )

    def save(self, state: dict) -> None:
        """Atomically replace ``checkpoint-last`` (policy, optimiser, schedule, loop state)."""
        save_checkpoint(self.last, self.policy, self.optimizer, {**state, "schedule": self.schedule.state_dict()})

    def load(self) -> dict:
        """Restore ``checkpoint-last``; returns the loop state saved with it."""
        state = read_state(self.last)
        self.policy.load_state_dict(DiTConfidencePolicy.from_pretrained(self.last).state_dict())
        load_optimizer(self.last, self.optimizer)
        self.schedule.load_state_dict(state.pop("schedule"))
        return state

    def train(self) -> Path:
        """Run (or, with ``config.resume``, continue) the iterations; returns the run folder."""
        cfg, procs, out = self.config, self.procs, self.out
        selection = heldout_problems(cfg.eval_problems, cfg.levels, cfg.free) if cfg.eval_every else []
        start, best, history = self._begin()
        metrics = (out / "metrics.jsonl").open("a") if procs.main else None
        bar = tqdm(
            range(start, cfg.iterations),
            initial=start,
            total=cfg.iterations,
            desc="GRPO",
            disable=not cfg.progress or not procs.main,
        )
        for it in bar:
            if cfg.stop_after is not None and it >= start + cfg.stop_after:
                if procs.main:
                    self.save({"iteration": it - 1, "best": best, "history": list(history)})
                break
            row = self._iteration(it, history)
            if metrics is None:
                continue  # rank 0 evaluates, logs and saves; the others go on to the next rollouts
            if selection and ((it + 1) % cfg.eval_every == 0 or it + 1 == cfg.iterations):
                with torch.no_grad():
                    row.update(self._heldout(selection))
            _log(metrics, bar, row)
            state = {"iteration": it, "best": best, "history": list(history)}
            if "heldout_reward" in row and row["heldout_reward"] > best:
                best = state["best"] = row["heldout_reward"]
                self._save_best(it, row, len(selection))
            saved = (it + 1) % cfg.save_every == 0 or it + 1 == cfg.iterations
            if saved:
                self.save(state)
            if any([bool(callback(self, row)) for callback in self.callbacks]):  # a list: every one sees the row
                if not saved:
                    self.save(state)
                break
        if metrics is not None:
            metrics.close()
            if not (out / "checkpoint-best").exists():
                self.policy.save_pretrained(out / "checkpoint-best")
        return out

    def _begin(self) -> tuple[int, float, deque[float]]:
        """(first iteration, best held-out reward, recent rewards): fresh, or from the last
        checkpoint with ``resume``; rank 0 creates the folder and writes ``run_config.json``."""
        cfg, procs, out = self.config, self.procs, self.out
        start, best = 0, float("-inf")
        history: deque[float] = deque(maxlen=MOVING_AVERAGE)
        if procs.main:
            out.mkdir(parents=True, exist_ok=True)
        if cfg.resume and (self.last / "trainer_state.json").exists():
            meta = self.load()
            start, best = meta["iteration"] + 1, meta["best"]
            history.extend(meta["history"])
            logger.info("resumed from %s at iteration %d", self.last, start)
        if procs.main:
            run = {
                "grpo": self.grpo.to_dict(),
                "engine": self.engine.to_dict(),
                "model": str(cfg.model),
                "args": to_args(cfg),
                "processes": procs.world,
            }
            (out / "run_config.json").write_text(json.dumps(run, indent=1, default=str))
        return start, best, history

    def _iteration(self, it: int, history: deque[float]) -> dict:
        """Iteration ``it``: rollouts of this process's problems, advantages, the policy update
        (unless every advantage is ~0); the metrics row, averaged over processes."""
        cfg, procs, grpo, seed = self.config, self.procs, self.grpo, self.grpo.seed
        t0 = time.perf_counter()
        problems = procs.shard(training_problems(it, grpo.prompts_per_batch, seed, cfg.levels, cfg.free))
        # Rows draw from streams keyed by their prompt (dllm_viz.rng): no rank in the seed, so a
        # group rolls out the same whichever process or batch position it lands on.
        batch = collect_rollouts(self.backend, self.policy, problems, grpo, self.engine, seed=seed * 100_003 + it)
        advantages = group_advantages(batch.rewards, grpo.group_size).to(self.backend.device)
        row: dict[str, Any] = {
            "iteration": it,
            **procs.mean(
                {
                    "reward": float(batch.rewards.mean()),
                    "correct": float(batch.correct[~batch.expert].float().mean()),
                    "nfe": float(batch.nfe[~batch.expert].float().mean()),
                    "mean_unmask_prob": batch.mean_unmask_prob,
                }
            ),
            "lr": self.schedule.get_last_lr()[0],
            "skipped": procs.all(should_skip_update(advantages, grpo.skip_advantage_tol)),
        }
        if not row["skipped"]:
            row.update(procs.mean(self.update(batch, advantages)))
        history.append(row["reward"])
        row["reward_ma"] = sum(history) / len(history)
        row["seconds"] = time.perf_counter() - t0
        return row

    def _heldout(self, selection: list[Problem]) -> dict:
        cfg = self.config
        return heldout_reward(
            self.backend, self.policy, selection, self.grpo, self.engine, seed=self.grpo.seed,
            temperature=cfg.eval_temperature, beta=cfg.eval_beta,
        )  # fmt: skip

    def _save_best(self, iteration: int, row: dict, problems: int) -> None:
        """Atomically replace ``checkpoint-best`` with the policy and why it was selected."""
        selection = {
            "iteration": iteration,
            "heldout_reward": row["heldout_reward"],
            "heldout_correct": row["heldout_correct"],
            "heldout_nfe": row["heldout_nfe"],
            "heldout_problems": problems,
            "heldout_split": "validation",
            "heldout_temperature": self.config.eval_temperature,
            "heldout_beta": self.config.eval_beta,
            "reward_ma": row["reward_ma"],
        }
        with atomic_dir(self.out / "checkpoint-best") as tmp:
            self.policy.save_pretrained(tmp)
            (tmp / "selection.json").write_text(json.dumps(selection))


def _log(metrics: TextIO, bar: tqdm, row: dict) -> None:
    """One line of ``metrics.jsonl`` and the progress bar's numbers."""
    metrics.write(json.dumps(row) + "\n")
    metrics.flush()
    bar.set_postfix(
        reward=f"{row['reward']:.3f}",
        correct=f"{row['correct']:.2f}",
        nfe=f"{row['nfe']:.1f}",
        p=f"{row['mean_unmask_prob']:.2f}",
    )
