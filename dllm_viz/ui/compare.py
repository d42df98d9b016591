"""The Compare tab's handlers: two strategies decode the same prompt in lockstep, streamed live,
with replay and export. Each handler returns :data:`~.updates.Updates` keyed by the output names
below; the layout and wiring are in :mod:`.compare_tab`, UI values → engine settings in
:mod:`.settings`.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import gradio as gr

from ..engine import EngineConfig
from ..strategies import StrategySpec
from . import picker, runtime
from .budget import Cancelled, compute_slot
from .comparison_views import render_panes, render_plots, status_line
from .errors import shown, user_errors
from .examples import known_answer
from .files import export_comparison
from .lockstep import collect
from .session import Comparison, load_comparison, new_run_id
from .settings import (  # noqa: F401  (engine_config, PANE_FIELDS: part of this tab's API)
    PANE_FIELDS,
    PaneInputs,
    api_params,
    api_spec,
    engine_config,
    pane_signature,
    pane_spec,
    prompt_text,
    runnable_model,
    text,
    whole_number,
)
from .stopping import BOARD, Ending, current_only
from .updates import Updates

# A live run is pulled, not pushed: the browser asks for the latest frame every LIVE_TICK_S and
# never while its previous request is pending (gr.Timer, trigger_mode="once"), so a slow browser
# skips stale steps instead of queueing them. The run's own stream only carries the status line.
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

# Output names (the tab registers a component under each) and what each event sets, in the order
# the endpoints' API clients receive them.
PANES = ("grid_a", "grid_b", "stats_a", "stats_b", "heat_a", "heat_b", "curves")
RUN_OUTPUTS = (*PANES, "status", "slider", "follow", "session", "dl_json", "dl_gif", "live_timer")
LIVE_OUTPUTS = (*PANES, "slider", "status")
REPLAY_OUTPUTS = (*PANES, "follow")
STEP_OUTPUTS = (*PANES, "follow", "slider")
PLAY_OUTPUTS = (*PANES, "slider", "timer", "play_btn", "playing")
TOGGLE_OUTPUTS = ("timer", "play_btn", "playing", "slider")
LOAD_OUTPUTS = (*PANES, "status", "slider", "session", "dl_json", "dl_gif")
EXPORT_OUTPUTS = ("dl_json", "dl_gif")


@dataclass
class LiveControl:
    """Flags that other events set while a run streams: ``follow`` (live frames move the slider
    and panes; off once the user scrubs) and ``stop`` (end the run after the current step; an
    Event so a slow-motion pause ends at once; the run also sets it once it has ended, so live ticks
    stop painting before its final frame)."""

    follow: bool = True
    stop: threading.Event = field(default_factory=threading.Event)
    ending: Callable[[], Ending] = lambda: None  # the page's run key (.stopping): a Stop or a newer run
    last_plot: float = 0.0
    shown: int = -1  # the step the last live frame showed (an unchanged step is not sent again)
    model: str = ""  # the run's canonical model: while it loads, live frames say so

    def stopped(self) -> bool:
        return self.stop.is_set() or self.ending() is not None


_LIVE: dict[str, LiveControl] = {}  # run id → its controls, while the run streams


SESSION_TTL_S = 1800  # a session's comparison (up to a 32 MB upload) is dropped after 30 idle minutes


# ---- rendering ----------------------------------------------------------------------------------


def _slider(n: int, value: int | None = None) -> gr.Slider:
    # minimum 0 (the masked canvas) keeps maximum ≥ 1 valid for every update
    return gr.Slider(minimum=0, maximum=max(n, 1), value=value) if value is not None else gr.Slider(maximum=max(n, 1))


# ---- running ------------------------------------------------------------------------------------


def run_compare(
    model: object,
    prompt: object,
    gen_length: object,
    block_length: object,
    full_diffusion: object,
    temperature: object,
    seed: object,
    *panes_and_speed: object,
) -> Iterator[Updates]:
    """Run a lockstep comparison (generator; the Run button and the ``/compare`` endpoint).

    After the settings come pane A's controls, pane B's (each in :data:`PANE_FIELDS` order), the
    live speed (a :data:`LIVE_SPEEDS` label; optional), which paces the steps for a class to follow,
    and the page's run key (optional; :mod:`.stopping`). Yields :data:`RUN_OUTPUTS` updates: first a
    "loading" frame that starts the live timer (the panes then come from :func:`live_frame`), status
    lines every ``STATUS_INTERVAL_S``, and the full final frame, which stops the timer. The timer is
    the run's own output, not a separate click event: started with the frame that carries the run's
    session, its first tick already finds the run (a timer started by the click raced the run and
    painted nothing live).
    """
    n = 2 * len(PANE_FIELDS)
    ending = BOARD.start(panes_and_speed[n + 1] if len(panes_and_speed) > n + 1 else None)
    settings = (model, prompt, gen_length, block_length, full_diffusion, temperature, seed)
    yield from current_only(_run_compare(settings, panes_and_speed, ending), ending)


def _run_compare(settings: tuple, panes_and_speed: tuple, ending: Callable[[], Ending]) -> Iterator[Updates]:
    model, prompt, gen_length, block_length, full_diffusion, temperature, seed = settings
    n = len(PANE_FIELDS)
    speed = panes_and_speed[2 * n] if len(panes_and_speed) > 2 * n else DEFAULT_SPEED
    try:
        with user_errors("Cannot start the comparison"):
            prompt = prompt_text(prompt)
            config = engine_config(gen_length, block_length, full_diffusion, temperature, seed)
            if len(panes_and_speed) not in (2 * n, 2 * n + 1, 2 * n + 2):
                raise TypeError(
                    f"expected two panes of {n} values ({', '.join(PANE_FIELDS)}), the speed and the run key"
                )
            specs = tuple(pane_spec(PaneInputs.of(panes_and_speed[i * n : (i + 1) * n]), p) for i, p in enumerate("AB"))
            speed = text("live speed", DEFAULT_SPEED if speed is None else speed, 40)
            if speed not in LIVE_SPEEDS:
                raise ValueError(f"live speed {shown(speed)} must be one of {', '.join(LIVE_SPEEDS)}")
            model = runnable_model(model)
    except gr.Error as err:
        yield _failed(err)
        raise
    notes = picker.setting_warnings(specs, config.gen_length, config.block_length)  # warned, not refused
    comp = new_comparison(prompt, specs)
    _LIVE[comp.run_id] = LiveControl(model=model, ending=ending)
    yield {
        "status": " ".join([f"loading model and strategies… #{comp.run_id}", *notes]),
        "follow": gr.Checkbox(value=True),
        "session": comp,
        "dl_json": gr.DownloadButton(interactive=False),
        "dl_gif": gr.DownloadButton(interactive=False),
        "live_timer": gr.Timer(LIVE_TICK_S, active=True),
    }
    try:
        with user_errors("The comparison failed"):
            yield from _stream(comp, model, prompt, specs, config, LIVE_SPEEDS[speed])
    except gr.Error as err:
        yield _failed(err, comp)
        raise
    finally:
        _LIVE.pop(comp.run_id, None)


# /compare's argument names: the settings, each pane's controls (strategy_a, …, policy_files_b), the speed
_SPEED = inspect.Parameter("speed", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=DEFAULT_SPEED)
_KEY = inspect.Parameter("run_key", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None)
run_compare.__signature__ = pane_signature(run_compare, ("_a", "_b"), (_SPEED, _KEY))  # type: ignore[attr-defined]


def new_comparison(prompt: str, specs: Sequence[StrategySpec]) -> Comparison:
    """An empty comparison of the two panes' strategies on ``prompt`` (traces arrive as it runs)."""
    labels = (f"A · {picker.pane_title(specs[0])}", f"B · {picker.pane_title(specs[1])}")
    return Comparison(new_run_id(), None, None, labels=labels, expected=known_answer(prompt))


