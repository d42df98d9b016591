"""The app's handlers called directly (no server): settings checks, user-facing errors, a full
lockstep run on a tiny random model, export → import round trip, replay and the API function."""

from __future__ import annotations

import inspect
import json
import re
import time

import gradio as gr
import pytest
import torch

from dllm_viz.trace import Trace
from dllm_viz.ui import allowed_models, compare, compare_tab, endpoints, picker, runtime, session
from dllm_viz.ui import pane as pane_ui
from dllm_viz.ui.compare import PANE_FIELDS, engine_config, export_files, load_trace, replay, run_compare

HEUR = dict(steps=0, threshold=0.9, factor=1.0, gamma=0.01, tau=1.0, beta=1.0, policy_files=None)


def pane(choice, **over):
    values = {**HEUR, **over}
    return [choice] + [values[f] for f in PANE_FIELDS[1:]]


def run_args(
    model, prompt="one plus two is", L=16, BL=4, full=False, a=None, b=None, temperature=0.0, seed=0, speed="full speed"
):
    a = a or pane("heuristic:confidence")
    b = b or pane("heuristic:threshold")
    return [model, prompt, L, BL, full, temperature, seed, *a, *b, speed]


def drain(gen):
    frames = list(gen)
    return frames


def last(gen):
    """The final item of a generator handler (what a client's ``predict`` returns)."""
    return drain(gen)[-1]


@pytest.fixture(scope="module", autouse=True)
def allow_tiny_model(tiny_model_dir):
    """The tests' tiny model lives in pytest's temp folder: allow it, as an operator would."""
    patch = pytest.MonkeyPatch()
    patch.setenv(allowed_models.ALLOW_ENV, str(tiny_model_dir))
    yield
    patch.undo()


def error_of(gen) -> str:
    with pytest.raises(gr.Error) as info:
        drain(gen)
    return info.value.message


# ---- settings → config ---------------------------------------------------------------------------


def test_engine_config_from_ui_values():
    cfg = engine_config(64.0, 8.0, False, 0.5, 3.0)
    assert (cfg.gen_length, cfg.block_length, cfg.temperature, cfg.seed) == (64, 8, 0.5, 3)
    assert engine_config(64, 5, True, 0, 0).block_length == 64  # full diffusion ignores BL


