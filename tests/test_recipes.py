"""The recipes of docs/architecture.md, followed step by step: a new strategy, plot, tab and model
family, each registered the way the doc says and seen by the machinery it says picks it up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import gradio as gr
import plotly.graph_objects as go
import pytest
import torch
from recipe_strategy import LeftmostRun, registry_entry

import dllm_viz
from dllm_viz import generate
from dllm_viz.backends import load_backend, loading
from dllm_viz.backends.hf import MaskedLMBackend
from dllm_viz.strategies import HEURISTICS, REGISTRY, StrategySpec
from dllm_viz.trace import Trace
from dllm_viz.ui import picker, sweep_plan
from dllm_viz.ui.pane import TracePane
from dllm_viz.ui.train_settings import heuristic_choices
from dllm_viz.ui.updates import Components, Updates
from dllm_viz.views.figures import placeholder_figure

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "Tom has 3 apples."

# ---- a strategy ----------------------------------------------------------------------------------


@pytest.fixture
def leftmost(monkeypatch):
    """The new strategy listed in ``HEURISTICS`` and the registry built from it, for one test."""
    monkeypatch.setitem(HEURISTICS, LeftmostRun.name, LeftmostRun)
    monkeypatch.setitem(REGISTRY, LeftmostRun.name, registry_entry(LeftmostRun))
    return LeftmostRun


def test_a_new_strategy_is_in_the_registry_the_cli_and_the_benchmark(leftmost):
    spec = StrategySpec.parse("heuristic:leftmost", entropy_cap="0.25")  # a CLI string, typed by the schema
    assert spec.build() == LeftmostRun(0.25) and spec.key == "heuristic:leftmost"
    (p,) = REGISTRY["leftmost"].params
    assert (p.name, p.type, p.low, p.high, p.symbol) == ("entropy_cap", float, 0, 5, "η")
    assert StrategySpec.from_dict({"name": "leftmost", **spec.build().params()}) == spec
    assert ("Leftmost run η", "heuristic:leftmost") in picker.strategy_choices()
    assert "heuristic:leftmost" in heuristic_choices()  # the Train tab's probe
    family = sweep_plan.family_spec("heuristic:leftmost")
    assert family == StrategySpec("leftmost")  # the Benchmark tab offers it at its defaults
    assert sweep_plan.benchmark_specs(["heuristic:leftmost"], False, 16, 16, [], []) == [family]
    assert sweep_plan.benchmark_specs(["heuristic:leftmost"], True, 16, 16, [], []) == [family]  # no grid: defaults
    parser = generate.argparse.ArgumentParser()
    dests = generate.add_strategy_flags(parser)
    assert dests["entropy_cap"] == "entropy_cap"
    assert parser.parse_args(["--entropy-cap", "1.5"]).entropy_cap == 1.5


def test_a_new_strategy_decodes_end_to_end(leftmost, tiny_backend, tiny_model_dir, tmp_path, capsys):
    out = dllm_viz.decode(tiny_backend, PROMPT, "leftmost", gen_length=16, block_length=16, entropy_cap=0.0)
    trace = out.traces[0]
    assert trace.strategy == {"name": "leftmost", "entropy_cap": 0.0}
    assert [s.committed for s in trace.steps] == [[i] for i in range(16)]  # a cap of 0: one at a time, in order
    loose = dllm_viz.decode(tiny_backend, PROMPT, "leftmost", gen_length=16, block_length=16, entropy_cap=5.0)
    assert loose.nfe[0] < 16

    saved = tmp_path / "trace.json"
    argv = ["--prompt", PROMPT, "--model", str(tiny_model_dir), "--strategy", "leftmost", "--entropy-cap", "0"]
    argv += ["--gen-length", "16", "--block-length", "16", "--save-trace", str(saved)]
    assert generate.main(argv) == 0, capsys.readouterr().err
    assert Trace.load(saved).strategy == trace.strategy and "NFE 16" in capsys.readouterr().out


PANE_SCRIPT = """
import json
from dllm_viz.strategies import HEURISTICS, REGISTRY
from recipe_strategy import LeftmostRun, registry_entry

HEURISTICS[LeftmostRun.name] = LeftmostRun  # before the app is imported, as registry.py lists it
REGISTRY[LeftmostRun.name] = registry_entry(LeftmostRun)

import gradio as gr
from dllm_viz.strategies import StrategySpec
from dllm_viz.ui.pane import StrategyPane, shown_params
from dllm_viz.ui.settings import PANE_FIELDS, PaneInputs, pane_spec

with gr.Blocks():
    pane = StrategyPane("A", StrategySpec("leftmost", {"entropy_cap": 0.25}))
