"""The Explore tab's layout and wiring: settings and the run's :class:`~.pane.StrategyPane`, the
tree and branch-point controls, the branch's strategy, two :class:`~.pane.TracePane` s, the step
inspector and the tree's export; every event is wired through the tab's
:class:`~.updates.Components` to a handler of :mod:`.explore`.
"""

from __future__ import annotations

import functools

import gradio as gr

from ..strategies import StrategySpec
from ..views import legend_html
from ..views.explore import branch_point_html, inspector_html, pending_html
from ..views.glossary import BLOCK_INFO
from . import explore, picker, runtime, stopping
from .endpoints import branch_api
from .examples import example_problems
from .pane import StrategyPane, TracePane, model_picker, setting_note
from .updates import Components

# A click on a token of either grid: the pane's node and the token's position go to Python.
PICK_JS = """element.addEventListener('click', (e) => {
  const tok = e.target.closest('.dv-tok'), pane = e.target.closest('[data-node]');
  if (tok && pane && tok.dataset.pos !== undefined) trigger('pick', {node: +pane.dataset.node, pos: +tok.dataset.pos});
});"""


def _settings(ui: Components) -> StrategyPane:
    """Prompt, the run's strategy, model and engine settings."""
    problems = example_problems()
    default_run, _ = picker.default_strategies()
    with gr.Row():
        with gr.Column(scale=3):
            prompt = gr.Textbox(problems[0].question if problems else "", label="Prompt", lines=2, elem_id="ex-prompt")
            run_pane = StrategyPane("R", default_run, label="Strategy of the run")
        with gr.Column(scale=2):
            model = model_picker("ex-model")
            with gr.Row():
                gen_length = gr.Number(32, precision=0, label="gen length L", minimum=1, elem_id="ex-gen-length")
                block_length = gr.Number(
                    8, precision=0, label="block length BL", info=BLOCK_INFO, minimum=1, elem_id="ex-block-length"
                )
            with gr.Row():
                full = gr.Checkbox(False, label="full diffusion (BL = L)", elem_id="ex-full")
                temperature = gr.Slider(
                    0.0, 2.0, value=0.0, step=0.05, label="token temperature", elem_id="ex-temperature"
                )
                seed = gr.Number(0, precision=0, label="seed", elem_id="ex-seed")
    ui.add(prompt=prompt, model=model, gen_length=gen_length, block_length=block_length, full=full)
    ui.add(temperature=temperature, seed=seed)
    return run_pane


def _branch_point(ui: Components) -> None:
    """Run/Stop, the tree, the step slider, the pick and its overrides."""
    with gr.Row():
        run_btn = gr.Button("▶ Run", variant="primary", elem_id="ex-run", scale=1)
        stop_btn = gr.Button("■ Stop", variant="stop", elem_id="ex-stop", scale=0, min_width=110)
        status = gr.Textbox("idle", label="Status", interactive=False, elem_id="ex-status", scale=5)
        run_key = gr.Textbox(visible=False, elem_id="ex-run-key")  # filled by the page (stopping.RUN_JS)
        api_cancel = gr.Button(visible=False, elem_id="ex-api-cancel")  # gradio_client's job.cancel() uses it
    ui.add(run_btn=run_btn, stop_btn=stop_btn, status=status, run_key=run_key, api_cancel=api_cancel)
    ui.add(setting_note=gr.Markdown("", visible="hidden", elem_id="ex-setting-note"))
    with gr.Row(equal_height=False):
        with gr.Column(scale=2):
            tree = gr.Radio(
                [], label="Decodes (a run and its branches; pick one to show it beside its parent)", elem_id="ex-tree"
            )
            slider = gr.Slider(
                0, 1, value=0, step=1, label="Step (both panes; the branch point)", elem_id="ex-step", buttons=[]
            )
        with gr.Column(scale=3):
            point = gr.HTML(branch_point_html(None, 0, None), label="Branch point", elem_id="ex-point")
            with gr.Row():
                position = gr.Number(None, precision=0, label="position (click a token)", minimum=0, elem_id="ex-pos")
                action = gr.Radio(list(explore.ACTION_LABELS), value="force-commit it", label="do", elem_id="ex-action")
                token = gr.Dropdown(
                    [],
                    value="",
                    label="token to force (empty: the model's choice; or type id:N)",
                    allow_custom_value=True,
                    elem_id="ex-token",
                )
            with gr.Row():
                add_btn = gr.Button("+ Add", elem_id="ex-add", scale=0, min_width=90)
                clear_btn = gr.Button("Clear", elem_id="ex-clear", scale=0, min_width=90)
                mode = gr.Radio(
                    [explore.SAME, explore.OTHER],
                    value=explore.SAME,
                    label="continue with",
                    elem_id="ex-continue",
                    scale=3,
                )
                branch_btn = gr.Button("↳ Branch", variant="primary", elem_id="ex-branch", scale=1)
            pending = gr.HTML(pending_html([], None), label="Pending overrides", elem_id="ex-pending")
    ui.add(tree=tree, slider=slider, point=point, position=position, action=action, token=token)
    ui.add(add_btn=add_btn, clear_btn=clear_btn, mode=mode, branch_btn=branch_btn, pending=pending)


