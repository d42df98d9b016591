"""The Explore tab: step into a decode, override a decision, and watch both futures.

Run a decode (or load a trace or tree), pick a step with the slider, click a position in either
grid, choose to force it (with a token from the model's top-k or one you name), hold it back or
re-mask it, and ↳ Branch: the decode continues from that state with the same or another strategy,
and the branch appears beside the decode it came from, the divergence marked, both answers
checked, NFE compared. Branches branch again; the tree exports as one file that loads back here.
The model side (jobs, files, the ``/branch`` endpoint) is in :mod:`.exploration`; the layout and
wiring in :mod:`.explore_tab`. Handlers return :data:`~.updates.Updates` keyed by the output names
below.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr

from ..branch import MAX_OVERRIDES, lacks_random_state, parse_overrides
from ..inspector import inspect_step, step_inputs
from ..strategies import POLICY, resolve_policy
from ..trace import Trace
from ..tree import DecodeTree
from ..views import render_grid, stats_html
from ..views.explore import (
    branch_point_html,
    empty_branch_html,
    inspector_html,
    node_label,
    pending_html,
    token_choices,
)
from . import picker, runtime
from .comparison_views import render_panes as compare_panes
from .comparison_views import render_plots
from .errors import shown, user_errors
from .examples import known_answer
from .exploration import Ended, Exploration, Job, check_branch, load_tree, parse_token, spec_of, stream_job
from .explore_live import live_view
from .files import content_folder, digest_of
from .session import new_run_id
from .settings import (
    PANE_FIELDS,
    PaneInputs,
    engine_config,
    pane_signature,
    pane_spec,
    prompt_text,
    runnable_model,
    text,
)
from .stopping import BOARD, Ending, current_only
from .updates import Updates

SESSION_TTL_S = 1800
STATUS_INTERVAL_S = 0.5
SAME, OTHER = "the strategy of the decode it branches from", "another strategy (below)"
ACTION_LABELS = {"force-commit it": "force", "hold it back this step": "hold", "re-mask it": "remask"}


# Output names (the tab registers a component under each) and what each event sets.
PANES = ("grid_a", "grid_b", "stats_a", "stats_b", "heat_a", "heat_b", "curves")
PICKS = ("point", "token", "inspect", "position")
VIEW = (*PANES, "tree", "slider", "pending", *PICKS)
RUN_OUTPUTS = (*VIEW, "status", "session", "dl_tree")
SELECT_OUTPUTS = (*VIEW, "session")
REPLAY_OUTPUTS = (*PANES, *PICKS[:3])
PICK_OUTPUTS = (*PICKS, "session")
OVERRIDE_OUTPUTS = ("pending", "session")


# ---- rendering -----------------------------------------------------------------------------------------


def render_panes(exp: Exploration | None, k: int) -> Updates:
    """Grids, stats, heatmaps and curves of the shown pair at step ``k``; each grid knows its node."""
    if exp is None:
        return {
            "grid_a": render_grid(None, 0),
            "grid_b": empty_branch_html(),
            "stats_a": stats_html(None, 0),
            "stats_b": stats_html(None, 0, pane="b"),
            **render_plots(None, 0),
        }
    comp = exp.comparison()
    left, right = exp.pair()
    out = compare_panes(comp, k)
    out["grid_a"] = f'<div class="ex-pane" data-node="{left.id}">{out["grid_a"]}</div>'
    out["grid_b"] = (
        f'<div class="ex-pane" data-node="{right.id}">{out["grid_b"]}</div>' if right else empty_branch_html()
    )
    return {**out, **render_plots(comp, k)}


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


def _tree_radio(exp: Exploration | None) -> gr.Radio:
    if exp is None:
        return gr.Radio(choices=[], value=None)
    comp = exp.comparison()
    choices = [(node_label(exp.tree, n, comp.verdict(n.trace)), str(n.id)) for n in exp.tree.ordered()]
    return gr.Radio(choices=choices, value=str(exp.selected))


def pick_outputs(exp: Exploration | None, k: int) -> Updates:
    """The branch point, token choices, inspector and position box for the current pick at step ``k``."""
    node = exp.tree.node(exp.source) if exp else None
    position = exp.position if exp else None
    return {
        "point": branch_point_html(node, k, position),
        "token": gr.Dropdown(choices=token_choices(node, k, position), value="", allow_custom_value=True),
        "inspect": inspector(exp, k),
        "position": gr.Number(value=position),
    }


def _steps(exp: Exploration | None) -> int:
    if exp is None:
        return 0
    return max(n.trace.num_steps for n in exp.pair() if n is not None)


def view(exp: Exploration | None, k: int) -> Updates:
    """Every :data:`VIEW` output at step ``k``."""
    n = _steps(exp)
    k = max(0, min(int(k), n))
    pending = pending_html(exp.pending, exp.tree.node(exp.source).trace) if exp else pending_html([], None)
    return {
        **render_panes(exp, k),
        "tree": _tree_radio(exp),
        "slider": gr.Slider(minimum=0, maximum=max(n, 1), value=k),
        "pending": pending,
        **pick_outputs(exp, k),
    }


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


def _frame(exp: Exploration, k: int, status: str) -> Updates:
    return {**view(exp, k), "status": status, "session": exp, "dl_tree": export_tree(exp)}


def _ended_status(ended: Ended, run_id: str, live: Callable[[Trace], Updates]) -> Updates:
    """A Stop says (and shows) where it stopped; a run superseded by a newer one leaves the page to it."""
    if ended.why != "stopped":
        return {}
    return {**(live(ended.trace) if ended.trace else {}), "status": f"stopped at step {ended.step} #{run_id}"}


def run_explore(
    model: object,
    prompt: object,
    gen_length: object,
    block_length: object,
    full_diffusion: object,
    temperature: object,
    seed: object,
    *pane_and_key: object,
) -> Iterator[Updates]:
    """▶ Run: decode the prompt from scratch into a new tree (this run is its node 0).

    After the settings come the pane's controls (:data:`PANE_FIELDS` order) and, optionally, the
    page's run key (:mod:`.stopping`; ■ Stop ends the run between steps)."""
    ending = BOARD.start(_run_key(pane_and_key))
    settings = (model, prompt, gen_length, block_length, full_diffusion, temperature, seed)
    yield from current_only(_run(settings, pane_and_key, ending), ending)


