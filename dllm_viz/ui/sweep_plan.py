"""What a Benchmark sweep will run and cost: the tab's controls checked (each mistake named) and
turned into strategy specs per block length, problems and seeds, with the work limit, the cost
shown before a sweep starts and the time left while it runs. No Gradio here."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from ..engine import EngineConfig
from ..eval import heuristic_grid, policy_grid
from ..strategies import POLICY, REGISTRY, StrategySpec
from . import picker, runtime
from .errors import public_message, shown
from .settings import MAX_GEN_LENGTH, finite_number, flag, text, whole_number

MAX_PROBLEMS = 200  # per level; the CLI handles bigger sweeps
LEVELS = (1, 2, 3)
# decodes × L per request: the default run is ~4k, the biggest sensible one (600 problems, 5 seeds,
# five stochastic strategies, L = 64) ~1M; about 2-5 minutes of the built-in model on one CPU core
MAX_WORK = 1_000_000
SETTINGS = {"semi-AR (BL = L/8)": EngineConfig.semi_ar, "full diffusion (BL = L)": EngineConfig.full}  # L → config
POLICY_PREFIX = {"semi-AR (BL = L/8)": "semi-ar", "full diffusion (BL = L)": "full-diffusion"}  # trained for it


def policy_fits(policy: str, setting: str) -> bool:
    """A shipped policy runs in the setting it was trained for: the one its ``trained_for.json``
    records, else the one its name says (``semi-ar-…`` or ``full-diffusion-…``); a policy with
    neither runs in every setting."""
    own = picker.policy_trained_for(StrategySpec(POLICY, policy=policy))
    if own is not None:
        return own.full_diffusion == (POLICY_PREFIX[setting] == "full-diffusion")
    prefixes = POLICY_PREFIX.values()
    prefix = next((p for p in prefixes if policy.startswith(p)), None)
    return prefix is None or prefix == POLICY_PREFIX[setting]


def family_choices() -> list[tuple[str, str]]:
    """Strategy families: shipped policies, then the heuristics (the Compare tab's picker, without the upload)."""
    return [(label, value) for label, value in picker.strategy_choices() if value != picker.UPLOADED]


def family_spec(family: object) -> StrategySpec:
    """A picked family (a :func:`family_choices` value) at its default parameters."""
    return picker.pane_strategy(text("a strategy", family, 100), {})


def _floats(name: str, text: object, param: str) -> list[float]:
    """Distinct values of the policy's ``param`` (within its schema's range) from a comma- or
    space-separated text, at most 20; empty: [] (each policy's own validated value)."""
    p = REGISTRY[POLICY].param(param)
    if text is None:
        return []
    if not isinstance(text, str) or len(text) > 200:
        raise ValueError(f"{name} must be a short text of numbers separated by commas")
    return list(dict.fromkeys(finite_number(name, v, p.low, p.high) for v in text.replace(",", " ").split()[:20]))


def _picks(name: str, values: object, allowed: Sequence[object]) -> list:
    """The distinct ticked values of a checkbox group, each one of ``allowed`` (our own check:
    Gradio's echoes the value unescaped)."""
    if values is None:
        return []
    if not isinstance(values, (list, tuple)) or len(values) > 1000:
        raise TypeError(f"{name} must be a list of at most 1,000 choices")
    for value in values:
        if isinstance(value, bool) or value not in allowed:
            raise ValueError(f"{name}: {shown(value)} is not one of {', '.join(map(str, allowed))}")
    return list(dict.fromkeys(values))


def sweep_work(specs_by_bl: dict, problems: int, seeds: int, gen_length: int) -> int:
    """Decodes × L a sweep runs (a deterministic strategy runs for the first seed only)."""
    decodes = sum(seeds if spec.stochastic else 1 for specs in specs_by_bl.values() for spec in specs)
    return decodes * problems * gen_length


def benchmark_specs(
    families: list[str],
    grid: bool,
    gen_length: int,
    block_length: int,
    temperatures: list[float],
    betas: list[float],
    setting: str | None = None,
) -> list[StrategySpec]:
    """Strategy specs for one setting: each heuristic at its defaults (or its sweep grid), and each
    selected policy trained for ``setting`` (see :func:`policy_fits`) at every (τ_π, β)."""
    specs = []
    policies = runtime.shipped_policies()
    for family in families:
        spec = family_spec(family)
        if spec.name != POLICY:
            swept = [s for s in heuristic_grid(gen_length, block_length) if s.name == spec.name] if grid else []
            specs += swept or [spec]  # a strategy with no grid of its own runs at its defaults
        elif setting is None or policy_fits(str(spec.policy), setting):
            own = picker.policy_defaults(spec)  # an empty τ_π or β list: the policy's validated value
            taus = temperatures or [own.get("temperature", 1.0)]
            policy_betas = betas or [own.get("beta", 1.0)]
            specs += policy_grid(str(policies[str(spec.policy)]), spec.key, taus, policy_betas)
    return specs


@dataclass(frozen=True)
class SweepPlan:
    """A checked sweep: strategy specs per block length, the problems, L and the seed count."""

    specs_by_bl: dict[int, list[StrategySpec]]
    problems: list
    gen_length: int
    seeds: int

    @property
    def decodes(self) -> int:
        return sweep_work(self.specs_by_bl, len(self.problems), self.seeds, 1)

    @property
    def work(self) -> int:
        """Token positions decoded (decodes × L): what :data:`MAX_WORK` limits."""
        return self.decodes * self.gen_length


def plan_sweep(
    families: object,
    grid: object,
    settings: object,
    levels: object,
    n: object,
    gen_length: object,
    seeds: object,
    temperatures: object,
    betas: object,
) -> SweepPlan:
    """Every Benchmark control checked (each mistake named) and turned into the sweep it asks for."""
    from ..tasks import DEFAULT_FREE, test_set

    families = _picks("strategies", families, [value for _, value in family_choices()])
    settings = _picks("settings", settings, list(SETTINGS))
    levels = _picks("levels", levels, LEVELS)
    if not families:
        raise ValueError("pick at least one strategy")
    if not settings:
        raise ValueError("pick at least one setting (semi-AR or full diffusion)")
    if not levels:
        raise ValueError("pick at least one problem level")
    grid = flag("grid", grid)
    n = whole_number("problems per level", n, 1, MAX_PROBLEMS)
    L, seeds = whole_number("gen length", gen_length, 1, MAX_GEN_LENGTH), whole_number("seeds", seeds, 1, 5)
    if L < 8 or L % 8:
        raise ValueError(f"gen length ({L}) must be a multiple of 8 (semi-AR uses BL = L/8)")
    taus, betas_ = _floats("τ_π values", temperatures, "temperature"), _floats("β values", betas, "beta")
    for spec in map(family_spec, families):
        if spec.name == POLICY and not any(policy_fits(str(spec.policy), s) for s in settings):
            raise ValueError(f"policy {spec.policy} was trained for another setting; tick that setting or untick it")
    block_lengths = {s: SETTINGS[s](L).block_length for s in settings}
    specs_by_bl = {bl: benchmark_specs(families, grid, L, bl, taus, betas_, s) for s, bl in block_lengths.items()}
    problems = [p for level in levels for p in test_set(int(level), n, DEFAULT_FREE)]
    plan = SweepPlan(specs_by_bl, problems, L, seeds)
    if plan.work > MAX_WORK:
        raise ValueError(
            f"this benchmark asks for {plan.decodes:,} decodes of {L} tokens ({plan.work:,} token positions); "
            f"the limit is {MAX_WORK:,}: pick fewer problems, seeds, strategies or τ_π/β values, "
            "or run the sweep with python -m dllm_viz.eval"
        )
    return plan


class Speed:
    """Token positions per second of this server's last finished sweep, per model: the basis of
    the cost shown before a sweep starts (bounded: one number per model the server ran)."""

    def __init__(self) -> None:
        self._rate: dict[str, float] = {}

    def record(self, model: str, rate: float) -> None:
        self._rate[model] = rate

    def seconds(self, model: object, work: int) -> float | None:
        rate = self._rate.get(str(model))
        return work / rate if rate else None


SPEED = Speed()


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def time_left(done: int, total: int, started: float) -> str:
    """`` · about 40 s left`` from the pace so far; empty before the first run finishes."""
    if done <= 0 or done >= total:
        return ""
    return f" · about {_duration((time.monotonic() - started) * (total - done) / done)} left"


def sweep_cost(
    model: object,
    families: object,
    grid: object,
    settings: object,
    levels: object,
    n: object,
    gen_length: object,
    seeds: object,
    temperatures: object,
    betas: object,
    *_: object,
) -> str:
    """What a sweep with these controls will cost, before it starts: its decodes and, once this
    server has finished a sweep on the model, the time that pace gives; a mistake named instead."""
    try:
        plan = plan_sweep(families, grid, settings, levels, n, gen_length, seeds, temperatures, betas)
    except (ValueError, TypeError) as err:
        return f"⚠ {public_message(err)}"
    strategies = sum(len(specs) for specs in plan.specs_by_bl.values())
    seeds = f", stochastic ones × {plan.seeds} seeds" if plan.seeds > 1 else ""
    line = (
        f"This sweep: **{plan.decodes:,} decodes** of {plan.gen_length} tokens "
        f"({strategies} strategy runs × {len(plan.problems)} problems{seeds})"
    )
    seconds = SPEED.seconds(model, plan.work)
    if seconds is None:
        return line + "; the first sweep on this model measures the server's pace for an estimate."
    return line + f", about **{_duration(seconds)}** at this server's last pace."
