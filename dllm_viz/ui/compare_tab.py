"""The Compare tab's layout and wiring: settings, two :class:`~.pane.StrategyPane` s, two
:class:`~.pane.TracePane` s, replay and export controls; every event is wired through the tab's
:class:`~.updates.Components` to a handler of :mod:`.compare`.
"""

from __future__ import annotations

import functools

import gradio as gr

from ..strategies import StrategySpec
from ..views import curves_figure, legend_html
from ..views.glossary import BLOCK_INFO
from . import allowed_models, compare, picker, runtime, stopping
from .examples import example_problems
from .pane import StrategyPane, TracePane, checked_file, model_picker, pane_values, setting_note
from .session import Comparison
from .settings import PANE_FIELDS
from .share import TEMPERATURE_RANGE
from .share_events import share_bar
from .stories import Story, default_story, stories
from .updates import Components, Updates

SETTINGS = ("prompt", "gen_length", "block_length", "full", "seed")  # what a story sets, besides the panes
# Tighter gaps than Gradio's 16 px: prompt, settings, both panes, ▶ Run and the top of both grids
# fit one 1024×768 screen (a projector), tested in tests/ui/test_app.py.
COMPARE_CSS = """
#compare-body { --layout-gap: 8px; }
"""
SUMMARY = ("model", "gen_length", "block_length", "full", "temperature", "seed")  # what the settings label shows


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


def trace_settings(comp: Comparison | None) -> Updates:
    """After a file loads: the settings and both panes as it ran them, so ▶ Run repeats that run,
    and an empty upload box, so the next file (even the same one) loads. A pane whose strategy
    cannot be rebuilt (a policy with no recorded source) keeps its controls."""
    trace = comp.a if comp is not None else None
    if comp is None or trace is None:
        return {}
    out: Updates = {
        "prompt": trace.prompt,
        "gen_length": trace.gen_length,
        "block_length": trace.block_length,
        "full": trace.block_length == trace.gen_length,
        "temperature": trace.engine.get("temperature", 0.0),
        "seed": trace.engine.get("seed", 0),
        "caption": "",  # a story's caption no longer describes what is shown
        "upload": None,
    }
    if trace.model in {value for _, value in allowed_models.model_choices()}:
        out["model"] = trace.model
    for p, pane_trace in (("a", comp.a), ("b", comp.b)):
        try:
            spec = StrategySpec.from_dict(pane_trace.strategy) if pane_trace is not None else None
        except ValueError:
            spec = None
        if spec is not None:
            out.update({f"{f}_{p}": v for f, v in zip(PANE_FIELDS, pane_values(spec), strict=False)})
    return out


def full_diffusion_toggle(full: bool, gen_length: float | None) -> gr.Number:
    """Full diffusion means BL = L: show L in the disabled box, not a stale BL."""
    if full:
        return gr.Number(value=gen_length, interactive=False)
    return gr.Number(interactive=True)


def example_choices() -> list[tuple[str, str]]:
    """The example picker's (label, value) pairs: curated stories first, then held-out problems."""
    told = [(f"★ {story.title}", f"story:{i}") for i, story in enumerate(stories())]
    return told + [(problem.question, f"problem:{i}") for i, problem in enumerate(example_problems())]


def pick_example(value: str | None) -> Updates:
    """A story sets the prompt, the settings and both panes; a held-out problem sets the prompt
    (and clears a story's caption, which would no longer describe the run)."""
    kind, _, index = (value or "").partition(":")
    if kind == "story":
        return apply_story(int(index))
    if kind == "problem":
        return {"prompt": example_problems()[int(index)].question, "caption": ""}
    return {}


def settings_label(
    model: object, gen_length: object, block_length: object, full: bool, temperature: object, seed: object
) -> str:
    """The closed settings box still says what the run will use."""
    lengths = f"L {gen_length}, full diffusion" if full else f"L {gen_length}, BL {block_length}"
    name = allowed_models.public_model_name(str(model or ""))
    return f"Settings: {name} · {lengths} · temperature {temperature} · seed {seed}"


