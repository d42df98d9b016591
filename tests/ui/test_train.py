"""The Train tab's library side on a tiny random dLLM: settings checked at the boundary, one
training at a time, Stop within a step and Resume, the hand-over to the pickers, ``/train``'s events."""

from __future__ import annotations

import os
import tempfile
import threading
import time
import zipfile

import pytest

from dllm_viz.engine import EngineConfig, generate
from dllm_viz.eval import report
from dllm_viz.ui import allowed_models, picker, runtime, train, train_run
from dllm_viz.ui.train_queue import QUEUE, TrainQueue
from dllm_viz.ui.train_run import TrainRun, follow, resumable, write_card_with_curves
from dllm_viz.ui.train_settings import PRESETS, TrainSettings

TINY = dict(gen_length=16, prompts=2, group_size=2, eval_problems=2, probe_every=1)


@pytest.fixture
def model(tiny_model_dir, monkeypatch):
    monkeypatch.setenv(allowed_models.MODEL_ENV, str(tiny_model_dir))
    return allowed_models.check_model_runnable(str(tiny_model_dir))


@pytest.mark.parametrize(
    "values, message",
    [
        (dict(setting="diagonal"), "setting ('diagonal') must be one of full diffusion, semi-AR"),
        (dict(setting="semi-AR", expert_steering=True), "expert steering is for full diffusion"),
        (dict(expert_steering="yes"), "expert steering must be true or false, not str"),
        (dict(learning_rate=0), "learning rate (0.0) must be above 0"),
        (dict(learning_rate=float("inf")), "learning rate (inf) must be a finite number"),
        (dict(batches=0), "batches (0) must be between 1 and 200"),
        (dict(batches=2.5), "batches (2.5) must be a whole number"),
        (dict(alpha=11), "α (alpha) (11.0) must be between 0.0 and 10.0"),
        (dict(heuristic="policy:semi-ar-alpha1"), "heuristic ('policy:semi-ar-alpha1') must be one of heuristic:"),
        (dict(seed=[1]), "seed must be a number, not list"),
    ],
)
def test_settings_are_checked_with_messages_that_name_them(values, message):
    raw = {**PRESETS["fast full-diffusion policy (~3 min on one core)"].to_dict(), **values}
    raw = {k: raw[k] for k in train.SETTING_FIELDS}
    with pytest.raises((ValueError, TypeError)) as err:
        TrainSettings.of(**raw)
    assert message in str(err.value)


def test_every_preset_is_a_valid_run():
    for name, settings in PRESETS.items():
        config = settings.train_config("/nonexistent/run", "model")
        assert config.iterations == settings.batches <= 200, name
        assert config.grpo.total_steps > config.grpo.warmup_steps
        # the tab's controls (which carry no probe interval) give the preset's own interval
        raw = {k: settings.to_dict()[k] for k in train.SETTING_FIELDS}
        assert TrainSettings.of(**raw).probe_every == settings.probe_every, name


def test_the_queue_admits_one_and_counts_the_rest():
    q = TrainQueue()
    a, b, c = q.join(), q.join(), q.join()
    assert [q.position(t) for t in (a, b, c)] == [0, 1, 2]
    q.leave(b)  # a waiter who cancels
    assert q.position(c) == 1
    q.leave(a)
    assert q.position(c) == 0 and len(q) == 1


