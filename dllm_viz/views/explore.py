"""Pure views of a decode tree for the Explore tab: the node list, the pending overrides, the
branch point, the token choices for a forced commit, and the step inspector's table.

No model, no Gradio; every token string and label is HTML-escaped.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from ..trace import Trace, TraceStep
from ..tree import DecodeTree, TreeNode
from .frame import display_text, frame_cells
from .palette import PANE_COLOURS
from .stats import Verdict

if TYPE_CHECKING:
    from ..inspector import Attribution, StepInputs

ACTION_WORDS = {"force": "force", "hold": "hold back", "remask": "re-mask"}
TOP_INPUTS = 6  # inputs listed for the selected position


def override_text(o: dict, trace: Trace) -> str:
    """One override in words: "force 7 → '3'", "hold back 5", "re-mask 2"."""
    word = ACTION_WORDS.get(o["action"], o["action"])
    token = "" if o.get("token") is None else f" → {trace.token_text(o['token'])!r}"
    return f"{word} {o['position']}{token}"


def node_label(tree: DecodeTree, node: TreeNode, verdict: Verdict | None = None) -> str:
    """A line of the tree list: indentation by depth, what the node is, its answer mark and NFE."""
    depth = tree.depth(node.id)
    mark = "" if verdict is None or verdict.correct is None else (" ✓" if verdict.correct else " ✗")
    if node.parent is None:
        what = f"run · {node.label}"
    else:
        edits = ", ".join(override_text(o, node.trace) for o in node.overrides[:3]) or "no overrides"
        more = f" +{len(node.overrides) - 3}" if len(node.overrides) > 3 else ""
        what = f"↳ from {node.parent} after step {node.at_step}: {edits}{more} · {node.label}"
    return f"{'   ' * depth}{'└ ' if depth else ''}{node.id} · {what} · NFE {node.trace.nfe}{mark}"[:200]


def pending_html(overrides: list[dict], trace: Trace | None) -> str:
    """The overrides waiting for ↳ Branch, with data attributes for scripts and tests."""
    if not overrides:
        return (
            '<div class="ex-pending" data-count="0">No overrides yet: click a position in a grid, choose what to '
            "do with it, then + Add. ↳ Branch with none continues the run (with another strategy, if chosen).</div>"
        )
    items = []
    for o in overrides:
        token = "" if o.get("token") is None else f' data-token="{int(o["token"])}"'
        token_text = (
            ""
            if o.get("token") is None or trace is None
            else (f' data-token-text="{escape(trace.token_text(o["token"]), quote=True)}"')
        )
        label = override_text(o, trace) if trace is not None else f"{o['action']} {o['position']}"
        items.append(
            f'<li data-position="{int(o["position"])}" data-action="{escape(o["action"])}"{token}'
            f"{token_text}>{escape(label)}</li>"
        )
    return f'<div class="ex-pending" data-count="{len(overrides)}"><ol>{"".join(items)}</ol></div>'


def branch_point_html(node: TreeNode | None, k: int, position: int | None) -> str:
    """Where ↳ Branch will start: the node, the step, and the picked position's state."""
    if node is None:
        return '<div class="ex-point">Run a decode (or load one) to explore it.</div>'
    k = max(0, min(int(k), node.trace.num_steps))
    text = f"<b>Branch point</b>: node {node.id} after step {k} of {node.trace.num_steps}"
    if position is not None and 0 <= position < node.trace.gen_length:
        cell = frame_cells(node.trace, k)[position]
        if cell.state == "committed":
            what = f"committed {display_text(cell.text)!r} at step {cell.commit_step}"
        elif cell.state == "masked":
            what = f"masked (argmax {display_text(cell.text)!r}, p = {cell.prob:.3f})"
        else:
            what = "masked"
        text += f" · position {position}, block {cell.block}: {escape(what)}"
    return (
        f'<div class="ex-point" data-node="{node.id}" data-step="{k}" '
        f'data-position="{"" if position is None else int(position)}">{text}</div>'
    )


def token_choices(node: TreeNode | None, k: int, position: int | None) -> list[tuple[str, str]]:
    """(label, value) choices for a forced token at ``position``: the top-k alternatives the model
    saw there at step ``k`` (values ``id:N``). Empty before the first step (nothing seen yet)."""
    if node is None or position is None or not 1 <= k <= node.trace.num_steps:
        return []
    step = node.trace.steps[k - 1]
    if not 0 <= position < len(step.topk_ids):
        return []
    return [
        (f"{display_text(node.trace.token_text(t))!r} · p {p:.3f} · id {t}", f"id:{t}")
        for t, p in zip(step.topk_ids[position], step.topk_probs[position], strict=True)
    ]


def empty_branch_html() -> str:
    return (
        '<div class="dv-grid dv-empty" data-pane="b" data-step="0">The other future appears here: pick a step, '
        "click a position on the left, add an override and press ↳ Branch.</div>"
    )


