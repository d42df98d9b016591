"""GRPO settings for training an unmasking policy (paper §1.5–1.7, §3.1 released configs)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace

from ..blocks import check_block_length, default_block_length
from ..policy.config import ACTIONS
from .rewards import REWARD_FUNCTIONS


@dataclass(frozen=True)
class GRPOConfig:
    """Everything the GRPO loop needs besides the engine settings; defaults = released configs.

    Rollouts and reward:
        num_generations: G, policy rollouts per prompt (8). Group advantages need G ≥ 2.
        prompts_per_batch: prompt groups per rollout batch (paper: 16, so 128 rollouts per
            optimiser step). Must be ≥ 1.
        reward: ``"multiplicative"`` (main, Eq. 3.1) or ``"additive"`` (ablation; hacks at α = 1).
        action: how the policy acts: ``"bernoulli"`` (the paper: independent draws, an empty
            step allowed) or ``"bernoulli-plus-one"`` (the draws plus exactly one more position,
            :func:`~dllm_viz.policy.sampling.sample_plus_one`); log-probabilities exact for both.
        alpha: α ≥ 0, the price of speed (code default 0 = plain correctness; paper grid
            {0, 0.3, 1, 3, 10}, one policy per α).

    Optimiser (HF AdamW defaults overridden as in the released YAMLs):
        learning_rate: 3e-5, peak after warmup.
        adam_betas: (0.9, 0.99); the second moment forgets faster than Adam's 0.999.
        weight_decay: 0.1.
        max_grad_norm: 0.2, global-norm clipping of the policy gradient.
        warmup_steps: 100 linear warmup steps, then cosine decay to 0 over the remaining
            steps (``total_steps``).
        total_steps: optimiser steps for the schedule; ``None`` = let the trainer derive it
            from one epoch (rollout batches × ``num_iterations``). Must exceed ``warmup_steps``.

    GRPO loss:
        epsilon: ε of the symmetric PPO clip, ratio in [1 − ε, 1 + ε] (code: 0.5; a third-party
            note says the paper used 0.2 with ES — unverified). Must be in (0, 1).
        num_iterations: optimiser steps per rollout batch (2); ratios are always taken against
            the log-probs stored at rollout time.
        skip_advantage_tol: skip the optimiser step when every |A| is below this (1e-6): an
            all-zero-advantage batch has no learning signal. 0 never skips.

    Expert steering (appendix F; full diffusion only):
        es_thresholds: one Fast-dLLM threshold λ per expert rollout added to every group
            (E = len). Empty = no ES. Each λ in (0, 1]. The paper's λ is not reported.
        es_block_length: the experts decode semi-AR with this block length; ``None`` = the
            semi-AR default for L (:func:`~dllm_viz.engine.default_block_length`, L/8: the code's 32
            for L = 256). Must divide the generation length (checked by :meth:`check_engine`).

        seed: seeds policy init and rollout RNG (released configs: 123).
    """

    num_generations: int = field(default=8, metadata={"flag": "--group-size", "help": "G, policy rollouts per prompt"})
    prompts_per_batch: int = field(
        default=16, metadata={"flag": "--prompts", "help": "prompt groups per rollout batch"}
    )
    reward: str = field(
        default="multiplicative", metadata={"choices": tuple(REWARD_FUNCTIONS), "help": "reward of a rollout"}
    )
    action: str = field(
        default="bernoulli",
        metadata={"choices": ACTIONS, "help": "the policy's action form (bernoulli: the paper's)"},
    )
    alpha: float = field(default=0.0, metadata={"help": "α, the price of speed"})
    learning_rate: float = field(default=3e-5, metadata={"flag": "--lr", "help": "peak learning rate"})
    adam_betas: tuple[float, float] = field(default=(0.9, 0.99), metadata={"help": "AdamW betas"})
    weight_decay: float = field(default=0.1, metadata={"help": "AdamW weight decay (not on biases and norms)"})
    max_grad_norm: float = field(default=0.2, metadata={"help": "global gradient-norm clip"})
    warmup_steps: int = field(default=100, metadata={"flag": "--warmup", "help": "linear warmup optimiser steps"})
    total_steps: int | None = field(
        default=None, metadata={"help": "optimiser steps of the schedule (default: iterations × num-iterations)"}
    )
    epsilon: float = field(default=0.5, metadata={"help": "ε of the PPO clip"})
    num_iterations: int = field(default=2, metadata={"help": "optimiser steps per rollout batch"})
    skip_advantage_tol: float = field(default=1e-6, metadata={"help": "skip the update when every |A| is below this"})
    es_thresholds: tuple[float, ...] = field(
        default=(), metadata={"nargs": "*", "help": "expert steering λ per expert rollout"}
    )
    es_block_length: int | None = field(default=None, metadata={"help": "the experts' block length (default: L/8)"})
    seed: int = field(default=123, metadata={"help": "seeds policy init, prompts and rollouts"})

    def __post_init__(self) -> None:
        # JSON hands tuples back as lists; freeze them again.
        object.__setattr__(self, "adam_betas", tuple(self.adam_betas))
        object.__setattr__(self, "es_thresholds", tuple(self.es_thresholds))
        _int_at_least("num_generations", self.num_generations, 2)
        _int_at_least("prompts_per_batch", self.prompts_per_batch, 1)
        _int_at_least("warmup_steps", self.warmup_steps, 0)
        _int_at_least("num_iterations", self.num_iterations, 1)
        if self.es_block_length is not None:
            _int_at_least("es_block_length", self.es_block_length, 1)
        _int_at_least("seed", self.seed, 0)
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r}; known: {', '.join(ACTIONS)}")
        if self.reward not in REWARD_FUNCTIONS:
            raise ValueError(f"unknown reward {self.reward!r}; known: {', '.join(REWARD_FUNCTIONS)}")
        for name in ("alpha", "weight_decay", "skip_advantage_tol"):
            _number_in(name, getattr(self, name), low=0.0)
        _number_in("learning_rate", self.learning_rate, low=0.0, low_open=True)
        _number_in("max_grad_norm", self.max_grad_norm, low=0.0, low_open=True)
        _number_in("epsilon", self.epsilon, low=0.0, high=1.0, low_open=True, high_open=True)
        if len(self.adam_betas) != 2:
            raise ValueError(f"`adam_betas` ({self.adam_betas!r}) must be two numbers")
        for beta in self.adam_betas:
            _number_in("adam_betas", beta, low=0.0, high=1.0, high_open=True)
        for lam in self.es_thresholds:
            _number_in("es_thresholds", lam, low=0.0, high=1.0, low_open=True)
        if self.total_steps is not None:
            _int_at_least("total_steps", self.total_steps, 1)
            if self.total_steps <= self.warmup_steps:
                raise ValueError(
                    f"`total_steps` ({self.total_steps}) must exceed `warmup_steps` ({self.warmup_steps}), "
                    "otherwise the learning rate never leaves warmup; lower warmup_steps or raise total_steps"
                )

    def resolved(self, gen_length: int, total_steps: int) -> GRPOConfig:
        """The same settings with every default that depends on the run filled in (what a run records)."""
        return replace(
            self, es_block_length=self.expert_block_length(gen_length), total_steps=self.total_steps or total_steps
        )

    @property
    def num_experts(self) -> int:
        """E, expert rollouts per group (0 without expert steering)."""
        return len(self.es_thresholds)

    @property
    def group_size(self) -> int:
        """Rollouts per prompt that share one advantage baseline: G + E."""
        return self.num_generations + self.num_experts

    def check_engine(self, gen_length: int, block_length: int) -> None:
        """Cross-check with the engine: ES needs full diffusion and a dividing expert block."""
        if not self.es_thresholds:
            return
        if block_length != gen_length:
            raise ValueError(
                f"expert steering is for full diffusion: `block_length` ({block_length}) must equal "
                f"`gen_length` ({gen_length}), or set es_thresholds=()"
            )
        check_block_length(gen_length, self.expert_block_length(gen_length), ("`es_block_length`", "`gen_length`"))

    def expert_block_length(self, gen_length: int) -> int:
        """The experts' block length for L: ``es_block_length``, or L's semi-AR default."""
        return self.es_block_length or default_block_length(gen_length)

    def to_dict(self) -> dict:
        """JSON-ready dict (tuples become lists)."""
        data = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    @classmethod
    def from_dict(cls, data: dict) -> GRPOConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown GRPO config keys {unknown}; known keys: {sorted(known)}")
        return cls(**data)


def _int_at_least(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"`{name}` ({value!r}) must be an integer ≥ {low}")


def _number_in(
    name: str, value: object, *, low: float, high: float = math.inf, low_open: bool = False, high_open: bool = False
) -> None:
    ok = (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value > low if low_open else value >= low)
        and (value < high if high_open else value <= high)
    )
    if not ok:
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"`{name}` ({value!r}) must be in {lo}{low}, {high}{hi}")