def _failed(err: gr.Error, comp: Comparison | None = None) -> Updates:
    """A frame that only puts the error in the status line (the toast shows it too)."""
    where = f" #{comp.run_id}" if comp else ""
    return {"status": f"error: {err.message}{where}", "live_timer": gr.Timer(active=False)}


def _stream(
    comp: Comparison,
    model: str,
    prompt: str,
    specs: tuple[StrategySpec, ...],
    config: EngineConfig,
    steps_per_s: float,
) -> Iterator[Updates]:
    """Status frames of a running comparison, then its full final frame.

    With ``steps_per_s`` > 0 each step is held until 1/steps_per_s after the previous one
    (slow motion); Stop ends the pause at once.
    """
    control = _LIVE.get(comp.run_id, LiveControl())
    pause = 1.0 / steps_per_s if steps_per_s > 0 else 0.0
    last_status = last_step = 0.0
    steps = collect(comp, model, prompt, specs, config, stop=control.stopped)
    try:
        for _ in steps:
            if pause:
                control.stop.wait(max(0.0, last_step + pause - time.monotonic()))
                last_step = time.monotonic()
            if control.stopped():
                comp.stopped = True
                break
            if time.monotonic() - last_status >= STATUS_INTERVAL_S:
                last_status = time.monotonic()
                yield {"status": status_line(comp)}
    except Cancelled:  # stopped while it waited for a compute slot
        comp.stopped = True
    finally:
        steps.close()  # frees the slot now
    control.stop.set()  # live ticks paint nothing from here on: one rendered a step ago must not land after this frame
    if comp.stopped:  # say so at once: the full frame below takes a while to build and paint at large L
        yield {"status": status_line(comp)}
    frame = _view(comp, plots=True, following=True)
    yield {**frame, "status": status_line(comp), "session": comp, "live_timer": gr.Timer(active=False)}