def test_a_run_trains_publishes_and_decodes_in_compare(model):
    run = TrainRun(TrainSettings(batches=2, **TINY), model)
    assert set(follow(run, poll_s=0.05)) <= {0}
    assert run.status == "done" and [r["iteration"] for r in run.rows] == [0, 1]
    assert [s.batch for s in run.snapshots] == [0, 1, 2] and run.heuristic is not None
    assert "heldout_reward" in run.rows[-1] and run.baseline is not None
    files = {p.name for p in run.export[0].iterdir()}
    assert {"model.safetensors", "config.json", "README.md", "training_metrics.jsonl", "training_curves.png"} <= files
    assert "](training_curves.png)" in (run.export[0] / "README.md").read_text()  # the card shows its curves
    with zipfile.ZipFile(run.export[1]) as download:
        assert {f"{run.policy}/{name}" for name in files} <= set(download.namelist())
    # the hand-over: the session's pickers list it; Compare resolves it by name and decodes with it
    assert (f"learned policy: {run.policy} (trained here)", f"policy:{run.policy}") in [
        (label.lower(), value) for label, value in picker.strategy_choices([run.policy])
    ]
    spec = picker.pane_strategy(f"policy:{run.policy}", {})
    assert picker.choice_of(spec) == f"policy:{run.policy}"
    # the card writer recorded the knobs it was trained with (trained_for.json); the pane opens at them
    assert picker.pane_title(spec) == f"policy {run.policy} (temperature=1.0, beta=1.0)"
    backend = runtime.get_backend(model)
    last = list(generate(backend, ["one plus two"], spec.build(), EngineConfig.full(run.settings.gen_length)))[-1]
    assert not bool((last.tokens == backend.mask_id).any())


def test_stop_ends_within_a_step_and_resume_continues(model, monkeypatch):
    backend = runtime.get_backend(model)  # the cached backend the job trains against
    calls = []
    forward = backend.logits
    monkeypatch.setattr(backend, "logits", lambda *a, **k: calls.append(run.stop.is_set()) or forward(*a, **k))
    run = TrainRun(TrainSettings(batches=30, **TINY), model)
    events = follow(run, poll_s=0.05)
    while len(run.rows) < 1:
        next(events)
    run.stop.set()
    for _ in events:
        pass
    assert sum(calls) == 0, f"{sum(calls)} forward passes after Stop"  # stopped before the next one
    assert run.status == "stopped" and run.policy is not None and resumable(run)
    # stopped: no seconds of Chromium for a PNG; the card links the same curves as a page
    assert "](training_curves.html)" in (run.export[0] / "README.md").read_text()
    assert "plotly" in (run.export[0] / "training_curves.html").read_text()
    stopped_at = len(run.rows)
    resumed = follow(run, poll_s=0.05)
    while len(run.rows) < stopped_at + 1:
        next(resumed)
    resumed.close()  # a client gone: the job is cancelled, the queue left
    assert [r["iteration"] for r in run.rows] == list(range(len(run.rows)))
    assert len(QUEUE) == 0


def test_a_second_training_waits_with_its_position(model):
    first = TrainRun(TrainSettings(batches=30, **TINY), model)
    runner = follow(first, poll_s=0.05)
    next(runner)
    second = follow(TrainRun(TrainSettings(batches=1, **TINY), model), poll_s=0.05)
    assert next(second) == 1
    second.close()
    first.stop.set()
    for _ in runner:
        pass
    assert len(QUEUE) == 0


def test_the_train_endpoint_streams_json_and_names_the_policy(model):
    events = list(train.train_api(preset="quick look: 6 batches (~40 s)", batches=1, seed=3))
    assert all(e["format"] == "dllm-viz-train" for e in events)
    kinds = [e["event"] for e in events]
    assert kinds.count("batch") == 1 and kinds[-1] == "end" and "snapshot" in kinds
    end = events[-1]
    assert end["status"] == "done" and end["policy"].startswith("trained-") and end["batches"] == 1
    assert end["selected"]["iteration"] == 0 and end["baseline"]["heldout_reward"] >= 0


def test_the_train_endpoint_refuses_bad_input_before_training(model):
    import gradio as gr

    with pytest.raises(gr.Error, match="unknown preset '&lt;b&gt;'; presets: fast full-diffusion"):
        next(train.train_api(preset="<b>"))
    with pytest.raises(gr.Error, match="batches \\(1000\\) must be between 1 and 200"):
        next(train.train_api(batches=1000))
    assert len(QUEUE) == 0


