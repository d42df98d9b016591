"""The Compare tab: two strategies decode the same prompt in lockstep, streamed live, with replay
and export. Functions first (rendering, handlers; UI values → engine settings live in
:mod:`.settings`), then layout and wiring in :func:`build_compare_tab`.
"""

from __future__ import annotations

import inspect
import json
import threading
import time
from dataclasses import dataclass, field

import gradio as gr

from ..engine import EngineConfig
from ..strategies import Param, StrategySpec
from ..views import curves_figure, divergence_detail, heatmap_figure, legend_html, render_grid, stats_html
from . import runtime
from .budget import compute_slot
from .errors import shown, user_errors
from .examples import example_problems, known_answer
from .files import export_comparison
from .lockstep import collect
from .session import Comparison, load_comparison, new_run_id
from .settings import (  # noqa: F401  (engine_config, PANE_FIELDS: part of this tab's API)
    CONTROLS,
    PANE_FIELDS,
    PaneInputs,
    api_params,
    api_spec,
    control_name,
    engine_config,
    pane_spec,
    prepare_uploaded_policy,
    prompt_text,
    text,
)
from .stories import Story, default_story, stories

# A live run is pulled, not pushed: the browser asks for the latest frame every LIVE_TICK_S and
# never while its previous request is pending (gr.Timer, trigger_mode="once"), so a slow browser
# skips stale steps instead of queueing them (issue 10, item 9). The run's own stream only carries
# the status line.
LIVE_TICK_S = 0.1
STATUS_INTERVAL_S = 0.5
# gr.Plot rebuilds its whole div on every value: at L = 256 the two heatmaps took 0.5–1.5 s of
# browser main thread on 2 shared cores, holding grid frames back. Live frames therefore redraw the
# heatmaps every PLOT_INTERVAL_S only up to LIVE_PLOT_MAX_L; the curves, and longer runs' heatmaps,
# are drawn when the run ends or stops and on every replayed step.
PLOT_INTERVAL_S = 1.5
LIVE_PLOT_MAX_L = 64
LIVE_SPEEDS = {"slow motion (2 steps/s)": 2.0, "5 steps/s": 5.0, "full speed": 0.0}  # label → steps/s (0 = no pause)
DEFAULT_SPEED = next(iter(LIVE_SPEEDS))  # a class can follow each step; researchers pick full speed


@dataclass
class LiveControl:
    """Flags that other events set while a run streams: ``follow`` (live frames move the slider
    and panes; off once the user scrubs) and ``stop`` (end the run after the current step; an
    Event so a slow-motion pause ends at once)."""

    follow: bool = True
    stop: threading.Event = field(default_factory=threading.Event)
    last_plot: float = 0.0
    shown: int = -1  # the step the last live frame showed (an unchanged step is not sent again)


_LIVE: dict[str, LiveControl] = {}  # run id → its controls, while the run streams


SESSION_TTL_S = 1800  # a session's comparison (up to a 32 MB upload) is dropped after 30 idle minutes
HEARTBEAT_S = 0.25  # /compare_trace yields at least this often, so a cancel lands within one beat


# ---- rendering ----------------------------------------------------------------------------------


def render_panes(comp: Comparison | None, k: int) -> tuple[str, str, str, str]:
    """Grid and stats HTML of both panes after ``k`` steps."""
    if comp is None:
        return (
            render_grid(None, 0, pane="a"),
            render_grid(None, 0, pane="b"),
            stats_html(None, 0),
            stats_html(None, 0, pane="b"),
        )
    render_ms = comp.render_ms if comp.source == "run" else None
    d = divergence_detail(comp.a, comp.b)
    return (
        render_grid(comp.a, k, pane="a", title=comp.labels[0]),
        render_grid(comp.b, k, pane="b", title=comp.labels[1]),
        stats_html(comp.a, k, pane="a", render_ms=render_ms, verdict=comp.verdict(comp.a), divergence=d),
        stats_html(comp.b, k, pane="b", render_ms=render_ms, verdict=comp.verdict(comp.b), divergence=d),
    )