(control,) = [c for c in pane.controls if c.elem_id == "entropy_cap-a"]
shown = dict(zip(PANE_FIELDS[1:], shown_params("heuristic:leftmost")))
values = [c.value for c in pane.inputs]
print(json.dumps({
    "kind": type(control).__name__, "range": [control.minimum, control.maximum], "value": control.value,
    "label": control.label, "picked": pane.strategy.value,
    "shown": sorted(k for k, v in shown.items() if v is True),
    "spec": pane_spec(PaneInputs.of(values), "A").params,
}))
"""


def test_a_new_strategy_gets_a_pane_control():
    """The app's controls are made from the registry when the app is imported, so the strategy is
    registered first in a fresh interpreter, as listing it in ``registry.py`` does."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    done = subprocess.run(
        [sys.executable, "-c", PANE_SCRIPT], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    pane = json.loads(done.stdout.splitlines()[-1])
    assert pane == {
        "kind": "Slider",
        "range": [0, 5],
        "value": 0.25,
        "label": "η (entropy_cap)",
        "picked": "heuristic:leftmost",
        "shown": ["entropy_cap"],
        "spec": {"entropy_cap": 0.25},
    }


# ---- a plot --------------------------------------------------------------------------------------


def entropy_figure(trace: Trace | None, k: int = 0) -> go.Figure:
    """Entropy of each generated position at step ``k`` (a placeholder before a run)."""
    if trace is None or not trace.num_steps:
        return placeholder_figure("entropy per position appears here", 200)
    step = trace.steps[min(k, trace.num_steps - 1)]
    return go.Figure(go.Bar(x=list(range(trace.gen_length)), y=step.entropy), layout=dict(height=200))


def render_entropy(trace: Trace | None, k: int) -> Updates:
    return {"entropy": entropy_figure(trace, k)}


@pytest.fixture(scope="module")
def small_trace(tiny_backend):
    return dllm_viz.decode(tiny_backend, PROMPT, "confidence", gen_length=8, block_length=8).traces[0]


def test_a_new_plot_is_drawn_from_a_trace_and_routed_by_name(small_trace):
    fig = entropy_figure(small_trace, 2)
    assert list(fig.data[0].y) == pytest.approx(small_trace.steps[2].entropy)
    assert entropy_figure(small_trace, 99).data[0].y == entropy_figure(small_trace, 7).data[0].y
    assert not entropy_figure(None).data  # the placeholder is an annotation

    with gr.Blocks():
        ui = Components()
        ui.add(entropy=gr.Plot(entropy_figure(None)), slider=gr.Slider(0, small_trace.num_steps, step=1))
        ui.on(ui["slider"].release, lambda k: render_entropy(small_trace, int(k)), ui["slider"], ["entropy"])
    updates = ui.keyed(lambda k: render_entropy(small_trace, k), ["entropy"])(3)
    assert list(updates) == [ui["entropy"]] and isinstance(updates[ui["entropy"]], go.Figure)


# ---- a tab ---------------------------------------------------------------------------------------


def summarize(prompt: str) -> Updates:
    """The tab's handler: a plain function of plain values, returning updates by name."""
    words = prompt.split()
    return {"status": f"{len(words)} words", "grid_s": f"<p>{' · '.join(words)}</p>"}


def build_words_tab() -> Components:
    ui = Components()
    with gr.Row():
        prompt = gr.Textbox(PROMPT, label="Prompt")
        status = gr.Markdown()
    TracePane(ui, "S", prefix="words-")
    ui.add(prompt=prompt, status=status, go=gr.Button("Count"))
    ui.on(ui.get("go", gr.Button).click, summarize, ui["prompt"], ("status", "grid_s"))
    return ui


def test_a_new_tab_builds_and_its_handler_sets_its_components_by_name():
    with gr.Blocks() as demo:
        with gr.Tabs():
            with gr.Tab("Words", id="words"):
                ui = build_words_tab()
    assert all(name in ui for name in ("prompt", "status", "go", "grid_s", "stats_s"))
    assert ui["grid_s"].elem_id == "words-grid-s"
    (event,) = [fn for fn in demo.fns.values() if fn.name == "summarize"]
    assert event.inputs == [ui["prompt"]] and event.outputs == [ui["status"], ui["grid_s"]]
    updates = event.fn("a b c")
    assert updates == {ui["status"]: "3 words", ui["grid_s"]: "<p>a · b · c</p>"}


# ---- a model family ------------------------------------------------------------------------------


class HalfPrecisionOutputBackend(MaskedLMBackend):
    """A family whose network returns its logits in half precision: the adapter hands the engine
    float32 (tokens in, logits out; ids from the tokenizer, as for every masked LM)."""

    def _forward(self, input_ids, attention_mask):
        return super()._forward(input_ids, attention_mask).half().float()


def test_a_new_model_family_loads_by_model_type_and_decodes(monkeypatch, tiny_model_dir):
    model_type = json.loads((tiny_model_dir / "config.json").read_text())["model_type"]
    monkeypatch.setitem(loading._BACKENDS_BY_MODEL_TYPE, model_type, HalfPrecisionOutputBackend)
    backend = load_backend(str(tiny_model_dir), device="cpu")
    assert type(backend) is HalfPrecisionOutputBackend and backend.mask_id == backend.tokenizer.mask_token_id
    ids = torch.tensor([backend.encode_prompt(PROMPT) + [backend.mask_id] * 4])
    logits = backend.logits(ids, None)
    assert logits.dtype == torch.float32 and logits.shape[:2] == ids.shape
    out = dllm_viz.decode(backend, PROMPT, "threshold", gen_length=8, block_length=8)
    assert out.nfe[0] >= 1 and out.traces[0].num_steps == out.nfe[0]
