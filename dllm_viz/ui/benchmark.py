"""The Benchmark tab: accuracy vs NFE of chosen strategies on held-out problems.

It reuses :mod:`dllm_viz.eval` (the same sweep, summary, Pareto plot and table as the CLI
``python -m dllm_viz.eval``), so the numbers here and in the reports agree.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from ..backends import DLLM
from ..engine import EngineConfig
from ..eval import (
    heuristic_grid,
    markdown_table,
    pareto_figure,
    pareto_front,
    policy_grid,
    summarize,
    sweep,
)
from ..eval.report import display_name, write_csv
from ..eval.sweep import panels, subset_of
from ..strategies import POLICY, REGISTRY, StrategySpec
from ..views.glossary import BETA_INFO, NFE_INFO, TAU_INFO
from . import picker, runtime, zerogpu
from .budget import BackgroundJob, CancellableBackend, Signal
from .errors import shown, user_errors
from .files import content_folder, digest_of
from .pane import model_picker
from .settings import MAX_GEN_LENGTH, finite_number, flag, runnable_model, text, whole_number

if TYPE_CHECKING:
    from ..tasks import Problem

MAX_PROBLEMS = 200  # per level; the CLI handles bigger sweeps
LEVELS = (1, 2, 3)
# decodes × L per request: the default run is ~4k, the biggest sensible one (600 problems, 5 seeds,
# five stochastic strategies, L = 64) ~1M; about 2-5 minutes of the built-in model on one CPU core
MAX_WORK = 1_000_000
POLL_S = 0.25  # the handler yields this often while the sweep runs, so a cancel lands quickly
SETTINGS = {"semi-AR (BL = L/8)": EngineConfig.semi_ar, "full diffusion (BL = L)": EngineConfig.full}  # L → config
POLICY_PREFIX = {"semi-AR (BL = L/8)": "semi-ar", "full diffusion (BL = L)": "full-diffusion"}  # trained for it
TABLE_COLUMNS = [
    "setting",
    "strategy",
    "params",
    "seeds",
    "n",
    "subset",
    "accuracy",
    "accuracy_std",
    "mean_nfe",
    "tokens_per_step",
    "no_answer",
]
TABLE_HEADERS = [
    "setting",
    "strategy",
    "parameters",
    "seeds",
    "n",
    "subset",
    "accuracy %",
    "± std",
    "mean NFE",
    "tokens/step",
    "no answer %",
    "front",
]


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


def summary_table(summary: list[dict]) -> list[list]:
    """Rows for the table; "front" marks the Pareto front over all strategies of a setting and problem subset."""
    front = {id(r) for rows in panels(summary).values() for r in pareto_front(rows)}
    return [
        [
            round(v, 2) if isinstance(v, float) else v
            for v in ({**r, "subset": subset_of(r), "strategy": display_name(r["strategy"])}[c] for c in TABLE_COLUMNS)
        ]
        + ["★" if id(r) in front else ""]
        for r in summary
    ]


def family_choices() -> list[tuple[str, str]]:
    """Strategy families: shipped policies, then the heuristics (the Compare tab's picker, without the upload)."""
    return [(label, value) for label, value in picker.strategy_choices() if value != picker.UPLOADED]


def family_spec(family: object) -> StrategySpec:
    """A picked family (a :func:`family_choices` value) at its default parameters."""
    return picker.pane_strategy(text("a strategy", family, 100), {})


def _floats(name: str, text: str, param: str) -> list[float]:
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
            specs += [s for s in heuristic_grid(gen_length, block_length) if s.name == spec.name] if grid else [spec]
        elif setting is None or policy_fits(str(spec.policy), setting):
            own = picker.policy_defaults(spec)  # an empty τ_π or β list: the policy's validated value
            taus = temperatures or [own.get("temperature", 1.0)]
            policy_betas = betas or [own.get("beta", 1.0)]
            specs += policy_grid(str(policies[str(spec.policy)]), spec.key, taus, policy_betas)
    return specs


def _runs_csv(rows: list[dict]) -> Path:
    """The sweep's runs as CSV in the bounded export folder (one folder per distinct content)."""
    key = digest_of(json.dumps(rows, sort_keys=True, default=str).encode())
    folder = content_folder("bench", key, lambda f: write_csv(rows, f / "benchmark-runs.csv"))
    return folder / "benchmark-runs.csv"


def _sweep_work(
    model: str, problems: Sequence[Problem], specs_by_bl: dict, gen_length: int, seeds: list[int], **_: object
) -> tuple[int, int]:
    """Every decode's L forward passes (batched rows cost the same per token), over a problem and L."""
    forwards = sweep_work(specs_by_bl, len(problems), len(seeds), gen_length)
    return forwards, max((zerogpu.prompt_tokens(p.question) for p in problems), default=0) + gen_length


@zerogpu.gpu_task(_sweep_work)  # on ZeroGPU capped at what a visitor's quota allows (the CLI has no cap)
def _sweep(
    model: str,
    problems: Sequence[Problem],
    specs_by_bl: dict,
    gen_length: int,
    seeds: list[int],
    progress: Callable[[int, int, str], None] | None = None,
    cancel: Signal | None = None,
) -> list[dict]:
    backend: DLLM = runtime.get_backend(model)
    if cancel is not None:
        backend = CancellableBackend(backend, cancel)
    return sweep(
        backend,
        problems,
        [],
        list(specs_by_bl),
        gen_length,
        seeds,
        batch_size=50,
        specs_for=lambda bl: specs_by_bl[bl],
        progress=progress,
    )


def run_benchmark(
    model: object,
    families: object,
    grid: object,
    settings: object,
    levels: object,
    n: object,
    gen_length: object,
    seeds: object,
    temperatures: str,
    betas: str,
    log_nfe: object = False,
    progress: gr.Progress = gr.Progress(),
) -> Iterator[tuple]:
    """Run the sweep; yield (Pareto figure, summary table, markdown table, CSV file) at the end.

    A generator: the sweep runs in a :class:`~.budget.BackgroundJob` and this handler yields
    (skips) every ``POLL_S`` while it runs, so a cancel reaches it and stops the sweep.
    """
    from ..tasks import DEFAULT_FREE, test_set

    with user_errors("Cannot run the benchmark"):
        families = _picks("strategies", families, [value for _, value in family_choices()])
        settings = _picks("settings", settings, list(SETTINGS))
        levels = _picks("levels", levels, LEVELS)
        if not families:
            raise ValueError("pick at least one strategy")
        if not settings:
            raise ValueError("pick at least one setting (semi-AR or full diffusion)")
        if not levels:
            raise ValueError("pick at least one problem level")
        grid, log_nfe = flag("grid", grid), flag("log NFE", log_nfe)
        n = whole_number("problems per level", n, 1, MAX_PROBLEMS)
        L, seeds = whole_number("gen length", gen_length, 1, MAX_GEN_LENGTH), whole_number("seeds", seeds, 1, 5)
        if L < 8 or L % 8:
            raise ValueError(f"gen length ({L}) must be a multiple of 8 (semi-AR uses BL = L/8)")
        taus, betas_ = _floats("τ_π values", temperatures, "temperature"), _floats("β values", betas, "beta")
        model = runnable_model(model)
        for spec in map(family_spec, families):
            if spec.name == POLICY and not any(policy_fits(str(spec.policy), s) for s in settings):
                raise ValueError(
                    f"policy {spec.policy} was trained for another setting; tick that setting or untick it"
                )
        block_lengths = {s: SETTINGS[s](L).block_length for s in settings}
        specs_by_bl = {
            bl: benchmark_specs(families, bool(grid), L, bl, taus, betas_, s) for s, bl in block_lengths.items()
        }
        work = sweep_work(specs_by_bl, n * len(levels), seeds, L)
        if work > MAX_WORK:
            raise ValueError(
                f"this benchmark asks for {work // L:,} decodes of {L} tokens ({work:,} token positions); "
                f"the limit is {MAX_WORK:,}: pick fewer problems, seeds, strategies or τ_π/β values, "
                "or run the sweep with python -m dllm_viz.eval"
            )
        problems = [p for level in levels for p in test_set(int(level), n, DEFAULT_FREE)]
    progress(0, desc="loading model")
    yield (gr.skip(),) * 4  # before the job starts: from here on a cancel closes this generator
    done: list[Any] = [0, 1, "loading model"]  # batches done, batches, what runs now

    def report(*state: Any) -> None:  # called in the worker; read here between polls
        done[:] = state

    # On ZeroGPU the sweep runs in a forked worker: neither a callback nor an event can cross over.
    zero = runtime.on_zero_gpu()
    job = BackgroundJob(
        lambda cancel: _sweep(
            model,
            problems,
            specs_by_bl,
            L,
            list(range(seeds)),
            progress=None if zero else report,
            cancel=None if zero else cancel,
        ),
        owner="a benchmark",
    )
    try:
        while not job.wait(POLL_S):
            progress(done[0] / done[1], desc=f"{done[0]}/{done[1]} {done[2]}")
            yield (gr.skip(),) * 4
        with user_errors("Cannot run the benchmark"):
            rows = job.result()
            summary = summarize(rows)
            csv_path = _runs_csv(rows)
    finally:
        job.cancel()
    title = f"{len(problems)} held-out problems, L = {L}, {seeds} seed(s)"
    fig = pareto_figure(summary, title=title)
    fig.update_xaxes(type="log" if log_nfe else "linear")
    fig.update_layout(width=None, autosize=True)  # fill the tab's width
    yield fig, summary_table(summary), markdown_table(summary), gr.File(value=str(csv_path), visible=True)


def build_benchmark_tab() -> None:
    gr.Markdown(
        "Run strategies on held-out word problems (answers checked automatically) and compare "
        "accuracy against NFE. ★ marks the Pareto front of each setting, over all its strategies. "
        "Each learned policy runs in the setting it was trained for."
    )
    with gr.Row():
        with gr.Column(scale=2):
            choices = family_choices()
            first = list(SETTINGS)[0]
            fitting = [StrategySpec(POLICY, policy=p).key for p in runtime.shipped_policies() if policy_fits(p, first)]
            preferred = StrategySpec(POLICY, policy=picker.DEFAULT_POLICY).key
            heuristics = [StrategySpec(name).key for name in ("threshold", "confidence")]
            default = ([preferred] if preferred in fitting else fitting[:1]) + heuristics
            families = gr.CheckboxGroup(choices, value=default, label="Strategies", elem_id="bench-strategies")
            grid = gr.Checkbox(False, label="sweep each heuristic's parameter grid (slower)", elem_id="bench-grid")
            with gr.Row():
                own = "empty: each policy's own, chosen on validation"
                temperatures = gr.Textbox(
                    "", label="policy τ_π values", placeholder=own, info=TAU_INFO, elem_id="bench-tau"
                )
                betas = gr.Textbox("", label="policy β values", placeholder=own, info=BETA_INFO, elem_id="bench-beta")
        with gr.Column(scale=2):
            model = model_picker("bench-model")
            settings = gr.CheckboxGroup(
                list(SETTINGS), value=list(SETTINGS)[:1], label="Settings", elem_id="bench-settings"
            )
            with gr.Row():
                levels = gr.CheckboxGroup([1, 2, 3], value=[1, 2], label="levels (operations)", elem_id="bench-levels")
                n = gr.Number(
                    10, precision=0, label="problems per level", minimum=1, maximum=MAX_PROBLEMS, elem_id="bench-n"
                )
            with gr.Row():
                gen_length = gr.Number(64, precision=0, label="gen length L", elem_id="bench-gen-length")
                seeds = gr.Number(1, precision=0, label="seeds", minimum=1, maximum=5, elem_id="bench-seeds")
                log_nfe = gr.Checkbox(False, label="log NFE axis", info=NFE_INFO, elem_id="bench-log")
    run = gr.Button("Run benchmark", variant="primary", elem_id="bench-run")
    plot = gr.Plot(label="Accuracy vs NFE", elem_id="bench-plot")
    table = gr.Dataframe(
        headers=TABLE_HEADERS,
        label="Summary (mean over seeds)",
        elem_id="bench-table",
        interactive=False,
        wrap=True,  # widths that fit 1024 px without cutting columns off
        column_widths=["11%", "14%", "19%", "5%", "5%", "6%", "9%", "6%", "7%", "7%", "6%", "5%"],
    )
    # the same table as text, for API clients only
    md = gr.Markdown(label="Summary (markdown)", elem_id="bench-md", visible=False)
    csv_file = gr.File(label="All runs (CSV)", visible=False, elem_id="bench-csv")
    run.click(
        run_benchmark,
        [model, families, grid, settings, levels, n, gen_length, seeds, temperatures, betas, log_nfe],
        [plot, table, md, csv_file],
        api_name="benchmark",
        preprocess=False,  # run_benchmark checks every value itself (Gradio's checks echo them unescaped)
        concurrency_limit=runtime.MODEL_CONCURRENCY,
        concurrency_id="model",
        show_progress_on=[plot],
    )  # one progress bar, not one per output
