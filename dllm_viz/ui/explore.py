"""The Explore tab: step into a decode, override a decision, and watch both futures.

Run a decode (or load a trace or tree), pick a step with the slider, click a position in either
grid, choose to force it (with a token from the model's top-k or one you name), hold it back or
re-mask it, and ↳ Branch: the decode continues from that state with the same or another strategy,
and the branch appears beside the decode it came from, the divergence marked, both answers
checked, NFE compared. Branches branch again; the tree exports as one file that loads back here.
The model side (jobs, files, the ``/branch`` endpoint) is in :mod:`.exploration`. Functions first
(rendering, handlers), then layout and wiring in :func:`build_explore_tab`.
"""

from __future__ import annotations

import time

import gradio as gr

from ..branch import MAX_OVERRIDES, lacks_random_state, parse_overrides
from ..inspector import inspect_step, step_inputs
from ..strategies import POLICY, StrategySpec, resolve_policy
from ..trace import Trace
from ..tree import DecodeTree
from ..views import legend_html, render_grid, stats_html
from ..views.explore import (
    branch_point_html,
    empty_branch_html,
    inspector_html,
    node_label,
    pending_html,
    token_choices,
)
from . import runtime
from .compare import model_picker, pane_controls, pane_values, render_plots
from .compare import render_panes as compare_panes
from .errors import shown, user_errors
from .examples import example_problems, known_answer
from .exploration import Exploration, Job, branch_api, check_branch, decode, load_tree, spec_of
from .files import content_folder, digest_of
from .session import new_run_id
from .settings import PaneInputs, engine_config, pane_spec, prompt_text, text

SESSION_TTL_S = 1800
STATUS_INTERVAL_S = 0.5
SAME, OTHER = "the strategy of the decode it branches from", "another strategy (below)"
ACTION_LABELS = {"force-commit it": "force", "hold it back this step": "hold", "re-mask it": "remask"}
# A click on a token of either grid: the pane's node and the token's position go to Python.
PICK_JS = """element.addEventListener('click', (e) => {
  const tok = e.target.closest('.dv-tok'), pane = e.target.closest('[data-node]');
  if (tok && pane && tok.dataset.pos !== undefined) trigger('pick', {node: +pane.dataset.node, pos: +tok.dataset.pos});
});"""


# ---- rendering -----------------------------------------------------------------------------------------


def render_panes(exp: Exploration | None, k: int) -> tuple:
    """Grids, stats, heatmaps and curves of the shown pair at step ``k``; each grid knows its node."""
    if exp is None:
        return (
            render_grid(None, 0),
            empty_branch_html(),
            stats_html(None, 0),
            stats_html(None, 0, pane="b"),
            *render_plots(None, 0),
        )
    comp = exp.comparison()
    left, right = exp.pair()
    grid_a, grid_b, stats_a, stats_b = compare_panes(comp, k)
    grid_a = f'<div class="ex-pane" data-node="{left.id}">{grid_a}</div>'
    grid_b = f'<div class="ex-pane" data-node="{right.id}">{grid_b}</div>' if right else empty_branch_html()
    return (grid_a, grid_b, stats_a, stats_b, *render_plots(comp, k))


def inspector(exp: Exploration | None, k: int) -> str:
    """The step inspector at step ``k`` of the branch-point node, for the picked position."""
    if exp is None:
        return inspector_html(None, 0)
    node = exp.tree.node(exp.source)
    if not 1 <= k <= node.trace.num_steps:
        return inspector_html(None, k, note="Pick a step ≥ 1: the inspector explains the decision that produced it.")
    inputs = step_inputs(node.trace, k - 1)
    spec = spec_of(exp, node)
    if spec is None or spec.name != POLICY:
        return inspector_html(
            node.trace,
            k,
            node.id,
            inputs,
            position=exp.position,
            note=f"Node {node.id} ran a heuristic rule over these inputs; attributions are for "
            "learned policies (run or branch with one).",
        )
    try:
        net = runtime.get_policy_net(resolve_policy(str(spec.policy)), "cpu")
        attribution = inspect_step(
            net, node.trace, k - 1, spec.params.get("temperature", 1.0), spec.params.get("beta", 1.0)
        )
    except (ValueError, OSError) as err:
        return inspector_html(node.trace, k, node.id, inputs, position=exp.position, note=f"No attributions: {err}")
    return inspector_html(node.trace, k, node.id, inputs, attribution, exp.position)


