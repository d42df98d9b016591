"""The Train tab's handlers and the ``/train`` endpoint: start, resume and stop a GRPO run
(:mod:`.train_run`), stream its curves and probe decodes, replay the snapshots, and hand the
policy over to Compare's and Explore's pickers. Handlers return :data:`~.updates.Updates`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import gradio as gr
import plotly.graph_objects as go

from ..rl.card import training_curves
from . import allowed_models, picker, runtime
from .errors import shown, user_errors
from .train_queue import QUEUE
from .train_run import MAX_SNAPSHOTS, TRAIN_CAP_S, TrainRun, follow, probe_problem, resumable
from .train_settings import PRESETS, TrainSettings
from .updates import Updates

SETTING_FIELDS = ("setting", "alpha", "expert_steering", "learning_rate", "batches", "seed", "heuristic")
PROBE = ("grid_a", "stats_a", "heat_a", "grid_b", "stats_b", "snapshot")
RUN_OUTPUTS = ("status", "curves", *PROBE, "run", "trained", "start_btn", "resume_btn", "handover", "dl_policy")
SESSION_TTL_S = 3600
ZERO_GPU_MESSAGE = (
    "Training is off on ZeroGPU Spaces: it runs on CPU for minutes and would hold the shared GPU "
    "worker. Run the app on your machine (`python app.py`) to train a policy here."
)


def trainable_model() -> str:
    """The model a run trains against: the app's own (users cannot point training at another)."""
    if runtime.on_zero_gpu():
        raise ValueError(ZERO_GPU_MESSAGE)
    model = allowed_models.default_model()
    if model in allowed_models.GPU_MODELS:
        raise ValueError(f"training runs on CPU, for the built-in model; the app serves {shown(model)}")
    return allowed_models.check_model_runnable(model)


def preset_values(name: str) -> Updates:
    """The controls showing preset ``name``."""
    with user_errors("Cannot load the preset"):
        if name not in PRESETS:
            raise ValueError(f"unknown preset {shown(name)}; presets: {', '.join(PRESETS)}")
    return dict(zip(SETTING_FIELDS, _values(PRESETS[name]), strict=True))


def _values(settings: TrainSettings) -> tuple:
    d = settings.to_dict()
    return tuple(d[f] for f in SETTING_FIELDS)


# ---- rendering ----------------------------------------------------------------------------------


def curves(run: TrainRun | None) -> go.Figure:
    """The policy card's curves of the run so far, the selected checkpoint dashed."""
    return training_curves(run.rows if run else [], run.selected if run else None)


def probe_panes(run: TrainRun | None, index: int | None = None) -> Updates:
    """Snapshot ``index`` (default: the latest) of the policy's probe decode beside the heuristic's."""
    if run is None or not run.snapshots:
        return {}
    n = len(run.snapshots)
    i = n - 1 if index is None else max(0, min(int(index), n - 1))
    snap = run.snapshots[i]
    out: Updates = {"grid_a": snap.grid, "stats_a": snap.stats, "heat_a": snap.heatmap}
    if run.heuristic:
        out["grid_b"], out["stats_b"] = run.heuristic
    out["snapshot"] = gr.Slider(
        minimum=0, maximum=max(n - 1, 1), value=i, label=f"Probe snapshots: {i + 1} of {n} (after {snap.batch} batches)"
    )
    return out


def status_line(run: TrainRun) -> str:
    done = len(run.rows)
    parts = [f"{run.status} · batch {done}/{run.settings.batches}"]
    if run.rows:
        last = run.rows[-1]
        parts.append(f"reward {last['reward']:.3f}, correct {last['correct']:.2f}, NFE {last['nfe']:.1f}")
    if run.baseline:
        held = [r["heldout_reward"] for r in run.rows if "heldout_reward" in r]
        best = run.selected
        now = f" → {held[-1]:.3f} (best {max(held):.3f} at batch {best + 1})" if held and best is not None else ""
        parts.append(f"validation reward {run.baseline['heldout_reward']:.3f}{now}")
    parts.append(f"{run.left_s / 60:.1f} of {TRAIN_CAP_S / 60:.0f} training minutes left")
    return " · ".join(parts) + f" #{run.run_id}"


def _handover(run: TrainRun, trained: list[str]) -> Updates:
    """The finished (or stopped) run's policy in every picker of this session, and its download."""
    if run.policy is None:
        return {"status": status_line(run), "start_btn": gr.Button(interactive=True)}
    if run.policy not in trained:
        trained = [*trained, run.policy][-picker.MAX_TRAINED :]
    out: Updates = {
        "status": status_line(run),
        "trained": trained,
        "start_btn": gr.Button(interactive=True),
        "resume_btn": gr.Button(interactive=resumable(run)),
        "handover": f"Policy **`{run.policy}`** is now in Compare's and Explore's strategy pickers (this session).",
        "dl_policy": gr.DownloadButton(value=str(run.export[1]), interactive=True) if run.export else gr.skip(),
        "curves": curves(run),
        **probe_panes(run),
    }
    choices = picker.strategy_choices(trained)
    out.update({f"picker_{i}": gr.Dropdown(choices=choices) for i in range(PICKERS[0])})
    return out


PICKERS = [0]  # how many picker dropdowns the tab was wired to (set by train_tab)


# ---- running ------------------------------------------------------------------------------------


