"""What a Train-tab run may ask for: :class:`TrainSettings`, checked at the app's boundary, its
presets, and the :class:`~dllm_viz.rl.trainer.GRPOTrainConfig` it becomes.

Everything else about the run is fixed to the shipped policies' recipe (assets/policies/*/README.md):
8 prompts × 8 rollouts per batch, L = 64, level-1 word problems with open amounts, warmup 5,
ε 0.5, two optimiser steps per batch, 64 validation problems every 5 batches (about five
validations in a longer run). No Gradio here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..rl.config import GRPOConfig
from ..rl.trainer import GRPOTrainConfig
from ..strategies import HEURISTICS, StrategySpec
from .settings import MAX_SEED, finite_number, text, whole_number

MAX_BATCHES = 200  # ~15 min of full diffusion on one core; the per-session cap ends it sooner
GEN_LENGTH = 64
SETTINGS = ("full diffusion", "semi-AR")  # BL = L, or the semi-AR default BL = L/8
ES_THRESHOLD = 0.9  # the expert's Fast-dLLM λ, as in the shipped full-diffusion-es policy
EVAL_EVERY = 5
VALIDATIONS_PER_RUN = 5  # past 25 batches, validations spread out: each costs about a batch
EVAL_PROBLEMS = 64  # as the shipped runs; 32 sat too flat to rank checkpoints
MAX_LEARNING_RATE = 1e-2
SNAPSHOTS_PER_RUN = 10  # probe decodes a run shows when no probe interval is given
MAX_ALPHA = 10.0  # the paper's α grid ends at 10


@dataclass(frozen=True)
class TrainSettings:
    """One Train-tab run (every field a control of the tab and an argument of ``/train``).

    Attributes:
        setting: ``"full diffusion"`` (BL = L = 64) or ``"semi-AR"`` (BL = 8).
        alpha: α, the reward's price of speed, in [0, 10].
        expert_steering: add one Fast-dLLM λ = 0.9 expert rollout per group (full diffusion only).
        learning_rate: peak AdamW learning rate, in (0, 1e-2].
        batches: rollout batches (8 prompts × 8 rollouts each), 1 … ``MAX_BATCHES``.
        seed: seeds the policy's initialisation, the prompts and the rollouts.
        heuristic: the picker value (``"heuristic:<name>"``) the probe is decoded with beside the policy.
        probe_every: batches between two decodes of the probe problem by the policy.

    The recipe (not controls of the tab; smaller in tests): ``gen_length`` L (8 … 64, a multiple
    of 8), ``prompts`` per batch and ``group_size`` G rollouts per prompt (8 × 8), and
    ``eval_problems`` validation problems every ``eval_every`` batches (64), and ``smart_init``,
    the policy's output bias at init: 0 (each position starts at unmask probability ~0.5), not the
    paper's careful -2 (~0.12). On the built-in model the 30-batch preset then costs 186 s of CPU
    instead of 245 s and ends at a higher validation reward (0.749 vs 0.669, ``bench/train_tab.py
    --smart-init``): the careful start decodes at NFE ≈ 60 in its first batches.
    """

    setting: str = "full diffusion"
    alpha: float = 3.0
    expert_steering: bool = False
    learning_rate: float = 3e-4
    batches: int = 30
    seed: int = 123
    heuristic: str = "heuristic:threshold"
    probe_every: int = 3
    gen_length: int = GEN_LENGTH
    prompts: int = 8
    group_size: int = 8
    eval_problems: int = EVAL_PROBLEMS
    smart_init: float = 0.0

    def __post_init__(self) -> None:
        for name, low, high in (("gen_length", 8, GEN_LENGTH), ("prompts", 1, 16), ("group_size", 2, 16)):
            whole_number(name, getattr(self, name), low, high)
        whole_number("eval_problems", self.eval_problems, 1, 256)
        if self.gen_length % 8:
            raise ValueError(f"gen_length ({self.gen_length}) must be a multiple of 8 (semi-AR blocks are L/8)")
        if self.setting not in SETTINGS:
            raise ValueError(f"setting ({self.setting!r}) must be one of {', '.join(SETTINGS)}")
        if self.expert_steering and self.setting != "full diffusion":
            raise ValueError("expert steering is for full diffusion; untick it or pick full diffusion")
        if not isinstance(self.expert_steering, bool):
            raise TypeError(f"expert steering must be true or false, not {type(self.expert_steering).__name__}")
        choices = heuristic_choices()
        if self.heuristic not in choices:
            raise ValueError(f"heuristic ({self.heuristic!r}) must be one of {', '.join(choices)}")

    @classmethod
    def of(
        cls,
        setting: object,
        alpha: object,
        expert_steering: object,
        learning_rate: object,
        batches: object,
        seed: object,
        heuristic: object,
        probe_every: object = None,
    ) -> TrainSettings:
        """From raw browser or client values: type, range and size checked, each named. Without
        ``probe_every``, about ten probe snapshots per run (as the presets have)."""
        runs = whole_number("batches", batches, 1, MAX_BATCHES)
        if probe_every is None:
            probe_every = -(-runs // SNAPSHOTS_PER_RUN)
        return cls(
            setting=text("setting", setting, 40),
            alpha=finite_number("α (alpha)", alpha, 0.0, MAX_ALPHA),
            expert_steering=_flag("expert steering", expert_steering),
            learning_rate=_learning_rate(learning_rate),
            batches=runs,
            seed=whole_number("seed", seed, 0, MAX_SEED),
            heuristic=text("heuristic", heuristic, 100),
            probe_every=whole_number("probe every", probe_every, 1, MAX_BATCHES),
        )

    @property
    def eval_every(self) -> int:
        """Batches between validations: ``EVAL_EVERY``, or about ``VALIDATIONS_PER_RUN`` in a longer run."""
        return max(EVAL_EVERY, -(-self.batches // VALIDATIONS_PER_RUN))

    @property
    def block_length(self) -> int:
        return self.gen_length if self.setting == "full diffusion" else self.gen_length // 8

    @property
    def heuristic_spec(self) -> StrategySpec:
        return StrategySpec.parse(self.heuristic)

    def to_dict(self) -> dict:
        return asdict(self)

    def train_config(self, out_dir: str, model: str, resume: bool = False) -> GRPOTrainConfig:
        """The whole GRPO run: these settings plus the shipped recipe; a checkpoint every batch
        (Resume after Stop loses nothing), no progress bar, torch's threads left alone (the server's)."""
        grpo = GRPOConfig(
            num_generations=self.group_size,
            prompts_per_batch=self.prompts,
            alpha=self.alpha,
            learning_rate=self.learning_rate,
            warmup_steps=5,
            total_steps=max(2 * self.batches, 6),  # cosine over the run; must exceed the warmup
            es_thresholds=(ES_THRESHOLD,) if self.expert_steering else (),
            seed=self.seed,
        )
        return GRPOTrainConfig(
            out_dir=out_dir,
            model=model,
            iterations=self.batches,
            grpo=grpo,
            gen_length=self.gen_length,
            block_length=self.block_length,
            levels=(1,),
            free=1.0,
            eval_every=self.eval_every,
            eval_problems=self.eval_problems,
            save_every=1,
            smart_init=self.smart_init,
            resume=resume,
            progress=False,
        )


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be true or false, not {type(value).__name__}")
    return value


def _learning_rate(value: object) -> float:
    lr = finite_number("learning rate", value, 0.0, MAX_LEARNING_RATE)
    if lr <= 0:
        raise ValueError(f"learning rate ({lr}) must be above 0 (and at most {MAX_LEARNING_RATE})")
    return lr


def heuristic_choices() -> list[str]:
    """Picker values of the heuristics the probe can be decoded with."""
    return [StrategySpec(name).key for name in HEURISTICS]


PRESETS: dict[str, TrainSettings] = {
    "fast full-diffusion policy (~3 min on one core)": TrainSettings(),
    "full diffusion, steered by an expert (~3.5 min)": TrainSettings(expert_steering=True),
    "speed is cheap: α = 0.3, full diffusion (~5.5 min)": TrainSettings(alpha=0.3),
    "semi-AR blocks of 8, α = 1 (~5 min)": TrainSettings(setting="semi-AR", alpha=1.0, batches=20, probe_every=2),
    "quick look: 6 batches (~40 s)": TrainSettings(batches=6, probe_every=1),
}
DEFAULT_PRESET = next(iter(PRESETS))