def _tree_radio(exp: Exploration | None):
    if exp is None:
        return gr.Radio(choices=[], value=None)
    comp = exp.comparison()
    choices = [(node_label(exp.tree, n, comp.verdict(n.trace)), str(n.id)) for n in exp.tree.ordered()]
    return gr.Radio(choices=choices, value=str(exp.selected))


def pick_outputs(exp: Exploration | None, k: int) -> tuple:
    """(branch point, token choices, inspector, position box) for the current pick at step ``k``."""
    node = exp.tree.node(exp.source) if exp else None
    position = exp.position if exp else None
    return (
        branch_point_html(node, k, position),
        gr.Dropdown(choices=token_choices(node, k, position), value="", allow_custom_value=True),
        inspector(exp, k),
        gr.Number(value=position),
    )


def _steps(exp: Exploration | None) -> int:
    if exp is None:
        return 0
    return max(n.trace.num_steps for n in exp.pair() if n is not None)


def view(exp: Exploration | None, k: int) -> tuple:
    """Every view output (``VIEW`` in :func:`build_explore_tab`) at step ``k``."""
    n = _steps(exp)
    k = max(0, min(int(k), n))
    pending = pending_html(exp.pending, exp.tree.node(exp.source).trace) if exp else pending_html([], None)
    return (
        *render_panes(exp, k),
        _tree_radio(exp),
        gr.Slider(minimum=0, maximum=max(n, 1), value=k),
        pending,
        *pick_outputs(exp, k),
    )


VIEW_SIZE = 14  # outputs of view()


def status_of(exp: Exploration, what: str) -> str:
    """ "<what> · diverge at step d · original ✓ NFE 9 · branch ✗ NFE 8 #run"."""
    comp = exp.comparison()
    parts = []
    for name, trace in (("original" if comp.b else "run", comp.a), ("branch", comp.b)):
        if trace is not None:
            verdict = comp.verdict(trace)
            mark = "" if verdict is None or verdict.correct is None else ("✓ " if verdict.correct else "✗ ")
            parts.append(f"{name} {mark}NFE {trace.nfe}")
    if comp.divergence:
        parts.insert(0, f"diverge at step {comp.divergence}")
    elif comp.b is not None:
        parts.insert(0, "no divergence: the branch decodes exactly as the original")
    return f"{what} · {' · '.join(parts)} #{exp.run_id}"


# ---- handlers ----------------------------------------------------------------------------------------------


def _frame(exp: Exploration, k: int, status: str) -> tuple:
    return (*view(exp, k), status, exp, export_tree(exp))


def _status_only(status: str) -> tuple:
    return (gr.skip(),) * VIEW_SIZE + (status, gr.skip(), gr.skip())


def _stream(model: str, job: Job, what: str, run_id: str):
    """Status frames while ``job`` decodes; returns its trace."""
    last, trace = 0.0, None
    for item in decode(model, job):
        if isinstance(item, Trace):
            trace = item
        elif time.monotonic() - last >= STATUS_INTERVAL_S:
            last = time.monotonic()
            yield _status_only(f"{what} · step {job.k + item} #{run_id}")
    if trace is None:
        raise RuntimeError("the decode ended without a trace")
    return trace


def run_explore(model, prompt, gen_length, block_length, full_diffusion, temperature, seed, *pane):
    """▶ Run: decode the prompt from scratch into a new tree (this run is its node 0)."""
    try:
        with user_errors("Cannot start the decode"):
            model = runtime.check_model_runnable(model or runtime.default_model())
            prompt = prompt_text(prompt)
            config = engine_config(gen_length, block_length, full_diffusion, temperature, seed)
            spec = pane_spec(PaneInputs.of(pane), "R")
    except gr.Error as err:
        yield _status_only(f"error: {err.message}")
        raise
    exp = Exploration(new_run_id(), DecodeTree(expected=known_answer(prompt)))
    yield _status_only(f"decoding… #{exp.run_id}")
    try:
        with user_errors("The decode failed"):
            trace = yield from _stream(model, Job(spec, prompt=prompt, config=config), "decoding", exp.run_id)
            exp.tree.add(trace, label=runtime.pane_title(spec))
            exp.specs[0] = spec
    except gr.Error as err:
        yield _status_only(f"error: {err.message} #{exp.run_id}")
        raise
    yield _frame(exp, _steps(exp), status_of(exp, f"done · node 0: {trace.num_steps} steps"))


