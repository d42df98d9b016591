"""The Benchmark tab: accuracy vs NFE of chosen strategies on held-out problems.

It reuses :mod:`dllm_viz.eval` (the same sweep, summary, Pareto plot and table as the CLI
``python -m dllm_viz.eval``), so the numbers here and in the reports agree.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr

from ..eval import StrategySpec, heuristic_grid, markdown_table, pareto_figure, policy_grid, summarize, sweep
from ..eval.report import write_csv
from ..strategies import HEURISTICS
from . import runtime
from .budget import BackgroundJob, CancellableBackend
from .errors import user_errors
from .settings import MAX_GEN_LENGTH, _float, _int

MAX_PROBLEMS = 200  # per level; the CLI handles bigger sweeps
POLL_S = 0.25  # the handler yields this often while the sweep runs, so a cancel lands quickly
SETTINGS = {"semi-AR (BL = L/8)": 8, "full diffusion (BL = L)": 1}  # value: number of blocks
TABLE_COLUMNS = ["setting", "strategy", "params", "seeds", "n", "accuracy", "accuracy_std", "mean_nfe",
                 "tokens_per_step", "no_answer"]


def family_choices() -> list[tuple[str, str]]:
    """Strategy families: shipped policies, then the heuristics."""
    choices = []
    if runtime.learned_strategy_available():
        choices += [(f"learned policy: {name}", f"policy:{name}") for name in runtime.shipped_policies()]
    choices += [(runtime.HEURISTIC_LABELS.get(n, n), f"heuristic:{n}") for n in runtime.HEURISTIC_LABELS if n in HEURISTICS]
    return choices


def _floats(name: str, text: str) -> list[float]:
    if not isinstance(text, str) or len(text) > 200:
        raise ValueError(f"{name} must be a short text of numbers separated by commas")
    values = [_float(name, v, 0.01, 100.0) for v in text.replace(",", " ").split()[:20]]
    if not values:
        raise ValueError(f"{name} is empty")
    return values


def benchmark_specs(families: list[str], grid: bool, gen_length: int, block_length: int, temperatures: list[float],
                    betas: list[float]) -> list[StrategySpec]:
    """Strategy specs for one setting: each heuristic at its defaults (or its sweep grid), and each
    selected policy at every (τ_π, β)."""
    specs = []
    policies = runtime.shipped_policies()
    for family in families:
        kind, _, name = family.partition(":")
        if kind == "heuristic":
            if grid:
                specs += [s for s in heuristic_grid(gen_length, block_length) if s.name == name]
            else:
                specs.append(StrategySpec(name, {}))
        elif kind == "policy":
            if name not in policies:
                raise ValueError(f"no shipped policy named {name!r}")
            specs += policy_grid(str(policies[name]), family, temperatures, betas)
        else:
            raise ValueError(f"unknown strategy family {family!r}")
    return specs


@runtime.gpu_task(300)  # ZeroGPU's cap for one call; bigger sweeps belong to the CLI
def _sweep(model: str, problems, specs_by_bl: dict, gen_length: int, seeds: list[int], progress=None,
           cancel=None) -> list[dict]:
    backend = runtime.get_backend(model)
    if cancel is not None:
        backend = CancellableBackend(backend, cancel)
    return sweep(backend, problems, [], list(specs_by_bl), gen_length, seeds, batch_size=50,
                 specs_for=lambda bl: specs_by_bl[bl], progress=progress)


def run_benchmark(model, families, grid, settings, levels, n, gen_length, seeds, temperatures, betas,
                  progress=gr.Progress()):
    """Run the sweep; yield (Pareto figure, summary table, markdown table, CSV file) at the end.

    A generator: the sweep runs in a :class:`~.budget.BackgroundJob` and this handler yields
    (skips) every ``POLL_S`` while it runs, so a cancel reaches it and stops the sweep.
    """
    from ..tasks import DEFAULT_FREE, test_set

    with user_errors("Cannot run the benchmark"):
        if not families:
            raise ValueError("pick at least one strategy")
        if not settings:
            raise ValueError("pick at least one setting (semi-AR or full diffusion)")
        if not levels:
            raise ValueError("pick at least one problem level")
        n = _int("problems per level", n, 1, MAX_PROBLEMS)
        L, seeds = _int("gen length", gen_length, 1, MAX_GEN_LENGTH), _int("seeds", seeds, 1, 5)
        if L < 8 or L % 8:
            raise ValueError(f"gen length ({L}) must be a multiple of 8 (semi-AR uses BL = L/8)")
        taus, betas_ = _floats("τ_π values", temperatures), _floats("β values", betas)
        model = runtime.check_model_runnable(model or runtime.default_model())
        specs_by_bl = {L // SETTINGS[s]: benchmark_specs(families, bool(grid), L, L // SETTINGS[s], taus, betas_)
                       for s in settings}
        problems = [p for level in levels for p in test_set(int(level), n, DEFAULT_FREE)]
    progress(0, desc="loading model")
    done = [0, 1, "loading model"]

    def report(*state) -> None:  # called in the worker; read here between polls
        done[:] = state

    # On ZeroGPU the sweep runs in a forked worker: neither a callback nor an event can cross over.
    zero = runtime.on_zero_gpu()
    job = BackgroundJob(lambda cancel: _sweep(model, problems, specs_by_bl, L, list(range(seeds)),
                                              progress=None if zero else report, cancel=None if zero else cancel))
    try:
        while not job.wait(POLL_S):
            progress(done[0] / done[1], desc=f"{done[0]}/{done[1]} {done[2]}")
            yield (gr.skip(),) * 4
        with user_errors("Cannot run the benchmark"):
            rows = job.result()
            summary = summarize(rows)
            folder = Path(tempfile.mkdtemp(prefix="bench-"))
            csv_path = write_csv(rows, folder / "benchmark-runs.csv")
    finally:
        job.cancel()
    title = f"{len(problems)} held-out problems, L = {L}, {seeds} seed(s)"
    table = [[round(r[c], 2) if isinstance(r[c], float) else r[c] for c in TABLE_COLUMNS] for r in summary]
    yield pareto_figure(summary, title=title), table, markdown_table(summary), gr.File(value=str(csv_path), visible=True)


def build_benchmark_tab() -> None:
    gr.Markdown("Run strategies on held-out word problems (answers checked automatically) and compare "
                "accuracy against NFE. ★ in the table marks each strategy's Pareto front.")
    with gr.Row():
        with gr.Column(scale=2):
            choices = family_choices()
            default = [v for _, v in choices if v.startswith("policy:")][:1] + ["heuristic:threshold", "heuristic:confidence"]
            families = gr.CheckboxGroup(choices, value=default, label="Strategies", elem_id="bench-strategies")
            grid = gr.Checkbox(False, label="sweep each heuristic's parameter grid (slower)", elem_id="bench-grid")
            with gr.Row():
                temperatures = gr.Textbox("1.0", label="policy τ_π values", elem_id="bench-tau")
                betas = gr.Textbox("1.0", label="policy β values", elem_id="bench-beta")
        with gr.Column(scale=2):
            model = gr.Dropdown(runtime.model_choices(), value=runtime.default_model(), label="Model",
                                allow_custom_value=True, elem_id="bench-model")
            settings = gr.CheckboxGroup(list(SETTINGS), value=list(SETTINGS)[:1], label="Settings", elem_id="bench-settings")
            with gr.Row():
                levels = gr.CheckboxGroup([1, 2, 3], value=[1, 2], label="levels (operations)", elem_id="bench-levels")
                n = gr.Number(10, precision=0, label="problems per level", minimum=1, maximum=MAX_PROBLEMS, elem_id="bench-n")
            with gr.Row():
                gen_length = gr.Number(64, precision=0, label="gen length L", elem_id="bench-gen-length")
                seeds = gr.Number(1, precision=0, label="seeds", minimum=1, maximum=5, elem_id="bench-seeds")
    run = gr.Button("Run benchmark", variant="primary", elem_id="bench-run")
    plot = gr.Plot(label="Accuracy vs NFE", elem_id="bench-plot")
    table = gr.Dataframe(headers=TABLE_COLUMNS, label="Summary (mean over seeds)", elem_id="bench-table",
                         interactive=False)
    md = gr.Markdown(elem_id="bench-md")
    csv_file = gr.File(label="All runs (CSV)", visible=False, elem_id="bench-csv")
    run.click(run_benchmark, [model, families, grid, settings, levels, n, gen_length, seeds, temperatures, betas],
              [plot, table, md, csv_file], api_name="benchmark", concurrency_limit=runtime.MODEL_CONCURRENCY,
              concurrency_id="model")
