"""The settings of one training run of the tiny dLLM (:class:`TrainConfig`), checked when made.

:mod:`dllm_viz.tiny.train` runs them (and re-exports the class); a checkpoint stores them as JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from ..tasks.wordproblems import LEVELS
from .data import LOSS_WEIGHTINGS
from .model import TinyModelConfig

# Fields that may differ when resuming; any other difference would change the run.
RESUMABLE_CHANGES = {
    "out_dir",
    "device",
    "threads",
    "time_limit_minutes",
    "eval_every",
    "eval_problems",
    "checkpoint_every",
    "log_every",
}


def comma_floats(text: str) -> tuple[float, ...]:
    """``"0.6,0.3,0.1"`` → ``(0.6, 0.3, 0.1)``: how ``--level-weights-start`` has always been written."""
    return tuple(float(x) for x in text.split(","))


@dataclass(frozen=True)
class TrainConfig:
    """One training run.

    Data and objective:
        gen_length: L, fixed response length; solutions are EOS-padded to it (the engine
            decodes with the same L = 64).
        batch_size: problems per step; all problems of a step share one level, so their
            prompts need little padding.
        level_weights_start, level_weights_end: curriculum; probability of each level
            (1, 2, 3 operations) at the first and last step, linearly interpolated. Easy
            problems first teach the format, then the mix shifts to multi-step problems.
        free_fraction: probability that a step's problems are free-choice ones (every
            addition and subtraction leaves its amount open; see
            :mod:`dllm_viz.tasks.wordproblems`), the rest stating every amount.
        min_mask_ratio: t ~ U(min_mask_ratio, 1) (LLaDA's eps, so t is never 0).
        loss_weighting: ``"masked_mean"`` or ``"elbo"`` (see :func:`.data.diffusion_loss`).

    Optimisation:
        steps, lr, warmup_steps, min_lr_ratio: AdamW, linear warmup then cosine decay to
            ``lr * min_lr_ratio``.
        weight_decay, grad_clip: usual regularisers; clip keeps early steps stable at lr 1e-3.

    Bookkeeping:
        eval_every, eval_problems: held-out eval period and problems per level (engine,
            High-Confidence-K, one token per step, BL = L/8, free-choice problems); 0 disables.
        checkpoint_every, log_every: periods in steps.
        time_limit_minutes: stop (with a checkpoint) after this much wall time; resume later.
        seed: seeds initialisation, data and masks.
        device: ``"auto"`` (cuda when present), ``"cpu"`` or ``"cuda"``.
        threads: torch CPU threads (None: torch's default).
        init_from: a saved model folder (e.g. an earlier run's ``final``) to continue from:
            its weights and tokenizer, with a fresh optimiser, schedule and data stream.
            ``model`` must describe the same network.
    """

    out_dir: str = field(default="outputs/tiny-dllm", metadata={"help": "the run's folder (checkpoint/, final/)"})
    model: TinyModelConfig = field(default_factory=TinyModelConfig)
    gen_length: int = field(default=64, metadata={"help": "L, the response length (a multiple of 8)"})
    batch_size: int = field(default=16, metadata={"help": "problems per step"})
    level_weights_start: tuple[float, ...] = field(
        default=(0.8, 0.15, 0.05),
        metadata={"type": comma_floats, "help": "curriculum at the first step: levels 1,2,3, e.g. 0.6,0.3,0.1"},
    )
    level_weights_end: tuple[float, ...] = field(
        default=(0.4, 0.3, 0.3), metadata={"type": comma_floats, "help": "curriculum at the last step"}
    )
    free_fraction: float = field(
        default=0.75, metadata={"help": "share of steps that train on free-choice problems (several valid answers)"}
    )
    min_mask_ratio: float = field(default=1e-3, metadata={"help": "t ~ U(min-mask-ratio, 1)"})
    loss_weighting: str = field(default="masked_mean", metadata={"choices": LOSS_WEIGHTINGS})
    steps: int = 9000
    lr: float = field(default=1e-3, metadata={"help": "peak AdamW learning rate"})
    warmup_steps: int = 200
    min_lr_ratio: float = field(default=0.1, metadata={"help": "the cosine decay ends at lr × this"})
    weight_decay: float = 0.01
    grad_clip: float = field(default=1.0, metadata={"help": "global gradient-norm clip"})
    eval_every: int = field(default=1000, metadata={"help": "held-out eval period in steps (0: none)"})
    eval_problems: int = field(default=32, metadata={"help": "held-out problems per level for accuracy (0: none)"})
    checkpoint_every: int = 250
    log_every: int = 25
    time_limit_minutes: float | None = field(
        default=None, metadata={"help": "stop with a checkpoint after this much wall time (--resume later)"}
    )
    seed: int = 0
    device: str = field(default="auto", metadata={"choices": ("auto", "cpu", "cuda")})
    threads: int | None = field(default=None, metadata={"help": "torch CPU threads (default: torch's)"})
    init_from: str | None = field(default=None, metadata={"help": "continue from a saved model folder (weights only)"})

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):
            object.__setattr__(self, "model", TinyModelConfig.from_dict(self.model))
        for name in ("level_weights_start", "level_weights_end"):
            weights = tuple(float(w) for w in getattr(self, name))
            object.__setattr__(self, name, weights)
            if len(weights) != len(LEVELS) or min(weights) < 0 or sum(weights) <= 0:
                raise ValueError(f"{name} ({weights}) must be {len(LEVELS)} non-negative weights, not all 0")
        for name in ("gen_length", "batch_size", "steps"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} ({getattr(self, name)!r}) must be a positive integer")
        for name in ("warmup_steps", "eval_every", "eval_problems", "log_every", "checkpoint_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"{name} ({getattr(self, name)!r}) must be an integer ≥ 0")
        if self.gen_length % 8:
            raise ValueError(f"gen_length ({self.gen_length}) must be a multiple of 8 (eval uses BL = L/8)")
        if not 0 <= self.free_fraction <= 1:
            raise ValueError(f"free_fraction ({self.free_fraction}) must be in [0, 1]")
        if not 0 < self.min_mask_ratio < 1:
            raise ValueError(f"min_mask_ratio ({self.min_mask_ratio}) must be in (0, 1)")
        if self.loss_weighting not in LOSS_WEIGHTINGS:
            raise ValueError(f"loss_weighting ({self.loss_weighting!r}) must be one of {LOSS_WEIGHTINGS}")
        if not self.lr > 0 or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"lr ({self.lr}) must be > 0 and min_lr_ratio ({self.min_lr_ratio}) in [0, 1]")
        if self.weight_decay < 0 or self.grad_clip <= 0:
            raise ValueError(f"weight_decay ({self.weight_decay}) must be ≥ 0 and grad_clip ({self.grad_clip}) > 0")
        if self.time_limit_minutes is not None and not self.time_limit_minutes > 0:
            raise ValueError(f"time_limit_minutes ({self.time_limit_minutes}) must be > 0 or None")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device ({self.device!r}) must be 'auto', 'cpu' or 'cuda'")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise ValueError(f"threads ({self.threads!r}) must be a positive integer or None")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**data)
