"""The Benchmark tab: accuracy vs NFE of chosen strategies on held-out problems.

It reuses :mod:`dllm_viz.eval` (the same sweep, summary, Pareto plot and table as the CLI
``python -m dllm_viz.eval``), so the numbers here and in the reports agree; what a sweep will run
and cost is :mod:`.sweep_plan`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from ..backends import DLLM
from ..eval import (
    markdown_table,
    pareto_figure,
    pareto_front,
    summarize,
    sweep,
)
from ..eval.report import display_name, write_csv
from ..eval.sweep import panels, subset_of
from ..strategies import POLICY, StrategySpec
from ..views.glossary import BETA_INFO, NFE_INFO, TAU_INFO
from . import picker, runtime, zerogpu
from .budget import BackgroundJob, CancellableBackend, Signal
from .errors import user_errors
from .files import content_folder, digest_of
from .pane import model_picker
from .settings import flag, runnable_model
from .sweep_plan import (
    MAX_PROBLEMS,
    SETTINGS,
    SPEED,
    SweepPlan,
    family_choices,
    plan_sweep,
    policy_fits,
    sweep_cost,
    sweep_work,
    time_left,
)

if TYPE_CHECKING:
    from ..tasks import Problem

POLL_S = 0.25  # the handler yields this often while the sweep runs, so a cancel lands quickly
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


def _start_sweep(model: str, plan: SweepPlan) -> tuple[BackgroundJob, list[Any]]:
    """The sweep as a :class:`~.budget.BackgroundJob`, and its progress: [runs done, runs, what runs now].

    The worker writes the progress; the handler reads it between polls. On ZeroGPU the sweep runs
    in a forked worker: neither a callback nor an event can cross over, so it gets neither.
    """
    done: list[Any] = [0, 1, "loading model"]

    def report(*state: Any) -> None:  # called in the worker
        done[:] = state

    zero = runtime.on_zero_gpu()
    job = BackgroundJob(
        lambda cancel: _sweep(
            model,
            plan.problems,
            plan.specs_by_bl,
            plan.gen_length,
            list(range(plan.seeds)),
            progress=None if zero else report,
            cancel=None if zero else cancel,
        ),
        owner="a benchmark",
    )
    return job, done


def _while_running(job: BackgroundJob, done: list[Any], progress: gr.Progress, started: float) -> Iterator[tuple]:
    """Skip (yield) every ``POLL_S`` until the job ends, showing its progress: a cancel lands between polls."""
    while not job.wait(POLL_S):
        progress(done[0] / done[1], desc=f"{done[0]}/{done[1]} {done[2]}{time_left(done[0], done[1], started)}")
        yield (gr.skip(),) * 4


def _pareto_plot(summary: list[dict], plan: SweepPlan, log_nfe: bool) -> Any:
    """The accuracy-vs-NFE figure, as wide as the tab."""
    title = f"{len(plan.problems)} held-out problems, L = {plan.gen_length}, {plan.seeds} seed(s)"
    fig = pareto_figure(summary, title=title)
    fig.update_xaxes(type="log" if log_nfe else "linear")
    fig.update_layout(width=None, autosize=True)  # fill the tab's width
    return fig


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
    with user_errors("Cannot run the benchmark"):
        plan = plan_sweep(families, grid, settings, levels, n, gen_length, seeds, temperatures, betas)
        log_axis = flag("log NFE", log_nfe)
        picked, model = str(model), runnable_model(model)
    progress(0, desc="loading model")
    yield (gr.skip(),) * 4  # before the job starts: from here on a cancel closes this generator
    job, done = _start_sweep(model, plan)
    started = time.monotonic()
    try:
        yield from _while_running(job, done, progress, started)
        with user_errors("Cannot run the benchmark"):
            rows = job.result()
            SPEED.record(picked, plan.work / (time.monotonic() - started))
            summary = summarize(rows)
            csv_path = _runs_csv(rows)
    finally:
        job.cancel()
    fig = _pareto_plot(summary, plan, log_axis)
    yield fig, summary_table(summary), markdown_table(summary), gr.File(value=str(csv_path), visible=True)


def _default_families() -> list[str]:
    """The default policy (or the first that fits the first setting) and two heuristics."""
    first = list(SETTINGS)[0]
    fitting = [StrategySpec(POLICY, policy=p).key for p in runtime.shipped_policies() if policy_fits(p, first)]
    preferred = StrategySpec(POLICY, policy=picker.DEFAULT_POLICY).key
    heuristics = [StrategySpec(name).key for name in ("threshold", "confidence")]
    return ([preferred] if preferred in fitting else fitting[:1]) + heuristics


def _results() -> tuple:
    """The plot, the summary table, the same table as markdown (API clients only) and the CSV."""
    plot = gr.Plot(label="Accuracy vs NFE", elem_id="bench-plot")
    table = gr.Dataframe(
        headers=TABLE_HEADERS,
        label="Summary (mean over seeds)",
        elem_id="bench-table",
        interactive=False,
        wrap=True,  # widths that fit 1024 px without cutting columns off
        column_widths=["11%", "14%", "19%", "5%", "5%", "6%", "9%", "6%", "7%", "7%", "6%", "5%"],
    )
    md = gr.Markdown(label="Summary (markdown)", elem_id="bench-md", visible=False)
    csv_file = gr.File(label="All runs (CSV)", visible=False, elem_id="bench-csv")
    return plot, table, md, csv_file


def build_benchmark_tab() -> None:
    gr.Markdown(
        "Run strategies on held-out word problems (answers checked automatically) and compare "
        "accuracy against NFE. ★ marks the Pareto front of each setting, over all its strategies. "
        "Each learned policy runs in the setting it was trained for."
    )
    with gr.Row():
        with gr.Column(scale=2):
            families = gr.CheckboxGroup(
                family_choices(), value=_default_families(), label="Strategies", elem_id="bench-strategies"
            )
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
    controls = [model, families, grid, settings, levels, n, gen_length, seeds, temperatures, betas]
    cost = gr.Markdown(sweep_cost(*(c.value for c in controls)), elem_id="bench-cost")
    plot, table, md, csv_file = _results()
    run_event = run.click(
        run_benchmark,
        [*controls, log_nfe],
        [plot, table, md, csv_file],
        api_name="benchmark",
        preprocess=False,  # run_benchmark checks every value itself (Gradio's checks echo them unescaped)
        concurrency_limit=runtime.MODEL_CONCURRENCY,
        concurrency_id="model",
        show_progress_on=[plot],
    )  # one progress bar, not one per output
    # the cost line: on every change, and after a run (now at that run's pace); our own checks, as above
    quiet = dict(preprocess=False, queue=False, show_progress="hidden", api_visibility="private")
    run_event.then(sweep_cost, controls, cost, **quiet)
    changes = [c.change for c in (model, families, grid, settings, levels, n, gen_length, seeds, temperatures, betas)]
    gr.on(changes, sweep_cost, controls, cost, **quiet)