def _run(settings: tuple, pane_and_key: tuple, ending: Callable[[], Ending]) -> Iterator[Updates]:
    model, prompt, gen_length, block_length, full_diffusion, temperature, seed = settings
    try:
        with user_errors("Cannot start the decode"):
            pane = _pane(pane_and_key)
            model = runnable_model(model)
            prompt = prompt_text(prompt)
            config = engine_config(gen_length, block_length, full_diffusion, temperature, seed)
            spec = pane_spec(PaneInputs.of(pane), "R")
    except gr.Error as err:
        yield {"status": f"error: {err.message}"}
        raise
    exp = Exploration(new_run_id(), DecodeTree(expected=known_answer(prompt)))
    yield {"status": f"decoding… #{exp.run_id}"}
    try:
        with user_errors("The decode failed"):
            job, label = Job(spec, prompt=prompt, config=config), picker.pane_title(spec)
            live = functools.partial(live_view, exp, label=label)  # the growing grid, as Compare's
            trace = yield from stream_job(model, job, "decoding", exp.run_id, ending, STATUS_INTERVAL_S, live)
            if isinstance(trace, Ended):
                yield _ended_status(trace, exp.run_id, live)
                return
            exp.tree.add(trace, label=label)
            exp.specs[0] = spec
    except gr.Error as err:
        yield {"status": f"error: {err.message} #{exp.run_id}"}
        raise
    yield _frame(exp, _steps(exp), status_of(exp, f"done · node 0: {trace.num_steps} steps"))


def _run_key(values: tuple) -> object:
    """The page's run key after one pane's controls; None when an API call leaves it out."""
    return values[len(PANE_FIELDS)] if len(values) > len(PANE_FIELDS) else None


def _pane(values: tuple) -> tuple:
    """One pane's controls, before the run key (API calls may leave the key out)."""
    n = len(PANE_FIELDS)
    if len(values) not in (n, n + 1):
        raise TypeError(f"expected the strategy's {n} values ({', '.join(PANE_FIELDS)}) and the run key")
    return values[:n]


_KEY = inspect.Parameter("run_key", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None)
run_explore.__signature__ = pane_signature(run_explore, ("",), (_KEY,))  # type: ignore[attr-defined]  # /explore's names


def branch_explore(
    exp: Exploration | None, model: object, k: float, mode: object, *pane_and_key: object
) -> Iterator[Updates]:
    """↳ Branch: continue the branch-point node after step ``k`` with the pending overrides (the
    pane's controls, then the page's run key, as for :func:`run_explore`)."""
    ending = BOARD.start(_run_key(pane_and_key))
    yield from current_only(_branch(exp, model, k, mode, pane_and_key, ending), ending)


