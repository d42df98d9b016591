"""The Explore tab while a run or a branch decodes: its trace so far at its latest step, drawn by
Compare's pane views (:func:`~.comparison_views.render_panes`), the branch beside the decode it
comes from, and the slider there.

:func:`~.exploration.stream_job` calls :func:`live_view` with the trace it follows, at most once
every status interval; the heatmaps and curves are drawn once the decode ends. A grid shown here
names no node, so a click on it picks nothing: the decode is not in the tree until it ends.
"""

from __future__ import annotations

import gradio as gr

from ..trace import Trace
from ..tree import TreeNode
from ..views.explore import empty_branch_html
from .comparison_views import render_panes
from .exploration import Exploration
from .session import Comparison
from .updates import Updates


def live_view(exp: Exploration, trace: Trace, label: str, parent: TreeNode | None = None) -> Updates:
    """Grids, stats and slider of a decode in progress: ``trace`` (its steps so far, labelled as
    the node it becomes) alone, or, for a branch, beside ``parent`` at the same step."""
    title = f"node {len(exp.tree.nodes)} · {label}"  # the id the tree gives the decode when it ends
    pair: tuple[Trace, Trace | None] = (trace, None) if parent is None else (parent.trace, trace)
    labels = (title, "") if parent is None else (f"node {parent.id} · {parent.label}", title)
    comp = Comparison(exp.run_id, *pair, labels=labels, expected=exp.tree.expected, source="explore")
    k = trace.num_steps
    out = render_panes(comp, k)
    if parent is None:
        out["grid_b"] = empty_branch_html()
    out["slider"] = gr.Slider(minimum=0, maximum=max(comp.num_steps, 1), value=k)
    return out