def render_plots(comp: Comparison | None, k: int) -> tuple:
    """Heatmaps of A and B and the curves, up to step ``k``."""
    if comp is None:
        return heatmap_figure(None, title="A"), heatmap_figure(None, title="B"), curves_figure({})
    d = comp.divergence
    return (  # each pane on its own step axis: a 9-step pane is not squashed beside a 64-step one
        heatmap_figure(comp.a, k, divergence=d, title=comp.labels[0]),
        heatmap_figure(comp.b, k, divergence=d, title=comp.labels[1]),
        curves_figure({"A": comp.a, "B": comp.b}, k, divergence=d),
    )


def status_line(comp: Comparison, k: int | None = None) -> str:
    parts = []
    for name, t in (("A", comp.a), ("B", comp.b)):
        if t is not None:
            parts.append(f"{name} {t.num_steps} steps, NFE {t.nfe}")
    if comp.divergence:
        parts.append(f"diverge at step {comp.divergence}{consequence(comp)}")
    if comp.source == "upload":
        return f"loaded trace · {' · '.join(parts)} #{comp.run_id}"
    if comp.stopped:
        return f"stopped at step {comp.num_steps} · {' · '.join(parts)} #{comp.run_id}"
    if comp.finished:
        model_ms = sum(s.model_ms for t in (comp.a, comp.b) if t for s in t.steps)
        parts.append(f"model {model_ms:.0f} ms, render {comp.render_ms:.0f} ms")
        return f"done · {' · '.join(parts)} #{comp.run_id}"
    return f"running step {k if k is not None else comp.num_steps} · {' · '.join(parts)} #{comp.run_id}"


def consequence(comp: Comparison) -> str:
    """What the divergence led to once both panes finished: " → A ✓ NFE 9 · B ✗ NFE 8" (✓/✗ only
    when the prompt's answer is known)."""
    if not comp.finished or comp.a is None or comp.b is None:
        return ""
    parts = []
    for name, trace in (("A", comp.a), ("B", comp.b)):
        verdict = comp.verdict(trace)
        mark = "" if verdict is None or verdict.correct is None else ("✓ " if verdict.correct else "✗ ")
        parts.append(f"{name} {mark}NFE {trace.nfe}")
    return " → " + " · ".join(parts)


def _slider(n: int, value: int | None = None):
    # minimum 0 (the masked canvas) keeps maximum ≥ 1 valid for every update
    return gr.Slider(minimum=0, maximum=max(n, 1), value=value) if value is not None else gr.Slider(maximum=max(n, 1))


# ---- handlers -----------------------------------------------------------------------------------


def run_compare(model, prompt, gen_length, block_length, full_diffusion, temperature, seed, *panes_and_speed):
    """Run a lockstep comparison (generator; the Run button and the ``/compare`` endpoint).

    After the settings come pane A's controls, pane B's (each in :data:`PANE_FIELDS` order) and
    the live speed (a :data:`LIVE_SPEEDS` label; optional), which paces the steps for a class to follow.
    Yields (grid A, grid B, stats A, stats B, heatmap A, heatmap B, curves, status, slider,
    follow-live, session state, JSON download, GIF download, live timer): first a "loading"
    frame that starts the live timer (the panes then come from :func:`live_frame`), status
    lines every ``STATUS_INTERVAL_S``, and the full final frame, which stops the timer.
    """
    n = len(PANE_FIELDS)
    speed = panes_and_speed[2 * n] if len(panes_and_speed) > 2 * n else DEFAULT_SPEED
    model = model or runtime.default_model()
    try:
        with user_errors("Cannot start the comparison"):
            prompt = prompt_text(prompt)
            config = engine_config(gen_length, block_length, full_diffusion, temperature, seed)
            if len(panes_and_speed) not in (2 * n, 2 * n + 1):
                raise TypeError(f"expected two panes of {n} values ({', '.join(PANE_FIELDS)}) and the speed")
            specs = tuple(pane_spec(PaneInputs.of(panes_and_speed[i * n : (i + 1) * n]), p) for i, p in enumerate("AB"))
            speed = text("live speed", DEFAULT_SPEED if speed is None else speed, 40)
            if speed not in LIVE_SPEEDS:
                raise ValueError(f"live speed {shown(speed)} must be one of {', '.join(LIVE_SPEEDS)}")
            model = runtime.check_model_runnable(model)
    except gr.Error as err:
        yield _failed(err)
        raise
    comp = _new_comparison(prompt, specs)
    _LIVE[comp.run_id] = LiveControl()
    skip = gr.skip()
    off = gr.DownloadButton(interactive=False)
    yield (skip,) * 7 + (
        f"loading model and strategies… #{comp.run_id}",
        skip,
        gr.Checkbox(value=True),
        comp,
        off,
        off,
        gr.Timer(LIVE_TICK_S, active=True),
    )
    try:
        with user_errors("The comparison failed"):
            yield from _stream(comp, model, prompt, specs, config, LIVE_SPEEDS[speed])
    except gr.Error as err:
        yield _failed(err, comp)
        raise
    finally:
        _LIVE.pop(comp.run_id, None)