def _view(comp: Comparison, plots: bool, following: bool) -> Updates:
    """Grids, stats and plots of the latest step, and the slider; panes left alone where the user
    has scrubbed away. Live frames (``comp`` still running) leave the curves for the final frame."""
    t0 = time.perf_counter()
    n = comp.num_steps
    out: Updates = {}
    if following:
        out.update(render_panes(comp, n))
        if plots:
            out.update(render_plots(comp, n))
            if not (comp.finished or comp.stopped):
                del out["curves"]
    comp.render_ms += (time.perf_counter() - t0) * 1e3
    if comp.finished and following:  # re-render stats so they include the final render time
        out.update(render_panes(comp, n))
    out["slider"] = _slider(n, n) if following else _slider(n)
    return out


def live_frame(comp: Comparison | None) -> Updates:
    """The latest step of a live run, pulled by the live timer (grids every tick, plots every
    ``PLOT_INTERVAL_S``); nothing once the run has ended (its final frame is already sent). Before
    the first step, while the model loads, only the status: "loading <model>… (N s)"."""
    control = _LIVE.get(comp.run_id) if comp is not None else None
    if comp is None or control is None or control.stop.is_set():
        return {}
    if not comp.num_steps and (waiting := runtime.load_status(control.model)):
        return {"status": f"{waiting} #{comp.run_id}"}
    if control.follow and comp.num_steps == control.shown:
        return {}
    control.shown = comp.num_steps if control.follow else -1
    now = time.monotonic()
    small = comp.a is not None and comp.a.gen_length <= LIVE_PLOT_MAX_L
    plots = small and now - control.last_plot >= PLOT_INTERVAL_S
    control.last_plot = now if plots else control.last_plot
    frame = _view(comp, plots, control.follow)
    return {} if control.stop.is_set() else frame  # the run's final frame is on its way


def set_follow(follow: bool, comp: Comparison | None) -> None:
    """Resume (or stop) following the live run with the slider."""
    if comp is not None and comp.run_id in _LIVE:
        _LIVE[comp.run_id].follow = bool(follow)


def stop_run(comp: Comparison | None, key: object = None) -> None:
    """Ask the streaming run to stop after its current step (it then shows where it stopped): the
    session's run, and through the page's run ``key`` one that has not yet sent its session."""
    BOARD.stop(key)
    if comp is not None and comp.run_id in _LIVE:
        _LIVE[comp.run_id].stop.set()


