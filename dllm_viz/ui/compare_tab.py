"""The Compare tab's layout and wiring: settings, two :class:`~.pane.StrategyPane` s, two
:class:`~.pane.TracePane` s, replay and export controls; every event is wired through the tab's
:class:`~.updates.Components` to a handler of :mod:`.compare`.
"""

from __future__ import annotations

import functools
import json

import gradio as gr

from ..views import curves_figure, legend_html
from . import compare, picker, runtime
from .examples import example_problems
from .pane import StrategyPane, TracePane, model_picker, pane_values
from .settings import PANE_FIELDS
from .stories import Story, default_story, stories
from .updates import Components, Updates

SETTINGS = ("prompt", "gen_length", "block_length", "full", "seed")  # what a story sets, besides the panes


def story_caption(story: Story | None) -> str:
    return f"**{story.title}.** {story.caption}" if story else ""


def story_outputs() -> tuple[str, ...]:
    """What a story button sets: the settings, each pane's controls but the upload, the caption."""
    panes = tuple(f"{f}_{p}" for p in "ab" for f in PANE_FIELDS[:-1])
    return (*SETTINGS, *panes, "caption")


def apply_story(index: int) -> Updates:
    """Load curated story ``index`` into the settings, both panes and the caption."""
    story = stories()[index]
    settings = (story.prompt, story.gen_length, story.effective_block_length, story.full_diffusion, story.seed)
    out: Updates = dict(zip(SETTINGS, settings, strict=True))
    for p, spec in (("a", story.a), ("b", story.b)):
        out.update({f"{f}_{p}": v for f, v in zip(PANE_FIELDS, pane_values(spec), strict=False)})
    out["caption"] = story_caption(story)
    return out


def full_diffusion_toggle(full: bool, gen_length):
    """Full diffusion means BL = L: show L in the disabled box, not a stale BL."""
    if full:
        return gr.Number(value=gen_length, interactive=False)
    return gr.Number(interactive=True)