def _compare_signature() -> inspect.Signature:
    """``/compare``'s argument names for gradio_client, as before the controls came from the registry:
    the settings, each pane's controls (``strategy_a``, ``steps_a``, …, ``tau_a``, ``policy_files_a``) and ``speed``."""
    settings = list(inspect.signature(run_compare).parameters.values())[:-1]
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    panes = [inspect.Parameter(f"{f}_{pane}", kind) for pane in "ab" for f in PANE_FIELDS]
    return inspect.Signature([*settings, *panes, inspect.Parameter("speed", kind, default=DEFAULT_SPEED)])


run_compare.__signature__ = _compare_signature()  # type: ignore[attr-defined]  # read by Gradio's API info


def _new_comparison(prompt: str, specs) -> Comparison:
    """An empty comparison of the two panes' strategies on ``prompt`` (traces arrive as it runs)."""
    labels = (f"A · {runtime.pane_title(specs[0])}", f"B · {runtime.pane_title(specs[1])}")
    return Comparison(new_run_id(), None, None, labels=labels, expected=known_answer(prompt))


def model_picker(elem_id: str, **kwargs) -> gr.Dropdown:
    """The model dropdown every tab starts with: the installed and GPU models, a typed folder or id allowed."""
    return gr.Dropdown(
        runtime.model_choices(),
        value=runtime.default_model(),
        label="Model",
        allow_custom_value=True,
        elem_id=elem_id,
        **kwargs,
    )


def _failed(err: gr.Error, comp: Comparison | None = None) -> tuple:
    """A frame that only puts the error in the status line (the toast shows it too)."""
    skip = gr.skip()
    where = f" #{comp.run_id}" if comp else ""
    return (skip,) * 7 + (f"error: {err.message}{where}",) + (skip,) * 5 + (gr.Timer(active=False),)


def _stream(comp: Comparison, model: str, prompt: str, specs, config: EngineConfig, steps_per_s: float):
    """Status frames of a running comparison, then its full final frame.

    With ``steps_per_s`` > 0 each step is held until 1/steps_per_s after the previous one
    (slow motion); Stop ends the pause at once.
    """
    control = _LIVE.get(comp.run_id, LiveControl())
    pause = 1.0 / steps_per_s if steps_per_s > 0 else 0.0
    last_status = last_step = 0.0
    skip = gr.skip()
    for _ in collect(comp, model, prompt, specs, config):
        if pause:
            control.stop.wait(max(0.0, last_step + pause - time.monotonic()))
            last_step = time.monotonic()
        if control.stop.is_set():
            comp.stopped = True
            break
        if time.monotonic() - last_status >= STATUS_INTERVAL_S:
            last_status = time.monotonic()
            yield (skip,) * 7 + (status_line(comp),) + (skip,) * 6
    panes, slider = _view(comp, plots=True, following=True)
    yield (*panes, status_line(comp), slider, gr.skip(), comp, gr.skip(), gr.skip(), gr.Timer(active=False))