def _prompt_row(ui: Components, story: Story | None) -> None:
    """The prompt beside one compact picker of curated stories and held-out problems."""
    with gr.Row(equal_height=True):
        prompt = gr.Textbox(
            story.prompt if story else "",
            label="Prompt",
            lines=2,
            max_lines=4,
            elem_id="prompt",
            placeholder="A question for the model, e.g. one of the examples",
            scale=3,
        )
        examples = gr.Dropdown(
            example_choices(),
            value="story:0" if story else None,  # the page opens on the first story: say so
            label="Examples",
            info="★ curated: the panes part ways; then held-out problems",
            elem_id="examples",
            scale=2,
            min_width=240,
        )
    ui.add(prompt=prompt, examples=examples)


def _settings(ui: Components, story: Story | None) -> None:
    """Model and engine settings, in a closed box whose label sums them up."""
    with gr.Accordion("Settings", open=False, elem_id="settings") as box:
        with gr.Row():
            model = model_picker(
                "model", info="a folder or Hub id also works; Hub models load on demand (GPU)", scale=2
            )
            gen_length = gr.Number(
                story.gen_length if story else 64, precision=0, label="gen length L", minimum=1, elem_id="gen-length"
            )
            block_length = gr.Number(
                story.effective_block_length if story else 8,
                precision=0,
                label="block length BL",
                info=BLOCK_INFO,
                minimum=1,
                elem_id="block-length",
                interactive=not (story and story.full_diffusion),
            )
            with gr.Column(min_width=160):
                full = gr.Checkbox(
                    bool(story and story.full_diffusion), label="full diffusion (BL = L)", elem_id="full-diffusion"
                )
                seed = gr.Number(story.seed if story else 0, precision=0, label="seed", elem_id="seed")
            temperature = gr.Slider(
                *TEMPERATURE_RANGE, value=0.0, step=0.05, label="token temperature", elem_id="temperature"
            )
        live_speed = gr.Radio(
            list(compare.LIVE_SPEEDS),
            value=compare.DEFAULT_SPEED,
            label="live speed",
            info="slow motion lets a class follow each step",
            elem_id="live-speed",
        )
    ui.add(live_speed=live_speed, settings=box, model=model, gen_length=gen_length, block_length=block_length)
    ui.add(full=full, temperature=temperature, seed=seed)
    fields = ui.outputs(SUMMARY)
    box.label = settings_label(*(c.value for c in fields))
    gr.on(
        [model.change, gen_length.change, block_length.change, full.change, temperature.change, seed.change],
        lambda *values: gr.Accordion(label=settings_label(*values)),
        fields,
        box,
        queue=False,
        api_visibility="private",
    )


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


def _run_bar(ui: Components) -> None:
    """▶ Run, ■ Stop and ⬈ Share beside the status line, right above the grids."""
    with gr.Row(equal_height=True):
        run_btn = gr.Button("▶ Run both", variant="primary", elem_id="run-btn", scale=0, min_width=130)
        stop_btn = gr.Button("■ Stop", variant="stop", elem_id="stop-btn", scale=0, min_width=90)
        share_bar(ui)
        status = gr.Textbox(
            "idle",
            label="Status",
            show_label=False,
            container=False,
            max_lines=2,
            interactive=False,
            elem_id="status",
            scale=1,
        )
        run_key = gr.Textbox(visible=False, elem_id="run-key")  # filled by the page (stopping.RUN_JS)
    ui.add(run_btn=run_btn, stop_btn=stop_btn, status=status, live_timer=gr.Timer(compare.LIVE_TICK_S, active=False))
    ui.add(run_key=run_key)
    # a policy run outside its trained setting; hidden (no room taken above the grids) otherwise
    ui.add(setting_note=gr.Markdown("", visible="hidden", elem_id="setting-note"))