def _story_buttons(ui: Components) -> None:
    """One button per curated story: it loads the prompt, the settings and both panes."""
    if not stories():
        return
    gr.Markdown("Curated comparisons (where the two panes part ways):", elem_classes="dv-caption")
    with gr.Row(elem_id="stories"):
        for i, story in enumerate(stories()):
            button = gr.Button(story.title, size="sm", variant="secondary", elem_classes="dv-story")
            ui.on(
                button.click, lambda i=i: apply_story(i), None, story_outputs(), queue=False, api_visibility="private"
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


def _settings(ui: Components, story: Story | None) -> gr.Column:
    """Prompt, examples, model and engine settings; returns the slot the story buttons go in."""
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
    ui.add(prompt=prompt, caption=caption, model=model, gen_length=gen_length, block_length=block_length)
    ui.add(full=full, temperature=temperature, seed=seed)
    return story_slot


def _panes(ui: Components, story: Story | None) -> list:
    """Both panes' strategy controls; returns their inputs (A's, then B's)."""
    default_a, default_b = (story.a, story.b) if story else picker.default_strategies()
    panes = []
    with gr.Row(equal_height=False):
        for name, spec in (("A", default_a), ("B", default_b)):
            with gr.Column():
                pane = StrategyPane(name, spec)
            ui.add(**{f"{f}_{name.lower()}": c for f, c in zip(PANE_FIELDS, pane.inputs, strict=True)})
            panes.append(pane)
    return [*panes[0].inputs, *panes[1].inputs]


def _views(ui: Components) -> None:
    """Run controls, the two panes' views, the replay bar, plots and export."""
    with gr.Row():
        run_btn = gr.Button("▶ Run both", variant="primary", elem_id="run-btn", scale=1)
        stop_btn = gr.Button("■ Stop", variant="stop", elem_id="stop-btn", scale=0, min_width=110)
        live_speed = gr.Radio(
            list(compare.LIVE_SPEEDS), value=compare.DEFAULT_SPEED, label="live speed", elem_id="live-speed", scale=2
        )
        status = gr.Textbox("idle", label="Status", interactive=False, elem_id="status", scale=4)
    ui.add(run_btn=run_btn, stop_btn=stop_btn, live_speed=live_speed, status=status)
    ui.add(live_timer=gr.Timer(compare.LIVE_TICK_S, active=False))
    with gr.Row(equal_height=False):
        trace_panes = [TracePane(ui, "a"), TracePane(ui, "b")]
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
    ui.add(slider=slider, prev_btn=prev_btn, play_btn=play_btn, next_btn=next_btn, speed=speed, follow=follow)
    ui.add(timer=gr.Timer(0.25, active=False))
    with gr.Row():
        for pane in trace_panes:
            pane.heatmap(ui)
    ui.add(curves=gr.Plot(curves_figure({}), label="Per-step curves", show_label=False, elem_id="curves"))
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
    ui.add(dl_json=dl_json, dl_gif=dl_gif, upload=upload)


def _wire_run(ui: Components, pane_inputs: list) -> None:
    """▶ Run, its export, ■ Stop, the live timer and the full-diffusion box."""
    model_event = dict(concurrency_limit=runtime.MODEL_CONCURRENCY, concurrency_id="model", show_progress="hidden")
    settings = ui.outputs(("model", "prompt", "gen_length", "block_length", "full", "temperature", "seed"))
    run_event = ui.on(
        ui["run_btn"].click,
        compare.run_compare,
        [*settings, *pane_inputs, ui["live_speed"]],
        compare.RUN_OUTPUTS,
        api_name="compare",
        preprocess=False,  # run_compare checks every value itself (Gradio's checks give generic errors)
        **model_event,
    )
    ui.on(
        run_event.success, compare.export_files, ui["session"], compare.EXPORT_OUTPUTS, api_name="export", **model_event
    )
    ui["stop_btn"].click(compare.stop_run, ui["session"], None, queue=False, api_visibility="private")
    ui.on(
        ui["live_timer"].tick,
        compare.live_frame,
        ui["session"],
        compare.LIVE_OUTPUTS,
        trigger_mode="once",
        show_progress="hidden",
        api_visibility="private",
    )
    full, gen_length, block_length = ui["full"], ui["gen_length"], ui["block_length"]
    full.change(full_diffusion_toggle, [full, gen_length], block_length, queue=False, api_visibility="private")
    gen_length.change(
        lambda full_, L: full_diffusion_toggle(True, L) if full_ else gr.skip(),
        [full, gen_length],
        block_length,
        queue=False,
        api_visibility="private",
    )


def _wire_replay(ui: Components) -> None:
    """The slider, step buttons, follow box, playback and trace upload."""
    quiet = dict(show_progress="hidden", api_visibility="private")
    slider, session = ui["slider"], ui["session"]
    ui.on(
        slider.input,
        compare.replay,
        [slider, session],
        compare.REPLAY_OUTPUTS,
        api_name="replay",
        trigger_mode="always_last",
        show_progress="hidden",
    )
    ui.on(
        slider.release, compare.replay, [slider, session], compare.REPLAY_OUTPUTS, trigger_mode="always_last", **quiet
    )
    for btn, delta in ((ui["prev_btn"], -1), (ui["next_btn"], 1)):
        step = functools.partial(compare.step_by, delta)
        ui.on(btn.click, step, [slider, session], compare.STEP_OUTPUTS, trigger_mode="always_last", **quiet)
    ui["follow"].input(compare.set_follow, [ui["follow"], session], None, queue=False, api_visibility="private")
    ui.on(
        ui["play_btn"].click,
        compare.toggle_play,
        [ui["playing"], slider, session],
        compare.TOGGLE_OUTPUTS,
        queue=False,
        api_visibility="private",
    )
    ui.on(
        ui["timer"].tick,
        compare.play_tick,
        [slider, session],
        compare.PLAY_OUTPUTS,
        trigger_mode="always_last",
        **quiet,
    )
    ui["speed"].change(compare.set_speed, ui["speed"], ui["timer"], queue=False, api_visibility="private")
    ui.on(
        ui["upload"].upload,
        compare.load_trace,
        ui["upload"],
        compare.LOAD_OUTPUTS,
        api_name="load_trace",
        show_progress="hidden",
    )


def build_compare_tab() -> Components:
    """Components and events of the Compare tab (call inside ``gr.Blocks`` / ``gr.Tab``)."""
    ui = Components()
    story = default_story()  # the app opens on the first curated comparison: press Run and they part ways
    ui.add(session=gr.State(None, time_to_live=compare.SESSION_TTL_S), playing=gr.State(False))
    story_slot = _settings(ui, story)
    pane_inputs = _panes(ui, story)
    with story_slot:
        _story_buttons(ui)
    _views(ui)
    _wire_run(ui, pane_inputs)
    _wire_replay(ui)
    return ui