def _view(comp: Comparison, plots: bool, following: bool) -> tuple[tuple, object]:
    """(grids, stats and plots, slider) of the latest step; skips where the user has scrubbed away.
    Live frames (``comp`` still running) leave the curves for the final frame."""
    t0 = time.perf_counter()
    n = comp.num_steps
    panes = render_panes(comp, n) if following else (gr.skip(),) * 4
    figs = render_plots(comp, n) if plots and following else (gr.skip(),) * 3
    if plots and following and not (comp.finished or comp.stopped):
        figs = (*figs[:2], gr.skip())
    comp.render_ms += (time.perf_counter() - t0) * 1e3
    if comp.finished and following:  # re-render stats so they include the final render time
        panes = render_panes(comp, n)
    return (*panes, *figs), _slider(n, n) if following else _slider(n)


def live_frame(comp: Comparison | None):
    """The latest step of a live run, pulled by the live timer (grids every tick, plots every
    ``PLOT_INTERVAL_S``); nothing once the run has ended (its final frame is already sent)."""
    control = _LIVE.get(comp.run_id) if comp is not None else None
    if control is None or control.stop.is_set() or (control.follow and comp.num_steps == control.shown):
        return (gr.skip(),) * 8
    control.shown = comp.num_steps if control.follow else -1
    now = time.monotonic()
    small = comp.a is not None and comp.a.gen_length <= LIVE_PLOT_MAX_L
    plots = small and now - control.last_plot >= PLOT_INTERVAL_S
    control.last_plot = now if plots else control.last_plot
    panes, slider = _view(comp, plots, control.follow)
    return (*panes, slider)


def export_files(comp: Comparison | None):
    """Write the comparison JSON and GIF; enable both download buttons (runs after a run ends)."""
    if comp is None or comp.a is None or not (comp.finished or comp.stopped) or not comp.num_steps:
        return gr.DownloadButton(interactive=False), gr.DownloadButton(interactive=False)
    with user_errors("Cannot export the run"), compute_slot("an export"):
        json_path, gif_path = export_comparison(comp)  # written once per content, in a bounded folder
    return (
        gr.DownloadButton(value=str(json_path), interactive=True),
        gr.DownloadButton(value=str(gif_path), interactive=True),
    )


def replay(k, comp: Comparison | None):
    """Show step ``k`` in both panes; scrubbing during a run stops the stream moving the slider."""
    if comp is None:
        return (*render_panes(None, 0), *render_plots(None, 0), gr.skip())
    if comp.run_id in _LIVE:
        _LIVE[comp.run_id].follow = False
        follow = gr.Checkbox(value=False)
    else:
        follow = gr.skip()
    k = int(k or 0)
    return (*render_panes(comp, k), *render_plots(comp, k), follow)


def set_follow(follow: bool, comp: Comparison | None):
    """Resume (or stop) following the live run with the slider."""
    if comp is not None and comp.run_id in _LIVE:
        _LIVE[comp.run_id].follow = bool(follow)


def stop_run(comp: Comparison | None):
    """Ask the streaming run to stop after its current step (it then shows where it stopped)."""
    if comp is not None and comp.run_id in _LIVE:
        _LIVE[comp.run_id].stop.set()


def toggle_play(playing: bool, k, comp: Comparison | None):
    """Play/pause: a gr.Timer advances the slider; playing from the end restarts at step 0."""
    if comp is None or comp.num_steps == 0:
        return gr.Timer(active=False), gr.Button(value="▶ Play"), False, gr.skip()
    playing = not playing
    start = gr.skip()
    if playing and int(k or 0) >= comp.num_steps:
        start = gr.Slider(value=0)
    return gr.Timer(active=playing), gr.Button(value="⏸ Pause" if playing else "▶ Play"), playing, start


def play_tick(k, comp: Comparison | None):
    """One playback step: next step in the panes (plots every 4th step and at the end)."""
    if comp is None:
        return (gr.skip(),) * 8 + (gr.Timer(active=False), gr.Button(value="▶ Play"), False)
    n = comp.num_steps
    k = min(int(k or 0) + 1, n)
    at_end = k >= n
    plots = render_plots(comp, k) if at_end or k % 4 == 0 else (gr.skip(),) * 3
    stop = (gr.Timer(active=False), gr.Button(value="▶ Play"), False) if at_end else (gr.skip(),) * 3
    return (*render_panes(comp, k), *plots, gr.Slider(value=k), *stop)