def inspector_html(
    trace: Trace | None,
    k: int,
    node_id: int = 0,
    inputs: StepInputs | None = None,
    attribution: Attribution | None = None,
    position: int | None = None,
    note: str = "",
) -> str:
    """The step inspector for the decision of step ``k`` (1-based: the one that produced the canvas
    shown at ``k``): per eligible position its inputs (confidence, the masked canvas, time), the
    recorded and recomputed unmask probabilities and the input that moved its logit most; for
    ``position`` the top inputs with their signed gradient × input.

    Args:
        inputs: :class:`~dllm_viz.inspector.StepInputs` of the step (which positions were eligible).
        attribution: :class:`~dllm_viz.inspector.Attribution`, or None for a heuristic's step.
    """
    if trace is None or inputs is None or not 1 <= k <= trace.num_steps:
        text = escape(note or "Pick a step ≥ 1 to inspect its decision.")
        return f'<div class="ex-inspector" data-step="{int(k)}">{text}</div>'
    step = trace.steps[k - 1]
    head = (
        f"<b>Step {k}</b> of node {int(node_id)} · decided by {escape(str(trace.strategy.get('name', '?')))} · "
        f"time input t = NFE before the step / L = {inputs.time:.3f}"
    )
    rows = [
        _position_row(trace, step, p, attribution, picked=p == position)
        for p in range(trace.gen_length)
        if bool(inputs.eligible[p])
    ]
    table = (
        (
            '<table class="ex-table"><tr><th>pos</th><th>token</th><th>confidence</th><th>P(unmask) recorded</th>'
            "<th>recomputed</th><th>committed</th><th>input that moved its logit most (gradient × input)</th></tr>"
            + "".join(rows)
            + "</table>"
        )
        if rows
        else "<p>No eligible position at this step.</p>"
    )
    detail = ""
    if attribution is not None and position is not None and position in attribution.positions:
        detail = _attribution_detail(attribution, position)
    foot = f'<p class="ex-note">{escape(note)}</p>' if note else ""
    return f'<div class="ex-inspector" data-step="{k}">{head}{table}{detail}{foot}</div>'


def _position_row(trace: Trace, step: TraceStep, p: int, attribution: Attribution | None, picked: bool) -> str:
    """An eligible position's table row: token, confidence, recorded and recomputed P(unmask),
    whether it was committed, and the input that moved its logit most."""
    recorded = "—" if step.probs is None else f"{step.probs[p]:.3f}"
    again = "—" if attribution is None else f"{float(attribution.probs[p]):.3f}"
    top = ""
    if attribution is not None and p in attribution.positions:
        name, value = attribution.top_inputs(p, 1)[0]
        top = f"{escape(name)} ({value:+.3g})"
    chosen = ' class="ex-picked"' if picked else ""
    return (
        f'<tr data-position="{p}"{chosen}><td>{p}</td>'
        f"<td>{escape(display_text(trace.token_text(step.proposed[p])))}</td><td>{step.confidence[p]:.3f}</td>"
        f"<td>{recorded}</td><td>{again}</td><td>{'✓' if p in step.committed else ''}</td>"
        f'<td data-top-input="{escape(top, quote=True)}">{top}</td></tr>'
    )


def _attribution_detail(attribution: Attribution, position: int) -> str:
    """``position``'s top inputs with their signed gradient × input, as bars."""
    items = attribution.top_inputs(position, TOP_INPUTS)
    scale = max((abs(v) for _, v in items), default=0.0) or 1.0
    bars = "".join(
        f'<div class="ex-attr" data-input="{escape(name, quote=True)}" data-value="{value:.6g}">'
        f"<span>{escape(name)}</span>"
        f'<span class="ex-bar" style="width:{60 * abs(value) / scale:.0f}px;background:'
        f'{PANE_COLOURS["a"] if value >= 0 else PANE_COLOURS["b"]}"></span> {value:+.4g}</div>'
        for name, value in items
    )
    r = attribution.row(position)
    return (
        f'<div class="ex-detail" data-position="{position}"><b>Position {position}</b>: P(unmask) '
        f"{float(attribution.probs[position]):.4f}, logit {float(attribution.logits[position]):+.3f}. The "
        f"inputs that moved its logit most (× {float(attribution.ds_db[r]):.3g} for the probability; blue "
        f"raised it, orange lowered it):{bars}</div>"
    )


EXPLORE_CSS = """
.ex-pending, .ex-point, .ex-inspector { font-family: system-ui, sans-serif; font-size: 12px; }
.ex-pending ol { margin: 2px 0 0 18px; padding: 0; }
.ex-table { border-collapse: collapse; margin: 4px 0; font-variant-numeric: tabular-nums; }
.ex-table td, .ex-table th { border-bottom: 1px solid #ddd; padding: 1px 6px; text-align: left; }
.ex-table tr.ex-picked { background: #FFF3D6; }
.ex-attr { display: flex; gap: 6px; align-items: center; font-variant-numeric: tabular-nums; }
.ex-attr span:first-child { min-width: 11em; }
.ex-bar { display: inline-block; height: 9px; }
.ex-note { color: #666; }
.ex-pane .dv-tok { cursor: pointer; }
.ex-pane .dv-tok:hover { outline: 2px solid #0072B2; }
"""