def _views(ui: Components, story: Story | None) -> None:
    """The two panes' views, the story's caption, the replay bar, plots and export."""
    with gr.Row(equal_height=False):
        trace_panes = [TracePane(ui, "a"), TracePane(ui, "b")]
    ui.add(caption=gr.Markdown(story_caption(story), elem_id="story-caption", elem_classes="dv-caption"))
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
            upload = checked_file(
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
        ui.get("run_btn", gr.Button).click,
        compare.run_compare,
        [*settings, *pane_inputs, ui["live_speed"], ui["run_key"]],
        compare.RUN_OUTPUTS,
        api_name="compare",
        preprocess=False,  # run_compare checks every value itself (Gradio's checks give generic errors)
        js=stopping.RUN_JS,  # ■ Stop reaches the run through its key, even before it sends its session
        trigger_mode="multiple",  # a newer run ends the older one (.stopping), so no click is dropped
        **model_event,
    )
    ui.on(
        run_event.success, compare.export_files, ui["session"], compare.EXPORT_OUTPUTS, api_name="export", **model_event
    )
    ui.get("stop_btn", gr.Button).click(
        compare.stop_run,
        [ui["session"], ui["run_key"]],
        None,
        js=stopping.RUN_JS,
        queue=False,
        api_visibility="private",
    )
    note_inputs = [*ui.outputs(("gen_length", "block_length", "full")), pane_inputs[0], pane_inputs[len(PANE_FIELDS)]]
    ui.get("run_btn", gr.Button).click(
        setting_note, note_inputs, ui["setting_note"], show_progress="hidden", api_visibility="private"
    )
    ui.on(
        ui.get("live_timer", gr.Timer).tick,
        compare.live_frame,
        ui["session"],
        compare.LIVE_OUTPUTS,
        trigger_mode="once",
        show_progress="hidden",
        api_visibility="private",
    )
    full, gen_length, block_length = ui.get("full", gr.Checkbox), ui.get("gen_length", gr.Number), ui["block_length"]
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
    slider, session = ui.get("slider", gr.Slider), ui["session"]
    ui.on(
        slider.input,
        compare.replay,
        [slider, session],
        compare.REPLAY_OUTPUTS,
        api_name="replay",
        preprocess=False,  # replay checks the step itself (Gradio's slider checks give generic errors)
        trigger_mode="always_last",
        show_progress="hidden",
    )
    ui.on(
        slider.release, compare.replay, [slider, session], compare.REPLAY_OUTPUTS, trigger_mode="always_last", **quiet
    )
    for btn, delta in ((ui.get("prev_btn", gr.Button), -1), (ui.get("next_btn", gr.Button), 1)):
        step = functools.partial(compare.step_by, delta)
        ui.on(btn.click, step, [slider, session], compare.STEP_OUTPUTS, trigger_mode="always_last", **quiet)
    ui.get("follow", gr.Checkbox).input(
        compare.set_follow, [ui["follow"], session], None, queue=False, api_visibility="private"
    )
    ui.on(
        ui.get("play_btn", gr.Button).click,
        compare.toggle_play,
        [ui["playing"], slider, session],
        compare.TOGGLE_OUTPUTS,
        queue=False,
        api_visibility="private",
    )
    ui.on(
        ui.get("timer", gr.Timer).tick,
        compare.play_tick,
        [slider, session],
        compare.PLAY_OUTPUTS,
        trigger_mode="always_last",
        **quiet,
    )
    ui.get("speed", gr.Slider).change(
        compare.set_speed, ui["speed"], ui["timer"], queue=False, api_visibility="private"
    )
    loaded = ui.on(
        ui.get("upload", gr.File).upload,
        compare.load_trace,
        ui["upload"],
        compare.LOAD_OUTPUTS,
        api_name="load_trace",
        show_progress="hidden",
    )
    settings = tuple(dict.fromkeys((*SUMMARY, *story_outputs(), "upload")))
    ui.on(loaded.success, trace_settings, session, settings, **quiet)


def build_compare_tab() -> Components:
    """Components and events of the Compare tab (call inside ``gr.Blocks`` / ``gr.Tab``)."""
    ui = Components()
    story = default_story()  # the app opens on the first curated comparison: press Run and they part ways
    ui.add(session=gr.State(None, time_to_live=compare.SESSION_TTL_S), playing=gr.State(False))
    with gr.Column(elem_id="compare-body"):
        _prompt_row(ui, story)
        _settings(ui, story)
        pane_inputs = _panes(ui, story)
        _run_bar(ui)
        _views(ui, story)
    _wire_run(ui, pane_inputs)
    ui.on(
        ui.get("examples", gr.Dropdown).input,
        pick_example,
        ui["examples"],
        story_outputs(),
        queue=False,
        api_visibility="private",
    )
    _wire_replay(ui)
    return ui