def set_speed(fps: float):
    return gr.Timer(value=1.0 / max(float(fps or 1), 0.5))


def load_trace(path: str | None):
    """Replay an uploaded comparison or trace file without any model (generator: on a bad file the
    status line says why, besides the toast). Yields (panes…, status, slider, session, JSON, GIF)."""
    skip = gr.skip()
    if not path:
        yield (skip,) * 12
        return
    try:
        with user_errors("Cannot load this trace file"):
            comp = load_comparison(path)
            n = comp.num_steps
            frame = (*render_panes(comp, n), *render_plots(comp, n), status_line(comp), _slider(n, n), comp)
    except gr.Error as err:
        yield (skip,) * 7 + (f"error: {err.message}",) + (skip,) * 4
        raise
    yield (*frame, *export_files(comp))


def check_policy_upload(files, pane: str):
    """Validate an uploaded policy as soon as it arrives (a clear message instead of a failed run)."""
    if files:
        with user_errors(f"Policy upload for pane {pane}"):
            prepare_uploaded_policy(files, pane)
        gr.Info(f"Pane {pane}: policy loaded and checked.")


def param_visibility(choice: str):
    """Show only the controls the chosen strategy uses (its parameters' controls, the policy file)."""
    return tuple(gr.update(visible=shown) for shown in _shown_params(choice))


def _shown_params(choice: str) -> tuple:
    """Per control of a pane (:data:`CONTROLS`, then the policy file): True when ``choice`` uses it,
    else "hidden" — mounted but not displayed. Components created with ``visible=False`` are never
    mounted in the browser, so a later ``visible=True`` update did not show them (issue 10, item 1)."""
    info = runtime.strategy_info(choice)
    used = {p.name for p in info.params} if info else set()
    flags = [p.name in used for p in CONTROLS] + [choice == runtime.UPLOADED]
    return tuple(True if u else "hidden" for u in flags)


def full_diffusion_toggle(full: bool, gen_length):
    """Full diffusion means BL = L: show L in the disabled box, not a stale BL (item 2)."""
    if full:
        return gr.Number(value=gen_length, interactive=False)
    return gr.Number(interactive=True)


def strategy_caption(choice: str) -> str:
    """One line saying what the pane's strategy does, for a class following along."""
    info = runtime.strategy_info(choice)
    return f"*{info.caption if info else ''}*"


def step_by(delta: int, k, comp: Comparison | None):
    """Step-through: show the previous/next step in both panes (buttons and the ← → keys)."""
    if comp is None or not comp.num_steps:
        return (gr.skip(),) * 9
    k = max(0, min(int(k or 0) + delta, comp.num_steps))
    return (*replay(k, comp), gr.Slider(value=k))


# ---- API endpoint for scripts ----------------------------------------------------------------


def compare_trace(
    prompt: str,
    strategy_a: str = "heuristic:confidence",
    strategy_b: str = "heuristic:threshold",
    params_a: dict | None = None,
    params_b: dict | None = None,
    gen_length: int = 64,
    block_length: int = 8,
    temperature: float = 0.0,
    seed: int = 0,
    model: str = "",
) -> dict:
    """Run a lockstep comparison to the end and yield it as a comparison dict (for gradio_client).

    A generator, so that a client's cancel stops the run: while it runs it yields a small
    progress dict ``{"format": "dllm-viz-progress", "steps": n}`` every ``HEARTBEAT_S``, and
    last the comparison (``client.predict`` returns only that).

    Strategies are ``"heuristic:<name>"`` or ``"policy:<shipped name>"``; params are the
    strategy's parameters (``{"threshold": 0.8}``, ``{"temperature": 0.5, "beta": 1.0}``).
    The result has the export format of :mod:`dllm_viz.ui.session`.
    """
    with user_errors("Cannot run the comparison"):
        model = runtime.check_model_runnable(model or runtime.default_model())
        prompt = prompt_text(prompt)
        config = engine_config(gen_length, block_length, False, temperature, seed)
        specs = [
            api_spec(f"strategy {pane}", choice, api_params(pane, params))
            for pane, choice, params in (("A", strategy_a, params_a), ("B", strategy_b, params_b))
        ]
        comp = _new_comparison(prompt, specs)
        yield {"format": "dllm-viz-progress", "steps": 0}  # before the slot: from here on a cancel closes us
        last = time.monotonic()
        for _ in collect(comp, model, prompt, tuple(specs), config):
            if time.monotonic() - last >= HEARTBEAT_S:
                last = time.monotonic()
                yield {"format": "dllm-viz-progress", "steps": comp.num_steps}
    yield comp.to_dict()