def _views(ui: Components) -> None:
    """Both panes' views, the inspector, plots, and the tree's download and upload."""
    with gr.Row(equal_height=False):
        panes = [
            TracePane(ui, "a", "ex-", js_on_load=PICK_JS, labelled_heatmap=False),
            TracePane(
                ui, "b", "ex-", empty_grid=explore.empty_branch_html(), js_on_load=PICK_JS, labelled_heatmap=False
            ),
        ]
    gr.HTML(legend_html())
    with gr.Accordion("Step inspector: why the policy unmasked what it did", open=True):
        ui.add(inspect=gr.HTML(inspector_html(None, 0), label="Step inspector", elem_id="ex-inspector"))
    with gr.Row():
        for pane in panes:
            pane.heatmap(ui)
    ui.add(curves=gr.Plot(label="Per-step curves", show_label=False, elem_id="ex-curves"))
    with gr.Row():
        download = gr.DownloadButton("⬇ Tree (JSON)", interactive=False, elem_id="ex-dl-tree")
        upload = gr.File(
            file_types=[".json"], type="filepath", label="Explore a tree, trace or comparison file", elem_id="ex-upload"
        )
    ui.add(dl_tree=download, upload=upload)


def _wire(ui: Components, run_pane: StrategyPane, branch_pane: StrategyPane) -> None:
    quiet = dict(api_visibility="private", show_progress="hidden")
    model_event = dict(concurrency_limit=runtime.MODEL_CONCURRENCY, concurrency_id="model", show_progress="hidden")
    settings = ui.outputs(("model", "prompt", "gen_length", "block_length", "full", "temperature", "seed"))
    session, slider, tree = ui["session"], ui.get("slider", gr.Slider), ui.get("tree", gr.Radio)
    position, full, upload = ui.get("position", gr.Number), ui.get("full", gr.Checkbox), ui.get("upload", gr.File)
    run_btn, branch_btn, stop_btn, cancel_btn, add_btn, clear_btn = (
        ui.get(name, gr.Button) for name in ("run_btn", "branch_btn", "stop_btn", "api_cancel", "add_btn", "clear_btn")
    )
    # ■ Stop works through the run key, not Gradio's cancel (see .stopping); a newer run from the
    # page ends the older one, so a click is never dropped while a stopped run winds down.
    keyed = dict(js=stopping.RUN_JS, trigger_mode="multiple", **model_event)
    run_event = ui.on(
        run_btn.click,
        explore.run_explore,
        [*settings, *run_pane.inputs, ui["run_key"]],
        explore.RUN_OUTPUTS,
        api_name="explore",
        preprocess=False,  # run_explore checks every value itself (Gradio's checks give generic errors)
        **keyed,
    )
    branch_event = ui.on(
        branch_btn.click,
        explore.branch_explore,
        [session, ui["model"], slider, ui["mode"], *branch_pane.inputs, ui["run_key"]],
        explore.RUN_OUTPUTS,
        api_visibility="private",
        **keyed,
    )
    stop_btn.click(stopping.stop, ui["run_key"], None, js=stopping.STOP_JS, queue=False, api_visibility="private")
    cancel_btn.click(None, None, None, cancels=[run_event, branch_event], queue=False, api_visibility="private")
    # beside the run, not inside it: warned, never refused
    note_inputs = [ui["gen_length"], ui["block_length"], full, run_pane.strategy]
    run_btn.click(setting_note, note_inputs, ui["setting_note"], show_progress="hidden", api_visibility="private")
    ui.on(tree.input, explore.select_node, [tree, slider, session], explore.SELECT_OUTPUTS, **quiet)
    replay_triggers = functools.partial(gr.on, [slider.release, slider.input])
    ui.on(
        replay_triggers, explore.replay, [slider, session], explore.REPLAY_OUTPUTS, trigger_mode="always_last", **quiet
    )
    for grid in (ui.get("grid_a", gr.HTML), ui.get("grid_b", gr.HTML)):
        ui.on(grid.pick, explore.on_grid_click, [session, slider], explore.PICK_OUTPUTS, **quiet)
    ui.on(
        position.submit,
        lambda exp, k, p: explore.pick(exp, k, None, p),
        [session, slider, position],
        explore.PICK_OUTPUTS,
        **quiet,
    )
    override = [session, position, ui["action"], ui["token"]]
    ui.on(add_btn.click, explore.add_override, override, explore.OVERRIDE_OUTPUTS, api_visibility="private")
    ui.on(clear_btn.click, explore.clear_overrides, session, explore.OVERRIDE_OUTPUTS, api_visibility="private")
    full.change(
        lambda f, L: gr.Number(value=L, interactive=False) if f else gr.Number(interactive=True),
        [full, ui["gen_length"]],
        ui["block_length"],
        queue=False,
        api_visibility="private",
    )
    ui.on(upload.upload, explore.load_explore, upload, explore.RUN_OUTPUTS, **quiet)
    gr.api(branch_api, api_name="branch", **{k: v for k, v in model_event.items() if k != "show_progress"})


def build_explore_tab() -> Components:
    """Components and events of the Explore tab (call inside ``gr.Blocks`` / ``gr.Tab``)."""
    ui = Components()
    ui.add(session=gr.State(None, time_to_live=explore.SESSION_TTL_S))
    run_pane = _settings(ui)
    _branch_point(ui)
    with gr.Accordion("Another strategy for the branch", open=False):
        branch_pane = StrategyPane(
            "C", StrategySpec("confidence"), "Strategy of the branch (with 'continue with: another strategy')"
        )
    ui.add(strategy_r=run_pane.strategy, strategy_c=branch_pane.strategy)  # the Train tab adds its policies
    _views(ui)
    _wire(ui, run_pane, branch_pane)
    return ui