def _watch(run: TrainRun, trained: list[str]) -> Iterator[Updates]:
    """Follow ``run`` to its end: queue position, curves every batch, probe panes every snapshot."""
    yield {
        "status": f"waiting for the training slot… #{run.run_id}",
        "run": run,
        "start_btn": gr.Button(interactive=False),
        "resume_btn": gr.Button(interactive=False),
        "dl_policy": gr.DownloadButton(interactive=False),
    }
    try:
        with user_errors("Training failed"):
            yield from _follow_updates(run)
    except gr.Error:
        yield {"status": f"{run.status} #{run.run_id}", "start_btn": gr.Button(interactive=True)}
        raise
    yield _handover(run, trained)


def _follow_updates(run: TrainRun) -> Iterator[Updates]:
    """Updates while ``run`` waits and trains: status, curves after each batch, the probe after each snapshot."""
    rows = snaps = -1
    for position in follow(run):
        if position:
            yield {"status": f"queued: position {position} of {len(QUEUE) - 1} waiting (one training at a time)"}
            continue
        out: Updates = {}
        if len(run.rows) != rows:
            rows = len(run.rows)
            out.update(status=status_line(run), curves=curves(run))
        if len(run.snapshots) != snaps:
            snaps = len(run.snapshots)
            out.update(probe_panes(run))
        yield out


def start_training(
    setting: object,
    alpha: object,
    expert_steering: object,
    learning_rate: object,
    batches: object,
    seed: object,
    heuristic: object,
    run: object,
    trained: list[str] | None,
) -> Iterator[Updates]:
    """▶ Start: a new run with these settings (generator; this session's earlier minutes count)."""
    with user_errors("Cannot start training"):
        settings = TrainSettings.of(setting, alpha, expert_steering, learning_rate, batches, seed, heuristic)
        model = trainable_model()
    fresh = TrainRun(settings, model, used_s=run.used_s if isinstance(run, TrainRun) else 0.0)
    fresh.settings = replace(settings, probe_every=max(settings.probe_every, -(-settings.batches // MAX_SNAPSHOTS)))
    yield from _watch(fresh, list(trained or []))


def resume_training(run: object, trained: list[str] | None) -> Iterator[Updates]:
    """⟳ Resume: continue a stopped or capped run from its last finished batch."""
    with user_errors("Cannot resume"):
        if not isinstance(run, TrainRun):
            raise ValueError("there is no run to resume; press Start")
        if not resumable(run):
            raise ValueError("this run has no finished batch to continue from, or no batches left; press Start")
    yield from _watch(run, list(trained or []))


def stop_training(run: object) -> None:
    """■ Stop: the job stops at its next forward pass and publishes the policy of its last batch."""
    if isinstance(run, TrainRun):
        run.stop.set()


def show_snapshot(index: float | None, run: object) -> Updates:
    """Scrub the probe snapshots (works during and after a run)."""
    with user_errors("Cannot show the snapshot"):
        return probe_panes(run if isinstance(run, TrainRun) else None, int(index or 0))


# ---- the /train endpoint --------------------------------------------------------------------------


def train_api(
    preset: str = "",
    setting: str | None = None,
    alpha: float | None = None,
    expert_steering: bool | None = None,
    learning_rate: float | None = None,
    batches: int | None = None,
    seed: int | None = None,
    heuristic: str | None = None,
) -> Iterator[dict]:  # one annotated output: gradio_client then hands out each dict, not a 1-tuple
    """Train a policy and stream its metrics as JSON (the ``/train`` endpoint, for gradio_client).

    ``preset`` names one of the tab's presets (empty: the first); any other argument overrides it.
    Yields ``{"format": "dllm-viz-train", "event": ...}`` dicts: ``"queued"`` (``position``) while
    another training runs, ``"batch"`` (the metrics.jsonl row), ``"snapshot"`` (``batch``, ``nfe``,
    ``correct`` of the probe decode), ``"training"`` heartbeats (a cancel lands within one), and
    last ``"end"``: ``status``, ``batches``, ``baseline`` and ``selected`` (validation), ``policy``
    (its name in the app's pickers). ``client.predict`` returns only that last one.
    """
    with user_errors("Cannot start training"):
        if preset and preset not in PRESETS:
            raise ValueError(f"unknown preset {shown(preset)}; presets: {', '.join(PRESETS)}")
        base = PRESETS[preset or next(iter(PRESETS))]
        args = (setting, alpha, expert_steering, learning_rate, batches, seed, heuristic)
        given = {k: v for k, v in zip(SETTING_FIELDS, args, strict=True) if v is not None}
        values = {k: v for k, v in base.to_dict().items() if k in (*SETTING_FIELDS, "probe_every")} | given
        settings = TrainSettings.of(**values)
        run = TrainRun(settings, trainable_model())
    rows = snaps = 0
    yield _event("queued", position=0)  # before the queue: from here on a cancel closes us
    with user_errors("Training failed"):
        for position in follow(run):
            if position:
                yield _event("queued", position=position)
                continue
            news = [_event("batch", **row) for row in run.rows[rows:]] + [
                _event("snapshot", batch=s.batch, nfe=s.nfe, correct=s.correct) for s in run.snapshots[snaps:]
            ]
            rows, snaps = len(run.rows), len(run.snapshots)
            yield from news or [_event("training", batches=rows)]
    held = {r["iteration"]: r for r in run.rows}
    yield _event(
        "end",
        status=run.status,
        batches=len(run.rows),
        baseline=run.baseline,
        selected=None if run.selected is None else held[run.selected],
        policy=run.policy,
        probe=probe_problem().question,
    )


def _event(event: str, **fields: object) -> dict:
    return {"format": "dllm-viz-train", "event": event, **fields}