# ---- layout and wiring -----------------------------------------------------------------------


def _control_value(param: Param, spec: StrategySpec):
    value = spec.params.get(param.name, param.default)
    return 0 if value is None and param.optional else value  # an optional number box shows 0 for None


def pane_values(spec: StrategySpec) -> tuple:
    """(strategy, *controls) values showing ``spec``; controls it does not use show their defaults."""
    return (runtime.choice_of(spec), *(_control_value(p, spec) for p in CONTROLS))


def apply_story(index: int):
    """Load curated story ``index`` into the settings, both panes and the caption."""
    story = stories()[index]
    return (
        story.prompt,
        story.gen_length,
        story.effective_block_length,
        story.full_diffusion,
        story.seed,
        *pane_values(story.a),
        *pane_values(story.b),
        story_caption(story),
    )


def story_caption(story: Story | None) -> str:
    return f"**{story.title}.** {story.caption}" if story else ""


def _control(param: Param, value, elem_id: str, visible):
    """A parameter's control: a slider over [low, high] when both are set, else a number box
    (an optional one takes 0 for "not set")."""
    label = f"{param.symbol} ({param.name})" if param.symbol else param.name
    info = f"{param.help}; 0 leaves it unset" if param.optional else param.help
    if param.low is not None and param.high is not None:
        step = 1 if param.type is int else 0.01
        return gr.Slider(
            param.low, param.high, value=value, step=step, label=label, info=info, visible=visible, elem_id=elem_id
        )
    return gr.Number(
        value,
        precision=0 if param.type is int else None,
        label=label,
        info=info,
        minimum=0 if param.optional else param.low,
        visible=visible,
        elem_id=elem_id,
    )


def pane_controls(pane: str, values: tuple) -> list:
    """The strategy picker, one control per :data:`CONTROLS` entry and the policy upload for one
    pane (:data:`PANE_FIELDS` order), showing ``values`` (see :func:`pane_values`)."""
    p = pane.lower()
    choice, *params = values
    show = _shown_params(choice)
    # allow_custom_value: Gradio's own "not in the list of choices" error echoes the value unescaped
    # into the toast; pane_spec refuses unknown strategies with an escaped message instead
    strategy = gr.Dropdown(
        runtime.strategy_choices(),
        value=choice,
        label=f"Strategy {pane}",
        elem_id=f"strategy-{p}",
        allow_custom_value=True,
    )
    caption = gr.Markdown(strategy_caption(choice), elem_id=f"caption-{p}", elem_classes="dv-caption")
    strategy.change(strategy_caption, strategy, caption, api_visibility="private", queue=False)
    with gr.Row():
        controls = [
            _control(param, value, f"{control_name(param)}-{p}", visible)
            for param, value, visible in zip(CONTROLS, params, show[:-1], strict=True)
        ]
    files = gr.File(
        file_count="multiple",
        file_types=[".safetensors", ".json"],
        label="policy model.safetensors (+ config.json)",
        visible=show[-1],
        elem_id=f"policy-{p}",
    )
    strategy.change(param_visibility, strategy, [*controls, files], api_visibility="private", queue=False)
    files.upload(lambda f: check_policy_upload(f, pane), files, None, api_visibility="private")
    return [strategy, *controls, files]


def _story_buttons(story_outputs: list) -> None:
    """One button per curated story: it loads the prompt, the settings and both panes."""
    if not stories():
        return
    gr.Markdown("Curated comparisons (where the two panes part ways):", elem_classes="dv-caption")
    with gr.Row(elem_id="stories"):
        for i, story in enumerate(stories()):
            gr.Button(story.title, size="sm", variant="secondary", elem_classes="dv-story").click(
                lambda i=i: apply_story(i), None, story_outputs, queue=False, api_visibility="private"
            )


