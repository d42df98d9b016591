"""How a comparison looks: both panes' grids and stats, the heatmaps and curves, and the status
line (shared by the Compare and Explore tabs)."""

from __future__ import annotations

from ..views import curves_figure, divergence_detail, heatmap_figure, render_grid, stats_html
from .session import Comparison
from .updates import Updates


def render_panes(comp: Comparison | None, k: int) -> Updates:
    """Grid and stats HTML of both panes after ``k`` steps."""
    if comp is None:
        return {
            "grid_a": render_grid(None, 0, pane="a"),
            "grid_b": render_grid(None, 0, pane="b"),
            "stats_a": stats_html(None, 0),
            "stats_b": stats_html(None, 0, pane="b"),
        }
    render_ms = comp.render_ms if comp.source == "run" else None
    d = divergence_detail(comp.a, comp.b)
    return {
        "grid_a": render_grid(comp.a, k, pane="a", title=comp.labels[0]),
        "grid_b": render_grid(comp.b, k, pane="b", title=comp.labels[1]),
        "stats_a": stats_html(comp.a, k, pane="a", render_ms=render_ms, verdict=comp.verdict(comp.a), divergence=d),
        "stats_b": stats_html(comp.b, k, pane="b", render_ms=render_ms, verdict=comp.verdict(comp.b), divergence=d),
    }


def render_plots(comp: Comparison | None, k: int) -> Updates:
    """Heatmaps of A and B and the curves, up to step ``k``."""
    if comp is None:
        return {
            "heat_a": heatmap_figure(None, title="A"),
            "heat_b": heatmap_figure(None, title="B"),
            "curves": curves_figure({}),
        }
    d = comp.divergence
    return {  # each pane on its own step axis: a 9-step pane is not squashed beside a 64-step one
        "heat_a": heatmap_figure(comp.a, k, divergence=d, title=comp.labels[0]),
        "heat_b": heatmap_figure(comp.b, k, divergence=d, title=comp.labels[1]),
        "curves": curves_figure({"A": comp.a, "B": comp.b}, k, divergence=d),
    }


def status_line(comp: Comparison, k: int | None = None) -> str:
    parts = []
    for name, t in (("A", comp.a), ("B", comp.b)):
        if t is not None:
            parts.append(f"{name} {t.num_steps} steps, NFE {t.nfe}")
    if comp.divergence:
        parts.append(f"diverge at step {comp.divergence}{consequence(comp)}")
    if comp.source == "upload":
        return f"loaded trace · {' · '.join(parts)} #{comp.run_id}"
    if comp.stopped:
        return f"stopped at step {comp.num_steps} · {' · '.join(parts)} #{comp.run_id}"
    if comp.finished:
        model_ms = sum(s.model_ms for t in (comp.a, comp.b) if t for s in t.steps)
        parts += [p for p in (comp.in_words(),) if p]
        parts.append(f"model {model_ms:.0f} ms, render {comp.render_ms:.0f} ms")
        return f"done · {' · '.join(parts)} #{comp.run_id}"
    return f"running step {k if k is not None else comp.num_steps} · {' · '.join(parts)} #{comp.run_id}"


def consequence(comp: Comparison) -> str:
    """What the divergence led to once both panes finished: " → A ✓ NFE 9 · B ✗ NFE 8" (✓/✗ only
    when the prompt's answer is known)."""
    if not comp.finished or comp.a is None or comp.b is None:
        return ""
    parts = []
    for name, trace in (("A", comp.a), ("B", comp.b)):
        verdict = comp.verdict(trace)
        mark = "" if verdict is None or verdict.correct is None else ("✓ " if verdict.correct else "✗ ")
        parts.append(f"{name} {mark}NFE {trace.nfe}")
    return " → " + " · ".join(parts)