def branch_explore(exp: Exploration | None, model, k, mode, *pane):
    """↳ Branch: continue the branch-point node after step ``k`` with the pending overrides."""
    try:
        with user_errors("Cannot branch"):
            if exp is None:
                raise ValueError("run a decode (or load one) first")
            model = runtime.check_model_runnable(model or runtime.default_model())
            source = exp.tree.node(exp.source)
            spec = pane_spec(PaneInputs.of(pane), "C") if mode == OTHER else spec_of(exp, source)
            job = check_branch(exp, model, source.id, k, exp.pending, spec)
    except gr.Error as err:
        yield _status_only(f"error: {err.message}")
        raise
    what = f"branching from node {source.id} after step {job.k}"
    yield _status_only(f"{what}… #{exp.run_id}")
    try:
        with user_errors("The branch failed"):
            trace = yield from _stream(model, job, what, exp.run_id)
            node = exp.tree.add(trace, parent=source.id, label=runtime.pane_title(spec))
    except gr.Error as err:
        yield _status_only(f"error: {err.message} #{exp.run_id}")
        raise
    exp.specs[node.id] = spec
    exp.selected = exp.source = node.id
    exp.pending, exp.position = [], None
    status = status_of(exp, f"branched · node {node.id} from node {source.id} after step {job.k}")
    if lacks_random_state(source.trace):
        status += " · note: the original kept no random state, so the branch drew a fresh random stream"
    yield _frame(exp, _steps(exp), status)


def select_node(choice, k, exp: Exploration | None):
    """Show a node of the tree beside its parent; it becomes the branch point."""
    if exp is None or choice in (None, ""):
        return (gr.skip(),) * VIEW_SIZE + (gr.skip(),)
    with user_errors("Cannot show that decode"):
        node = exp.tree.node(int(text("node", str(choice), 8)))
    exp.selected = exp.source = node.id
    exp.position = None
    return (*view(exp, int(k or 0)), exp)


def replay(k, exp: Exploration | None):
    """Show step ``k`` in both panes, with the pick, its token choices and the inspector at that step."""
    k = int(k or 0)
    return (*render_panes(exp, k), *pick_outputs(exp, k)[:3])


def pick(exp: Exploration | None, k, node, position):
    """A click on a grid cell (``node``, ``position``) or a typed position (``node`` None: the current one)."""
    if exp is None:
        return (gr.skip(),) * 4 + (exp,)
    with user_errors("Cannot pick that position"):
        if node is not None and (isinstance(node, bool) or not isinstance(node, int)):
            raise ValueError(f"node {shown(node)} must be a node id")
        target = exp.tree.node(exp.source if node is None else node)
        if position in (None, ""):
            position = None
        else:
            position = parse_overrides([{"position": position, "action": "hold"}], target.trace.gen_length)[0].position
        exp.source, exp.position = target.id, position
    return (*pick_outputs(exp, int(k or 0)), exp)


def on_grid_click(exp: Exploration | None, k, evt: gr.EventData):
    data = getattr(evt, "_data", None) or {}
    return pick(exp, k, data.get("node"), data.get("pos"))


def parse_token(value, trace: Trace) -> int | None:
    """The token field: empty (the model's own choice), ``id:N`` (a top-k choice or a typed id), or
    a token's text as this run's vocabulary spells it."""
    value = text("token", "" if value is None else str(value), 80).strip()
    if not value:
        return None
    if value.startswith("id:"):
        try:
            return int(value[3:])
        except ValueError:
            raise ValueError(f"token {shown(value)} must be id:<number>") from None
    matches = sorted(int(i) for i, s in trace.vocab.items() if s == value or s.strip() == value)
    if not matches:
        raise ValueError(f"token {shown(value)} is not one this run has seen; give its id as id:<number>")
    return matches[0]