def _example_buttons(prompt, caption) -> None:
    """One button per held-out problem that fills the prompt in the browser (and clears a story's
    caption). Plain buttons, not gr.Examples: its Dataset raced while loading and logged a
    TypeError per example on load."""
    problems = example_problems()
    if not problems:
        return
    gr.Markdown("Held-out problems (answers known): click one to use it", elem_classes="dv-caption")
    with gr.Column(elem_id="examples", variant="compact"):
        for problem in problems:
            gr.Button(problem.question, size="sm", variant="secondary", elem_classes="dv-example").click(
                None,
                None,
                [prompt, caption],
                js=f"() => [{json.dumps(problem.question)}, '']",
                api_visibility="private",
            )


def build_compare_tab() -> None:
    """Components and events of the Compare tab (call inside ``gr.Blocks`` / ``gr.Tab``)."""
    story = default_story()  # the app opens on the first curated comparison: press Run and they part ways
    default_a, default_b = (story.a, story.b) if story else runtime.default_strategies()
    session = gr.State(None, time_to_live=SESSION_TTL_S)
    playing = gr.State(False)
    with gr.Row():
        with gr.Column(scale=3):
            prompt = gr.Textbox(
                story.prompt if story else "",
                label="Prompt",
                lines=3,
                elem_id="prompt",
                placeholder="A question for the model, e.g. one of the examples below",
            )
            caption = gr.Markdown(story_caption(story), elem_id="story-caption")
            story_slot = gr.Column()
            _example_buttons(prompt, caption)
        with gr.Column(scale=2):
            model = model_picker("model", info="a folder or Hub id also works; Hub models load on demand (GPU)")
            with gr.Row():
                gen_length = gr.Number(
                    story.gen_length if story else 64,
                    precision=0,
                    label="gen length L",
                    minimum=1,
                    elem_id="gen-length",
                )
                block_length = gr.Number(
                    story.effective_block_length if story else 8,
                    precision=0,
                    label="block length BL",
                    minimum=1,
                    elem_id="block-length",
                    interactive=not (story and story.full_diffusion),
                )
            full = gr.Checkbox(
                bool(story and story.full_diffusion), label="full diffusion (BL = L)", elem_id="full-diffusion"
            )
            with gr.Row():
                temperature = gr.Slider(
                    0.0, 2.0, value=0.0, step=0.05, label="token temperature", elem_id="temperature"
                )
                seed = gr.Number(story.seed if story else 0, precision=0, label="seed", elem_id="seed")
    with gr.Row(equal_height=False):
        with gr.Column():
            pane_a = pane_controls("A", pane_values(default_a))
        with gr.Column():
            pane_b = pane_controls("B", pane_values(default_b))
    with story_slot:
        _story_buttons([prompt, gen_length, block_length, full, seed, *pane_a[:-1], *pane_b[:-1], caption])
    with gr.Row():
        run_btn = gr.Button("▶ Run both", variant="primary", elem_id="run-btn", scale=1)
        stop_btn = gr.Button("■ Stop", variant="stop", elem_id="stop-btn", scale=0, min_width=110)
        live_speed = gr.Radio(list(LIVE_SPEEDS), value=DEFAULT_SPEED, label="live speed", elem_id="live-speed", scale=2)
        status = gr.Textbox("idle", label="Status", interactive=False, elem_id="status", scale=4)
    live_timer = gr.Timer(LIVE_TICK_S, active=False)
    with gr.Row(equal_height=False):
        with gr.Column():
            grid_a = gr.HTML(render_grid(None, 0, pane="a"), elem_id="grid-a")
            stats_a = gr.HTML(stats_html(None, 0, pane="a"), elem_id="stats-a")
        with gr.Column():
            grid_b = gr.HTML(render_grid(None, 0, pane="b"), elem_id="grid-b")
            stats_b = gr.HTML(stats_html(None, 0, pane="b"), elem_id="stats-b")
    gr.HTML(legend_html(), elem_id="legend")
    with gr.Row(equal_height=True):
        slider = gr.Slider(
            0, 1, value=0, step=1, label="Replay: step (both panes)", elem_id="step-slider", buttons=[], scale=5
        )
        prev_btn = gr.Button("◀ step", elem_id="prev-step", scale=0, min_width=90)
        play_btn = gr.Button("▶ Play", elem_id="play-btn", scale=0, min_width=100)
        next_btn = gr.Button("step ▶", elem_id="next-step", scale=0, min_width=90)
        speed = gr.Slider(1, 10, value=4, step=1, label="speed (steps/s)", elem_id="speed", scale=1)
        follow = gr.Checkbox(True, label="follow live run", elem_id="follow", scale=1)
    timer = gr.Timer(0.25, active=False)
    with gr.Row():
        heat_a = gr.Plot(
            heatmap_figure(None, title="A"), label="A: step × position", show_label=False, elem_id="heat-a"
        )
        heat_b = gr.Plot(
            heatmap_figure(None, title="B"), label="B: step × position", show_label=False, elem_id="heat-b"
        )
    curves = gr.Plot(curves_figure({}), label="Per-step curves", show_label=False, elem_id="curves")
    with gr.Accordion("Export / import", open=True):
        with gr.Row():
            dl_json = gr.DownloadButton("⬇ Trace (JSON)", interactive=False, elem_id="dl-json")
            dl_gif = gr.DownloadButton("⬇ Animation (GIF)", interactive=False, elem_id="dl-gif")
            upload = gr.File(
                file_types=[".json"],
                type="filepath",
                label="Replay a trace file (no model needed)",
                elem_id="trace-upload",
            )

    panes = [grid_a, grid_b, stats_a, stats_b, heat_a, heat_b, curves]
    run_inputs = [model, prompt, gen_length, block_length, full, temperature, seed, *pane_a, *pane_b, live_speed]
    run_event = run_btn.click(
        run_compare,
        run_inputs,
        [*panes, status, slider, follow, session, dl_json, dl_gif, live_timer],
        api_name="compare",
        show_progress="hidden",
        concurrency_limit=runtime.MODEL_CONCURRENCY,
        concurrency_id="model",
    )
    run_event.success(
        export_files,
        session,
        [dl_json, dl_gif],
        api_name="export",
        show_progress="hidden",
        concurrency_limit=runtime.MODEL_CONCURRENCY,
        concurrency_id="model",
    )
    stop_btn.click(stop_run, session, None, queue=False, api_visibility="private")
    live_timer.tick(
        live_frame, session, [*panes, slider], trigger_mode="once", show_progress="hidden", api_visibility="private"
    )
    full.change(full_diffusion_toggle, [full, gen_length], block_length, queue=False, api_visibility="private")
    gen_length.change(
        lambda full_, L: full_diffusion_toggle(True, L) if full_ else gr.skip(),
        [full, gen_length],
        block_length,
        queue=False,
        api_visibility="private",
    )

    replay_outputs = [*panes, follow]
    slider.input(
        replay, [slider, session], replay_outputs, api_name="replay", trigger_mode="always_last", show_progress="hidden"
    )
    slider.release(
        replay,
        [slider, session],
        replay_outputs,
        trigger_mode="always_last",
        show_progress="hidden",
        api_visibility="private",
    )
    for btn, delta in ((prev_btn, -1), (next_btn, 1)):
        btn.click(
            lambda k, comp, d=delta: step_by(d, k, comp),
            [slider, session],
            [*replay_outputs, slider],
            show_progress="hidden",
            api_visibility="private",
            trigger_mode="always_last",
        )
    follow.input(set_follow, [follow, session], None, queue=False, api_visibility="private")
    play_btn.click(
        toggle_play,
        [playing, slider, session],
        [timer, play_btn, playing, slider],
        queue=False,
        api_visibility="private",
    )
    timer.tick(
        play_tick,
        [slider, session],
        [*panes, slider, timer, play_btn, playing],
        show_progress="hidden",
        api_visibility="private",
        trigger_mode="always_last",
    )
    speed.change(set_speed, speed, timer, queue=False, api_visibility="private")
    upload.upload(
        load_trace,
        upload,
        [*panes, status, slider, session, dl_json, dl_gif],
        api_name="load_trace",
        show_progress="hidden",
    )