def _branch(
    exp: Exploration | None, model: object, k: float, mode: object, pane_and_key: tuple, ending: Callable[[], Ending]
) -> Iterator[Updates]:
    try:
        with user_errors("Cannot branch"):
            pane = _pane(pane_and_key)
            if exp is None:
                raise ValueError("run a decode (or load one) first")
            model = runnable_model(model)
            source = exp.tree.node(exp.source)
            spec = pane_spec(PaneInputs.of(pane), "C") if mode == OTHER else spec_of(exp, source)
            job = check_branch(exp, model, source.id, k, exp.pending, spec)
    except gr.Error as err:
        yield {"status": f"error: {err.message}"}
        raise
    what = f"branching from node {source.id} after step {job.k}"
    yield {"status": f"{what}… #{exp.run_id}"}
    try:
        with user_errors("The branch failed"):
            label = picker.pane_title(job.spec)
            live = functools.partial(live_view, exp, label=label, parent=source)
            trace = yield from stream_job(model, job, what, exp.run_id, ending, STATUS_INTERVAL_S, live)
            if isinstance(trace, Ended):
                yield _ended_status(trace, exp.run_id, live)
                return
            node = exp.tree.add(trace, parent=source.id, label=label)
    except gr.Error as err:
        yield {"status": f"error: {err.message} #{exp.run_id}"}
        raise
    exp.specs[node.id] = job.spec
    exp.selected = exp.source = node.id
    exp.pending, exp.position = [], None
    status = status_of(exp, f"branched · node {node.id} from node {source.id} after step {job.k}")
    if lacks_random_state(source.trace):
        status += " · note: the original kept no random state, so the branch drew a fresh random stream"
    yield _frame(exp, _steps(exp), status)


def select_node(choice: object, k: float | None, exp: Exploration | None) -> Updates:
    """Show a node of the tree beside its parent; it becomes the branch point."""
    if exp is None or choice in (None, ""):
        return {}
    with user_errors("Cannot show that decode"):
        node = exp.tree.node(int(text("node", str(choice), 8)))
    exp.selected = exp.source = node.id
    exp.position = None
    return {**view(exp, int(k or 0)), "session": exp}


def replay(k: float | None, exp: Exploration | None) -> Updates:
    """Show step ``k`` in both panes, with the pick, its token choices and the inspector at that step."""
    k = int(k or 0)
    picks = pick_outputs(exp, k)
    del picks["position"]
    return {**render_panes(exp, k), **picks}


def pick(exp: Exploration | None, k: float | None, node: int | None, position: Any) -> Updates:
    """A click on a grid cell (``node``, ``position``) or a typed position (``node`` None: the current one)."""
    if exp is None:
        return {"session": exp}
    with user_errors("Cannot pick that position"):
        if node is not None and (isinstance(node, bool) or not isinstance(node, int)):
            raise ValueError(f"node {shown(node)} must be a node id")
        target = exp.tree.node(exp.source if node is None else node)
        if position in (None, ""):
            position = None
        else:
            position = parse_overrides([{"position": position, "action": "hold"}], target.trace.gen_length)[0].position
        exp.source, exp.position = target.id, position
    return {**pick_outputs(exp, int(k or 0)), "session": exp}


def on_grid_click(exp: Exploration | None, k: float | None, evt: gr.EventData) -> Updates:
    data = getattr(evt, "_data", None) or {}
    return pick(exp, k, data.get("node"), data.get("pos"))


def add_override(exp: Exploration | None, position: object, action: str, token: object) -> Updates:
    """+ Add: queue an override for the next ↳ Branch (checked against the state when branching)."""
    if exp is None:
        return {"session": exp}
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
    return {"pending": pending_html(exp.pending, trace), "session": exp}


def clear_overrides(exp: Exploration | None) -> Updates:
    if exp is None:
        return {"session": exp}
    exp.pending = []
    return {"pending": pending_html([], None), "session": exp}


def export_tree(exp: Exploration | None) -> gr.DownloadButton:
    """The tree as one JSON file (written once per content, in the app's bounded export folder)."""
    if exp is None or not exp.tree.nodes:
        return gr.DownloadButton(interactive=False)
    data = exp.tree.to_json().encode("utf-8", "replace")
    key = digest_of(data)
    folder = content_folder("tree", key, lambda f: (f / f"tree-{key[:8]}.json").write_bytes(data))
    return gr.DownloadButton(value=str(folder / f"tree-{key[:8]}.json"), interactive=True)


def load_explore(path: str | None) -> Iterator[Updates]:
    """Load a tree file, or a trace / comparison file (its runs become the roots), to explore."""
    if not path:
        yield {}
        return
    try:
        with user_errors("Cannot load this file"):
            exp = Exploration(new_run_id(), load_tree(path))
    except gr.Error as err:
        yield {"status": f"error: {err.message}"}
        raise
    yield _frame(exp, _steps(exp), status_of(exp, f"loaded · {len(exp.tree.nodes)} decode(s)"))