# ---- replay, export, import ---------------------------------------------------------------------


def export_files(comp: Comparison | None) -> Updates:
    """Write the comparison JSON and GIF; enable both download buttons (runs after a run ends)."""
    if comp is None or comp.a is None or not (comp.finished or comp.stopped) or not comp.num_steps:
        return {"dl_json": gr.DownloadButton(interactive=False), "dl_gif": gr.DownloadButton(interactive=False)}
    with user_errors("Cannot export the run"), compute_slot("an export"):
        json_path, gif_path = export_comparison(comp)  # written once per content, in a bounded folder
    return {
        "dl_json": gr.DownloadButton(value=str(json_path), interactive=True),
        "dl_gif": gr.DownloadButton(value=str(gif_path), interactive=True),
    }


def replay(k: object, comp: Comparison | None) -> Updates:
    """Show step ``k`` in both panes; scrubbing during a run stops the stream moving the slider.

    ``k`` is checked here (``/replay`` skips Gradio's slider checks, whose errors name no argument
    or are generic); a step past the run's end shows its last step (a live run is still growing)."""
    with user_errors("Cannot show that step"):
        k = whole_number("step", 0 if k is None else k, 0)
    if comp is None:
        return {**render_panes(None, 0), **render_plots(None, 0)}
    out: Updates = {}
    if comp.run_id in _LIVE:
        _LIVE[comp.run_id].follow = False
        out["follow"] = gr.Checkbox(value=False)
    k = min(k, comp.num_steps)
    return {**render_panes(comp, k), **render_plots(comp, k), **out}


def step_by(delta: int, k: float | None, comp: Comparison | None) -> Updates:
    """Step-through: show the previous/next step in both panes (buttons and the ← → keys)."""
    if comp is None or not comp.num_steps:
        return {}
    k = max(0, min(int(k or 0) + delta, comp.num_steps))
    return {**replay(k, comp), "slider": gr.Slider(value=k)}


def toggle_play(playing: bool, k: float | None, comp: Comparison | None) -> Updates:
    """Play/pause: a gr.Timer advances the slider; playing from the end restarts at step 0."""
    if comp is None or comp.num_steps == 0:
        return {"timer": gr.Timer(active=False), "play_btn": gr.Button(value="▶ Play"), "playing": False}
    playing = not playing
    out: Updates = {
        "timer": gr.Timer(active=playing),
        "play_btn": gr.Button(value="⏸ Pause" if playing else "▶ Play"),
        "playing": playing,
    }
    if playing and int(k or 0) >= comp.num_steps:
        out["slider"] = gr.Slider(value=0)
    return out


def play_tick(k: float | None, comp: Comparison | None) -> Updates:
    """One playback step: next step in the panes (plots every 4th step and at the end)."""
    stop = {"timer": gr.Timer(active=False), "play_btn": gr.Button(value="▶ Play"), "playing": False}
    if comp is None:
        return stop
    n = comp.num_steps
    k = min(int(k or 0) + 1, n)
    at_end = k >= n
    plots = render_plots(comp, k) if at_end or k % 4 == 0 else {}
    return {**render_panes(comp, k), **plots, "slider": gr.Slider(value=k), **(stop if at_end else {})}


def set_speed(fps: float | None) -> gr.Timer:
    return gr.Timer(value=1.0 / max(float(fps or 1), 0.5))


def load_trace(path: str | None) -> Iterator[Updates]:
    """Replay an uploaded comparison or trace file without any model (generator: on a bad file the
    status line says why, besides the toast). Yields :data:`LOAD_OUTPUTS` updates."""
    if not path:
        yield {}
        return
    try:
        with user_errors("Cannot load this trace file"):
            comp = load_comparison(path)
            n = comp.num_steps
            frame = {
                **render_panes(comp, n),
                **render_plots(comp, n),
                "status": status_line(comp),
                "slider": _slider(n, n),
                "session": comp,
            }
    except gr.Error as err:
        yield {"status": f"error: {err.message}"}
        raise
    yield {**frame, **export_files(comp)}