@pytest.mark.parametrize(
    "L, BL, message",
    [
        (60, 8, "block length (8) must divide gen length (60)"),
        (0, 1, "gen length (0) must be between 1"),
        (64, 128, "block length (128) must be an integer in [1, gen length=64]"),
        (64.5, 8, "gen length (64.5) must be a whole number"),
        (None, 8, "gen length is empty"),
    ],
)
def test_engine_config_rejects_bad_lengths(L, BL, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        engine_config(L, BL, False, 0, 0)


def test_param_visibility_follows_strategy():
    # unused controls stay mounted ("hidden"): ones created with visible=False never appear later
    vis = [u["visible"] for u in pane_ui.param_visibility("heuristic:threshold")]
    assert vis == ["hidden", True, "hidden", "hidden", "hidden", "hidden", "hidden"]
    vis = [u["visible"] for u in pane_ui.param_visibility(picker.UPLOADED)]
    assert vis == ["hidden", "hidden", "hidden", "hidden", True, True, True]
    assert pane_ui.param_visibility("heuristic:margin")[0]["visible"] is True


def test_strategy_choices_cover_heuristics_and_defaults():
    values = [v for _, v in picker.strategy_choices()]
    from dllm_viz.strategies import HEURISTICS

    assert {f"heuristic:{n}" for n in HEURISTICS} <= set(values)
    a, b = picker.default_strategies()
    assert a.key in values and b.key == "heuristic:threshold"


# ---- bad input: a specific message, and the handler can run again -------------------------------


def test_empty_prompt(tiny_model_dir):
    assert "the prompt is empty" in error_of(run_compare(*run_args(str(tiny_model_dir), prompt="   ")))


def test_gen_length_not_divisible_by_block_length(tiny_model_dir):
    msg = error_of(run_compare(*run_args(str(tiny_model_dir), L=60, BL=8)))
    assert "block length (8) must divide gen length (60)" in msg


def test_known_hub_model_without_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    msg = error_of(run_compare(*run_args("GSAI-ML/LLaDA-8B-Instruct")))
    assert "needs a CUDA GPU" in msg


def test_hub_model_while_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv(allowed_models.ALLOW_HUB_ENV, "someone-offline/not-in-cache")  # app.py --allow-hub-model
    msg = error_of(run_compare(*run_args("someone-offline/not-in-cache")))
    assert "could not be loaded" in msg and "offline" in msg


def test_unlisted_hub_model_is_never_downloaded():
    """Online, any org/name once made the server fetch that repository."""
    msg = error_of(run_compare(*run_args("someone/any-repository")))
    assert "is not on this server's list" in msg and "--allow-hub-model" in msg


def test_known_hub_model_with_gpu_but_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(runtime, "get_backend", _offline_only(runtime.get_backend))
    msg = error_of(run_compare(*run_args("Dream-org/Dream-v0-Instruct-7B")))
    assert "Dream-org/Dream-v0-Instruct-7B" in msg and "offline" in msg


def _offline_only(get_backend):
    def wrapped(model):
        from dllm_viz.backends import load_backend

        allowed_models.check_model_runnable(model)
        return load_backend(model, device="cpu", local_files_only=True)

    return wrapped


def test_missing_builtin_model_is_explained(monkeypatch):
    monkeypatch.setattr(allowed_models, "builtin_model_installed", lambda: False)
    msg = error_of(run_compare(*run_args(runtime.BUILTIN_MODEL)))
    assert "built-in model is not installed" in msg


def test_policy_file_that_is_not_safetensors(tmp_path):
    bogus = tmp_path / "model.safetensors"
    bogus.write_bytes(b"PK\x03\x04 this is a zip, not safetensors" * 10)
    a = pane(picker.UPLOADED, policy_files=[str(bogus)])
    msg = error_of(run_compare(*run_args("unused-model", a=a)))
    assert "pane A" in msg and "not a safetensors file" in msg


def test_policy_upload_without_weights(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text("{}")
    msg = error_of(run_compare(*run_args("unused-model", b=pane(picker.UPLOADED, policy_files=[str(cfg)]))))
    assert "pane B" in msg and ".safetensors" in msg


def test_bad_trace_files(tmp_path, monkeypatch):
    not_json = tmp_path / "a.json"
    not_json.write_text("{ nope")
    with pytest.raises(gr.Error, match="not valid JSON"):
        drain(load_trace(str(not_json)))
    not_trace = tmp_path / "b.json"
    not_trace.write_text(json.dumps({"hello": 1}))
    frames = []
    with pytest.raises(gr.Error, match="not a dllm-viz trace"):
        for frame in load_trace(str(not_trace)):
            frames.append(frame)
    assert frames[-1]["status"].startswith("error: Cannot load this trace file: this JSON file is not a dllm-viz trace")
    bad_pair = tmp_path / "c.json"
    bad_pair.write_text(json.dumps({"format": session.FORMAT, "version": 1, "a": {"version": 1}}))
    with pytest.raises(gr.Error, match="pane a: not a trace: missing field"):
        drain(load_trace(str(bad_pair)))
    monkeypatch.setattr(session, "MAX_UPLOAD_BYTES", 10)
    with pytest.raises(gr.Error, match=r"the limit for a trace is"):
        drain(load_trace(str(not_trace)))


# ---- a real run on a tiny random model ------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(tiny_model_dir):
    frames = drain(run_compare(*run_args(str(tiny_model_dir), L=16, BL=4)))
    return frames


def test_run_streams_frames_and_finishes(finished_run):
    first, last = finished_run[0], finished_run[-1]
    assert first["status"].startswith("loading model") and first["live_timer"].active  # the timer pulls the panes
    assert not finished_run[-1]["live_timer"].active
    comp = last["session"]
    assert comp.finished and comp.a.num_steps >= 1 and comp.b.num_steps >= 1
    assert re.match(r"done · A \d+ steps, NFE \d+ · B \d+ steps, NFE \d+ .* #\w{6}$", last["status"])
    n = comp.num_steps
    assert f'data-step="{min(n, comp.a.num_steps)}"' in last["grid_a"]
    assert 'data-masked="0"' in last["grid_a"] and 'data-masked="0"' in last["grid_b"]
    assert 'data-nfe="' in last["stats_a"]
    assert last["slider"].maximum == n and last["slider"].value == n  # slider follows the run
    for trace in (comp.a, comp.b):
        trace.validate()
        assert trace.steps[-1].nfe == trace.num_steps
        assert [s.step for s in trace.steps] == list(range(trace.num_steps))


def test_export_import_and_replay(finished_run, tmp_path):
    comp = finished_run[-1]["session"]
    json_btn = export_files(comp)["dl_json"]
    path = json_btn.value if isinstance(json_btn.value, str) else json_btn.value["path"]
    loaded = drain(load_trace(path))[-1]
    comp2 = loaded["session"]
    assert loaded["dl_json"].interactive and loaded["dl_gif"].interactive  # a loaded trace can be exported again
    assert comp2.source == "upload" and comp2.a.num_steps == comp.a.num_steps
    assert comp2.a.steps[-1].committed == comp.a.steps[-1].committed
    assert loaded["status"].startswith("loaded trace")
    # then the settings and both panes show what the file ran, so ▶ Run repeats it; the box empties
    shown = compare_tab.trace_settings(comp2)
    assert (shown["prompt"], shown["gen_length"], shown["block_length"]) == ("one plus two is", 16, 4)
    assert shown["full"] is False and shown["seed"] == 0 and shown["upload"] is None
    assert (shown["strategy_a"], shown["strategy_b"]) == ("heuristic:confidence", "heuristic:threshold")
    assert shown["threshold_b"] == 0.9 and shown["caption"] == ""
    out = replay(1, comp2)
    assert 'data-step="1"' in out["grid_a"] and 'data-step="1"' in out["grid_b"]
    # a single trace file replays in pane A
    single = comp.a.save(tmp_path / "single.json")
    one = drain(load_trace(str(single)))[-1]["session"]
    assert one.b is None and one.a.num_steps == comp.a.num_steps


def test_a_compare_export_branches_exactly(tmp_path):
    """Each pane's trace keeps its random state, so an exported sampled run continues exactly."""
    from dllm_viz.branch import lacks_random_state, run_branch
    from dllm_viz.strategies import StrategySpec

    model = allowed_models.default_model()
    args = run_args(model, L=16, BL=8, a=pane("heuristic:random", steps=8), temperature=0.8, seed=7)
    comp = last(run_compare(*args))["session"]
    loaded = session.load_comparison(comp.save(tmp_path))
    backend = runtime.get_backend(model)
    for trace in (loaded.a, loaded.b):
        assert not lacks_random_state(trace)
        k = trace.num_steps // 2
        child = run_branch(backend, trace, k, [], StrategySpec.from_dict(trace.strategy).build())
        assert [(s.committed, s.proposed, s.rng) for s in child.steps[k:]] == [
            (s.committed, s.proposed, s.rng) for s in trace.steps[k:]
        ]


def test_step_through_moves_one_step_within_the_run(finished_run):
    comp = finished_run[-1]["session"]
    out = compare.step_by(1, 0, comp)
    assert 'data-step="1"' in out["grid_a"] and out["slider"].value == 1
    assert compare.step_by(-1, 0, comp)["slider"].value == 0
    assert compare.step_by(1, comp.num_steps, comp)["slider"].value == comp.num_steps
    assert "confidence ≥ λ" in pane_ui.strategy_caption("heuristic:threshold")


def test_full_diffusion_shows_L_in_the_block_box():
    assert compare_tab.full_diffusion_toggle(True, 64).value == 64
    assert compare_tab.full_diffusion_toggle(False, 64).interactive


def test_play_tick_advances_and_stops(finished_run):
    comp = finished_run[-1]["session"]
    out = compare.play_tick(0, comp)
    assert 'data-step="1"' in out["grid_a"]
    end = compare.play_tick(comp.num_steps - 1, comp)
    assert end["playing"] is False  # playback stopped at the last step


def test_policy_pane_shows_unmask_probabilities(tiny_model_dir, tmp_path):
    from dllm_viz.policy import DiTConfidencePolicy

    DiTConfidencePolicy().save_pretrained(tmp_path / "pol")
    files = [str(tmp_path / "pol" / "model.safetensors"), str(tmp_path / "pol" / "config.json")]
    a = pane(picker.UPLOADED, policy_files=files, tau=0.5, beta=2.0)
    comp = drain(run_compare(*run_args(str(tiny_model_dir), L=16, BL=16, full=True, a=a)))[-1]["session"]
    assert comp.a.strategy["name"] == "learned" and comp.a.strategy["beta"] == 2.0
    assert all(s.probs is not None for s in comp.a.steps)
    heat_a = compare.render_plots(comp, comp.num_steps)["heat_a"]
    assert len([d for d in heat_a.data if d.type == "heatmap"]) == 2


def test_compare_trace_api_function(tiny_model_dir):
    out = last(
        endpoints.compare_trace(
            "one plus two is",
            "heuristic:eb",
            "heuristic:threshold",
            {"gamma": 0.5},
            {"threshold": 0.5},
            gen_length=16,
            block_length=8,
            model=str(tiny_model_dir),
        )
    )
    assert out["format"] == session.FORMAT
    a, b = Trace.from_dict(out["a"]), Trace.from_dict(out["b"])
    assert a.strategy == {"name": "eb", "gamma": 0.5} and b.strategy["threshold"] == 0.5
    with pytest.raises(gr.Error, match="must be 'heuristic:&lt;name&gt;'"):  # escaped for the toast
        last(endpoints.compare_trace("x", "magic", model=str(tiny_model_dir)))


def test_compare_trace_names_tau_pi_policy_temperature(tiny_model_dir):
    """A client's policy params take `policy_temperature`; the old `temperature` warns, same result."""
    run = dict(gen_length=8, block_length=8, model=str(tiny_model_dir))
    policy = f"policy:{picker.DEFAULT_POLICY}"
    new = last(endpoints.compare_trace("one plus two", policy, params_a={"policy_temperature": 0.5}, **run))
    with pytest.warns(DeprecationWarning, match="policy_temperature"):
        old = last(endpoints.compare_trace("one plus two", policy, params_a={"temperature": 0.5}, **run))
    assert new["a"]["strategy"] == old["a"]["strategy"] and new["a"]["strategy"]["temperature"] == 0.5
    assert [s["committed"] for s in new["a"]["steps"]] == [s["committed"] for s in old["a"]["steps"]]
    with pytest.raises(gr.Error, match="not both"):
        last(endpoints.compare_trace("x", policy, params_a={"temperature": 0.5, "policy_temperature": 0.5}, **run))


def test_compare_endpoint_keeps_its_argument_names():
    """gradio_client scripts call /compare by these names; the controls now come from the registry."""
    names = list(inspect.signature(run_compare).parameters)
    pane = ["strategy", "steps", "threshold", "factor", "gamma", "tau", "beta", "policy_files"]
    assert names[7:] == [f"{f}_{p}" for p in "ab" for f in pane] + ["speed", "run_key"]


def test_api_loads_only_shipped_policies(tiny_model_dir, tmp_path):
    """A client names a policy by its shipped name; a folder or hub id it names is never loaded."""
    for choice in (f"policy:{tmp_path}", "policy:someone/policy", picker.UPLOADED):
        with pytest.raises(gr.Error, match="no shipped policy|must be 'heuristic"):
            last(endpoints.compare_trace("x", choice, model=str(tiny_model_dir)))


def test_known_answer_marks_correctness(tiny_model_dir):
    from dllm_viz.ui.examples import example_problems

    problem = example_problems()[0]
    args = run_args(str(tiny_model_dir), prompt=problem.question, L=16, BL=16, full=True)
    comp = drain(run_compare(*args))[-1]["session"]
    assert comp.expected == problem.expected
    verdict = comp.verdict(comp.a)
    assert verdict.correct in (True, False) and verdict.expected == problem.expected


def test_stop_ends_the_run_early_and_keeps_it_exportable(tiny_model_dir):
    gen = run_compare(*run_args(str(tiny_model_dir), L=32, BL=32, full=True, speed="5 steps/s"))
    comp = next(gen)["session"]  # "loading" frame: the run's controls exist from here on
    next(gen)  # first status frame
    t0 = time.monotonic()
    compare.stop_run(comp)
    rest = list(gen)
    assert time.monotonic() - t0 < 0.5  # the slow-motion pause ends at once
    assert comp.stopped and not comp.finished
    assert rest[-1]["status"].startswith(f"stopped at step {comp.num_steps}")
    # the stop is said at once, before the full frame (slow to build and paint at large L)
    assert rest[-2] == {"status": rest[-1]["status"]} and "grid_a" in rest[-1]
    assert comp.num_steps < 32
    json_btn = export_files(comp)["dl_json"]
    assert json_btn.interactive


def test_slow_motion_paces_the_steps(tiny_model_dir):
    t0 = time.monotonic()
    comp = drain(
        run_compare(
            *run_args(
                str(tiny_model_dir),
                L=8,
                BL=8,
                full=True,
                speed="5 steps/s",
                a=pane("heuristic:confidence", steps=4),
                b=pane("heuristic:confidence", steps=4),
            )
        )
    )[-1]["session"]
    assert comp.num_steps == 4 and time.monotonic() - t0 >= 3 / 5  # 3 pauses of 0.2 s between 4 steps


def test_live_frames_follow_the_run_until_the_user_scrubs(tiny_model_dir):
    gen = run_compare(*run_args(str(tiny_model_dir), L=32, BL=32, full=True, speed="5 steps/s"))
    comp = next(gen)["session"]
    next(gen)
    live = compare.live_frame(comp)
    assert isinstance(live["grid_a"], str) and live["slider"].value == comp.num_steps >= 1  # panes and slider follow
    out = replay(0, comp)
    assert out["follow"].value is False  # the follow-live checkbox is unticked
    later = compare.live_frame(comp)
    assert "grid_a" not in later and "value" not in later["slider"].constructor_args  # left to the user
    compare.set_follow(True, comp)
    assert isinstance(compare.live_frame(comp)["grid_a"], str)
    compare.stop_run(comp)
    list(gen)
    assert compare.live_frame(comp) == {}  # nothing after the final frame


def test_benchmark_handler(tiny_model_dir):
    from dllm_viz.ui.benchmark import run_benchmark, sweep_cost

    fig, table, md, csv = last(
        run_benchmark(
            str(tiny_model_dir),
            ["heuristic:threshold", "heuristic:confidence"],
            False,
            ["semi-AR (BL = L/8)"],
            [1],
            2,
            16,
            1,
            "1.0",
            "1.0",
            progress=lambda *a, **k: None,
        )
    )
    # the picker's names, as in the Compare tab
    assert len(table) == 2 and {row[1] for row in table} == {
        "Fast-dLLM threshold λ",
        "High-Confidence-K (LLaDA low_confidence)",
    }
    assert "mean NFE" in md and len(fig.data) >= 2
    assert fig.layout.xaxis.type == "linear" and fig.layout.width is None  # log only when asked; fills the tab
    # the cost line now has this server's pace for the model
    cost = sweep_cost(
        str(tiny_model_dir), ["heuristic:threshold"], False, ["semi-AR (BL = L/8)"], [1], 2, 16, 1, "", ""
    )
    assert "**2 decodes** of 16 tokens" in cost and "at this server's last pace" in cost
    with pytest.raises(gr.Error, match="pick at least one strategy"):
        last(run_benchmark(str(tiny_model_dir), [], False, ["semi-AR (BL = L/8)"], [1], 2, 16, 1, "1", "1"))
    with pytest.raises(gr.Error, match=r"gen length \(20\) must be a multiple of 8"):
        last(
            run_benchmark(str(tiny_model_dir), ["heuristic:eb"], False, ["semi-AR (BL = L/8)"], [1], 2, 20, 1, "1", "1")
        )


def test_benchmark_cost_counts_decodes_and_names_mistakes():
    from dllm_viz.ui.sweep_plan import sweep_cost, time_left

    semi = ["semi-AR (BL = L/8)"]
    cost = sweep_cost("never-ran", ["heuristic:random", "heuristic:threshold"], False, semi, [1, 2], 5, 32, 3, "", "")
    # random is stochastic (3 seeds), threshold deterministic (one): (3 + 1) × 10 problems
    assert "**40 decodes** of 32 tokens" in cost and "2 strategy runs × 10 problems" in cost
    assert "measures the server's pace" in cost  # no estimate before a first sweep on this model
    assert sweep_cost("m", [], False, semi, [1], 5, 32, 1, "", "") == "⚠ pick at least one strategy"
    junk = sweep_cost("m", ["<img src=x onerror=alert(1)>"], False, semi, [1], 5, 32, 1, "", "")
    assert junk.startswith("⚠ strategies:") and "<img" not in junk  # named and escaped
    assert "the limit is" in sweep_cost("m", ["heuristic:random"], True, semi, [1, 2, 3], 200, 512, 5, "", "")
    assert time_left(0, 10, 0.0) == "" and time_left(10, 10, 0.0) == ""


def test_benchmark_front_spans_all_strategies_and_policies_fit_their_setting():
    from dllm_viz.ui.benchmark import summary_table
    from dllm_viz.ui.sweep_plan import policy_fits

    rows = [
        dict(
            setting="s",
            strategy=name,
            params="",
            seeds=1,
            n=4,
            accuracy=acc,
            accuracy_std=0.0,
            mean_nfe=nfe,
            tokens_per_step=1.0,
            no_answer=0.0,
        )
        for name, acc, nfe in (("a", 50.0, 8.0), ("b", 40.0, 10.0), ("threshold", 70.0, 16.0))
    ]
    table = summary_table(rows)
    assert [row[-1] for row in table] == ["★", "", "★"]  # b is dominated by a
    assert table[2][1] == "Fast-dLLM threshold λ"  # the picker's name, not the registry key
    assert policy_fits("semi-ar-alpha1", "semi-AR (BL = L/8)") and not policy_fits(
        "semi-ar-alpha1", "full diffusion (BL = L)"
    )
    assert policy_fits("full-diffusion-es", "full diffusion (BL = L)") and policy_fits(
        "my-policy", "semi-AR (BL = L/8)"
    )


def test_app_module_imports_without_side_effects():
    import subprocess
    import sys

    code = "import sys, app; assert 'gradio' not in sys.modules and 'torch' not in sys.modules; print('ok')"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=str(__import__("pathlib").Path(__file__).parents[2]),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.stdout.strip() == "ok", out.stderr


def test_build_demo_has_named_endpoints(monkeypatch):
    from dllm_viz.ui.app import build_demo, launch_kwargs

    demo = build_demo()
    names = {fn.api_name for fn in demo.fns.values() if fn.api_name}
    assert {"compare", "compare_trace", "replay", "load_trace", "export", "benchmark"} <= names
    assert launch_kwargs()["max_file_size"] == session.MAX_UPLOAD_BYTES
    assert runtime.MODEL_CONCURRENCY >= 1


def test_shipped_policy_is_pane_a_default(tiny_model_dir, tmp_path, monkeypatch):
    from dllm_viz.policy import DiTConfidencePolicy

    DiTConfidencePolicy().save_pretrained(tmp_path / "semi-ar-demo")
    monkeypatch.setenv(runtime.POLICY_ENV, str(tmp_path))
    a, b = (spec.key for spec in picker.default_strategies())
    assert a == "policy:semi-ar-demo" and b == "heuristic:threshold"
    DiTConfidencePolicy().save_pretrained(tmp_path / picker.DEFAULT_POLICY)  # preferred over the first by name
    assert picker.default_strategies()[0].key == f"policy:{picker.DEFAULT_POLICY}"
    (tmp_path / picker.DEFAULT_POLICY / "model.safetensors").unlink()
    assert picker.default_strategies()[0].key == "policy:semi-ar-demo"
    assert ("learned policy: semi-ar-demo", a) in picker.strategy_choices()
    comp = drain(run_compare(*run_args(str(tiny_model_dir), L=16, BL=8, a=pane(a, tau=0.5))))[-1]["session"]
    assert comp.a.strategy["name"] == "learned" and comp.a.strategy["temperature"] == 0.5
    assert comp.labels[0].startswith("A · policy semi-ar-demo")
    out = last(
        endpoints.compare_trace(
            "one plus two",
            a,
            "heuristic:confidence",
            {"policy_temperature": 1.0, "beta": 2.0},
            gen_length=16,
            block_length=16,
            model=str(tiny_model_dir),
        )
    )
    assert Trace.from_dict(out["a"]).strategy["beta"] == 2.0
