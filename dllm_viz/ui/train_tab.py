"""The Train tab's layout and wiring: presets and settings, Start / Stop / Resume, the live curves,
the probe problem as Compare's pane grid (policy beside the heuristic) with a snapshot scrubber,
and the hand-over (pickers, download); the ``/train`` endpoint. Handlers are in :mod:`.train`.
"""

from __future__ import annotations

from collections.abc import Sequence

import gradio as gr

from . import runtime, train
from .pane import TracePane
from .train_run import TRAIN_CAP_S, probe_problem
from .train_settings import DEFAULT_PRESET, MAX_BATCHES, MAX_LEARNING_RATE, PRESETS, SETTINGS, heuristic_choices
from .updates import Components

TRAIN_WAITERS = 8  # handlers admitted at once: one trains, the rest show their place in the queue


def _settings(ui: Components) -> None:
    s = PRESETS[DEFAULT_PRESET]
    with gr.Row():
        preset = gr.Dropdown(list(PRESETS), value=DEFAULT_PRESET, label="Preset", elem_id="train-preset", scale=2)
        setting = gr.Radio(list(SETTINGS), value=s.setting, label="setting", elem_id="train-setting", scale=1)
        heuristic = gr.Dropdown(
            heuristic_choices(), value=s.heuristic, label="compare the probe with", elem_id="train-heuristic", scale=1
        )
    with gr.Row():
        alpha = gr.Slider(0.0, 10.0, value=s.alpha, step=0.1, label="α, the price of speed", elem_id="train-alpha")
        lr = gr.Number(s.learning_rate, label="learning rate", minimum=0, maximum=MAX_LEARNING_RATE, elem_id="train-lr")
        batches = gr.Slider(
            1, MAX_BATCHES, value=s.batches, step=1, label="batches (8 prompts × 8 rollouts)", elem_id="train-batches"
        )
        seed = gr.Number(s.seed, precision=0, label="seed", minimum=0, elem_id="train-seed")
        es = gr.Checkbox(s.expert_steering, label="expert steering (full diffusion)", elem_id="train-es")
    ui.add(preset=preset, setting=setting, heuristic=heuristic, alpha=alpha, learning_rate=lr, batches=batches)
    ui.add(seed=seed, expert_steering=es)


def _views(ui: Components) -> None:
    with gr.Row():
        start = gr.Button("▶ Start", variant="primary", elem_id="train-start", scale=1)
        stop = gr.Button("■ Stop", variant="stop", elem_id="train-stop", scale=0, min_width=110)
        resume = gr.Button("⟳ Resume", interactive=False, elem_id="train-resume", scale=0, min_width=120)
        status = gr.Textbox("idle", label="Status", interactive=False, elem_id="train-status", scale=5)
    ui.add(start_btn=start, stop_btn=stop, resume_btn=resume, status=status)
    ui.add(curves=gr.Plot(train.curves(None), show_label=False, elem_id="train-curves"))
    gr.Markdown(f"**Probe problem** (decoded by the policy every few batches): {probe_problem().question}")
    with gr.Row(equal_height=False):
        policy, heuristic = TracePane(ui, "a", "train-"), TracePane(ui, "b", "train-")
    ui.add(snapshot=gr.Slider(0, 1, value=0, step=1, label="Probe snapshots", elem_id="train-snapshot", buttons=[]))
    policy.heatmap(ui)  # the policy's unmask probabilities, step × position
    del heuristic  # its grid and stats are registered in ui by name
    with gr.Row():
        ui.add(handover=gr.Markdown("", elem_id="train-handover"))
        ui.add(dl_policy=gr.DownloadButton("⬇ Policy folder (.zip)", interactive=False, elem_id="train-dl"))


def _wire(ui: Components, pickers: Sequence[gr.Dropdown]) -> None:
    for i, dropdown in enumerate(pickers):
        ui.add(**{f"picker_{i}": dropdown})
    train.PICKERS[0] = len(pickers)
    outputs = [*train.RUN_OUTPUTS, *(f"picker_{i}" for i in range(len(pickers)))]
    event = dict(concurrency_limit=TRAIN_WAITERS, concurrency_id="train", show_progress="hidden")
    settings = ui.outputs(train.SETTING_FIELDS)
    state = [ui["run"], ui["trained"]]
    ui.on(
        ui.get("start_btn", gr.Button).click,
        train.start_training,
        [*settings, *state],
        outputs,
        api_visibility="private",
        **event,
    )
    ui.on(
        ui.get("resume_btn", gr.Button).click, train.resume_training, state, outputs, api_visibility="private", **event
    )
    ui.get("stop_btn", gr.Button).click(train.stop_training, ui["run"], None, queue=False, api_visibility="private")
    quiet = dict(queue=False, api_visibility="private")
    ui.on(ui.get("preset", gr.Dropdown).input, train.preset_values, ui["preset"], train.SETTING_FIELDS, **quiet)
    ui.on(
        ui.get("snapshot", gr.Slider).input,
        train.show_snapshot,
        [ui["snapshot"], ui["run"]],
        train.PROBE,
        trigger_mode="always_last",
        show_progress="hidden",
        api_visibility="private",
    )
    gr.api(train.train_api, api_name="train", concurrency_limit=TRAIN_WAITERS, concurrency_id="train")


def build_train_tab(pickers: Sequence[gr.Dropdown] = ()) -> Components:
    """Components and events of the Train tab; ``pickers`` (Compare's and Explore's strategy
    dropdowns) get the session's trained policies (call inside ``gr.Blocks`` / ``gr.Tab``)."""
    ui = Components()
    if runtime.on_zero_gpu():
        gr.Markdown(train.ZERO_GPU_MESSAGE, elem_id="train-off")
        return ui
    gr.Markdown(
        "Train an unmasking policy with GRPO on the built-in model and watch it learn: the curves "
        "update every batch, and the probe problem shows how its decisions change. One training runs "
        f"at a time on this server (others queue); a session may train {TRAIN_CAP_S / 60:.0f} minutes.",
        elem_classes="dv-caption",
    )
    ui.add(run=gr.State(None, time_to_live=train.SESSION_TTL_S), trained=gr.State([]))
    _settings(ui)
    _views(ui)
    _wire(ui, pickers)
    return ui