def test_a_cancel_in_the_first_half_second_frees_the_slot(model):
    from dllm_viz.ui import budget

    for delay in (0.0, 0.1, 0.3, 0.5):
        events = follow(TrainRun(TrainSettings(batches=30, **TINY), model), poll_s=0.02)
        next(events)
        time.sleep(delay)
        events.close()
        assert len(QUEUE) == 0
        deadline = time.monotonic() + 2.0
        while budget.held() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert budget.held() == 0, f"a slot still held 2 s after a cancel at {delay} s"


def test_a_card_links_its_curves_as_a_page_where_kaleido_cannot_draw(model, tmp_path, monkeypatch):
    run = TrainRun(TrainSettings(batches=1, **TINY), model)
    train_run.train(threading.Event(), run)
    assert run.status == "done"

    def no_browser(fig, path):
        raise RuntimeError("training_curves.png not written: kaleido could not render it (no Chromium)")

    monkeypatch.setattr(report, "write_png", no_browser)
    write_card_with_curves(run, tmp_path / "card")
    assert not (tmp_path / "card" / "training_curves.png").exists()
    assert "](training_curves.html)" in (tmp_path / "card" / "README.md").read_text()
    assert (tmp_path / "card" / "model.safetensors").is_file()


# ---- run folders: bounded on disk, never removed under a run that writes to them ----------------


@pytest.fixture
def runs_here(tmp_path, monkeypatch):
    """Run folders (and exports) under this test's folder, pruned beyond 2 with no idle grace."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(train_run, "MAX_RUN_FOLDERS", 2)
    monkeypatch.setattr(train_run, "RUN_IDLE_S", 0.0)
    return tmp_path / "dllm-viz-training"


def _cancelled_run(model) -> TrainRun:
    """A run whose job is cancelled before its first forward pass: it claims a folder, trains nothing."""
    run = TrainRun(TrainSettings(batches=1, **TINY), model)
    cancel = threading.Event()
    cancel.set()
    train_run.train(cancel, run)
    assert run.status == "stopped" and run.folder is not None
    return run


def test_a_run_that_never_trains_makes_no_folder(model, runs_here):
    ahead = QUEUE.join()  # another training holds the slot: this run waits, then its client goes
    try:
        run = TrainRun(TrainSettings(batches=1, **TINY), model)
        events = follow(run, poll_s=0.05)
        assert next(events) == 1
        events.close()
    finally:
        QUEUE.leave(ahead)
    assert run.folder is None and (not runs_here.exists() or not any(runs_here.iterdir()))


def test_newer_runs_never_prune_the_folder_of_a_run_that_is_training(model, runs_here):
    first = TrainRun(TrainSettings(batches=3, **TINY), model)
    events = follow(first, poll_s=0.05)
    while not first.rows:
        next(events)
    for _ in range(4):  # each claims a fresh folder and prunes beyond 2 while the first trains
        _cancelled_run(model)
    assert first.folder.parent.is_dir()
    for _ in events:
        pass
    assert first.status == "done" and len(first.rows) == 3 and first.policy is not None
    assert first.folder.parent.is_dir()  # released: the least recently active now, but just touched
    os.utime(first.folder.parent, (0, 0))
    _cancelled_run(model)
    assert not first.folder.parent.exists() and len(list(runs_here.iterdir())) == 2


def test_a_folder_active_in_another_process_is_kept(model, runs_here, monkeypatch):
    monkeypatch.setattr(train_run, "RUN_IDLE_S", 600.0)
    runs_here.mkdir()
    elsewhere = runs_here / "run-elsewhere"  # another server's training: touched every batch
    elsewhere.mkdir()
    os.utime(elsewhere, (time.time() - 60, time.time() - 60))
    for _ in range(3):
        _cancelled_run(model)
    assert elsewhere.is_dir()
    os.utime(elsewhere, (time.time() - 601, time.time() - 601))  # idle past the grace: stale
    _cancelled_run(model)
    assert not elsewhere.exists()