def add_override(exp: Exploration | None, position, action, token):
    """+ Add: queue an override for the next ↳ Branch (checked against the state when branching)."""
    if exp is None:
        return gr.skip(), exp
    with user_errors("Cannot add that override"):
        if action not in ACTION_LABELS:
            raise ValueError(f"action {shown(action)} must be one of {', '.join(ACTION_LABELS)}")
        action = ACTION_LABELS[action]
        trace = exp.tree.node(exp.source).trace
        if position in (None, ""):
            raise ValueError("click a position in a grid first (or type its number)")
        token = parse_token(token, trace) if action == "force" else None
        o = parse_overrides([{"position": position, "action": action, "token": token}], trace.gen_length)[0]
        pending = [p for p in exp.pending if (p["position"], p["action"]) != (o.position, o.action)]
        if len(pending) >= MAX_OVERRIDES:
            raise ValueError(f"a branch takes at most {MAX_OVERRIDES} overrides")
        exp.pending = pending + [o.to_dict()]
    return pending_html(exp.pending, trace), exp


def clear_overrides(exp: Exploration | None):
    if exp is None:
        return gr.skip(), exp
    exp.pending = []
    return pending_html([], None), exp


def export_tree(exp: Exploration | None):
    """The tree as one JSON file (written once per content, in the app's bounded export folder)."""
    if exp is None or not exp.tree.nodes:
        return gr.DownloadButton(interactive=False)
    data = exp.tree.to_json().encode("utf-8", "replace")
    key = digest_of(data)
    folder = content_folder("tree", key, lambda f: (f / f"tree-{key[:8]}.json").write_bytes(data))
    return gr.DownloadButton(value=str(folder / f"tree-{key[:8]}.json"), interactive=True)


def load_explore(path: str | None):
    """Load a tree file, or a trace / comparison file (its runs become the roots), to explore."""
    if not path:
        yield (gr.skip(),) * (VIEW_SIZE + 3)
        return
    try:
        with user_errors("Cannot load this file"):
            exp = Exploration(new_run_id(), load_tree(path))
    except gr.Error as err:
        yield _status_only(f"error: {err.message}")
        raise
    yield _frame(exp, _steps(exp), status_of(exp, f"loaded · {len(exp.tree.nodes)} decode(s)"))


# ---- layout and wiring -------------------------------------------------------------------------------------


def build_explore_tab() -> None:
    """Components and events of the Explore tab (call inside ``gr.Blocks`` / ``gr.Tab``)."""
    state = gr.State(None, time_to_live=SESSION_TTL_S)
    problems = example_problems()
    default_run, _ = runtime.default_strategies()
    with gr.Row():
        with gr.Column(scale=3):
            prompt = gr.Textbox(problems[0].question if problems else "", label="Prompt", lines=2, elem_id="ex-prompt")
            pane_r = pane_controls("R", pane_values(default_run))
            pane_r[0].label = "Strategy of the run"
        with gr.Column(scale=2):
            model = model_picker("ex-model")
            with gr.Row():
                gen_length = gr.Number(32, precision=0, label="gen length L", minimum=1, elem_id="ex-gen-length")
                block_length = gr.Number(8, precision=0, label="block length BL", minimum=1, elem_id="ex-block-length")
            with gr.Row():
                full = gr.Checkbox(False, label="full diffusion (BL = L)", elem_id="ex-full")
                temperature = gr.Slider(
                    0.0, 2.0, value=0.0, step=0.05, label="token temperature", elem_id="ex-temperature"
                )
                seed = gr.Number(0, precision=0, label="seed", elem_id="ex-seed")
    with gr.Row():
        run_btn = gr.Button("▶ Run", variant="primary", elem_id="ex-run", scale=1)
        stop_btn = gr.Button("■ Stop", variant="stop", elem_id="ex-stop", scale=0, min_width=110)
        status = gr.Textbox("idle", label="Status", interactive=False, elem_id="ex-status", scale=5)
    with gr.Row(equal_height=False):
        with gr.Column(scale=2):
            tree = gr.Radio(
                [], label="Decodes (a run and its branches; pick one to show it beside its parent)", elem_id="ex-tree"
            )
            slider = gr.Slider(
                0, 1, value=0, step=1, label="Step (both panes; the branch point)", elem_id="ex-step", buttons=[]
            )
        with gr.Column(scale=3):
            point = gr.HTML(branch_point_html(None, 0, None), elem_id="ex-point")
            with gr.Row():
                position = gr.Number(None, precision=0, label="position (click a token)", minimum=0, elem_id="ex-pos")
                action = gr.Radio(list(ACTION_LABELS), value="force-commit it", label="do", elem_id="ex-action")
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
                mode = gr.Radio([SAME, OTHER], value=SAME, label="continue with", elem_id="ex-continue", scale=3)
                branch_btn = gr.Button("↳ Branch", variant="primary", elem_id="ex-branch", scale=1)
            pending = gr.HTML(pending_html([], None), elem_id="ex-pending")
    with gr.Accordion("Another strategy for the branch", open=False):
        pane_c = pane_controls("C", pane_values(StrategySpec("confidence")))
        pane_c[0].label = "Strategy of the branch (with 'continue with: another strategy')"
    with gr.Row(equal_height=False):
        with gr.Column():
            grid_a = gr.HTML(render_grid(None, 0), js_on_load=PICK_JS, elem_id="ex-grid-a")
            stats_a = gr.HTML(stats_html(None, 0), elem_id="ex-stats-a")
        with gr.Column():
            grid_b = gr.HTML(empty_branch_html(), js_on_load=PICK_JS, elem_id="ex-grid-b")
            stats_b = gr.HTML(stats_html(None, 0, pane="b"), elem_id="ex-stats-b")
    gr.HTML(legend_html())
    with gr.Accordion("Step inspector: why the policy unmasked what it did", open=True):
        inspect = gr.HTML(inspector_html(None, 0), elem_id="ex-inspector")
    with gr.Row():
        heat_a = gr.Plot(show_label=False, elem_id="ex-heat-a")
        heat_b = gr.Plot(show_label=False, elem_id="ex-heat-b")
    curves = gr.Plot(show_label=False, elem_id="ex-curves")
    with gr.Row():
        download = gr.DownloadButton("⬇ Tree (JSON)", interactive=False, elem_id="ex-dl-tree")
        upload = gr.File(
            file_types=[".json"], type="filepath", label="Explore a tree, trace or comparison file", elem_id="ex-upload"
        )

    panes = [grid_a, grid_b, stats_a, stats_b, heat_a, heat_b, curves]
    picks = [point, token, inspect, position]
    VIEW = [*panes, tree, slider, pending, *picks]
    assert len(VIEW) == VIEW_SIZE
    model_event = dict(concurrency_limit=runtime.MODEL_CONCURRENCY, concurrency_id="model", show_progress="hidden")
    run_event = run_btn.click(
        run_explore,
        [model, prompt, gen_length, block_length, full, temperature, seed, *pane_r],
        [*VIEW, status, state, download],
        api_name="explore",
        **model_event,
    )
    branch_event = branch_btn.click(
        branch_explore,
        [state, model, slider, mode, *pane_c],
        [*VIEW, status, state, download],
        api_visibility="private",
        **model_event,
    )
    stop_btn.click(None, None, None, cancels=[run_event, branch_event], queue=False, api_visibility="private")
    tree.input(select_node, [tree, slider, state], [*VIEW, state], api_visibility="private", show_progress="hidden")
    gr.on(
        [slider.release, slider.input],
        replay,
        [slider, state],
        [*panes, *picks[:3]],
        api_visibility="private",
        show_progress="hidden",
        trigger_mode="always_last",
    )
    for grid in (grid_a, grid_b):
        grid.pick(on_grid_click, [state, slider], [*picks, state], api_visibility="private", show_progress="hidden")
    position.submit(
        lambda exp, k, p: pick(exp, k, None, p),
        [state, slider, position],
        [*picks, state],
        api_visibility="private",
        show_progress="hidden",
    )
    add_btn.click(add_override, [state, position, action, token], [pending, state], api_visibility="private")
    clear_btn.click(clear_overrides, state, [pending, state], api_visibility="private")
    full.change(
        lambda f, L: gr.Number(value=L, interactive=False) if f else gr.Number(interactive=True),
        [full, gen_length],
        block_length,
        queue=False,
        api_visibility="private",
    )
    upload.upload(
        load_explore, upload, [*VIEW, status, state, download], api_visibility="private", show_progress="hidden"
    )
    gr.api(branch_api, api_name="branch", **{k: v for k, v in model_event.items() if k != "show_progress"})
