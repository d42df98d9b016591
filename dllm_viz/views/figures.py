"""Plotly figures of traces: step × position heatmaps and per-step curves.

Figures are built from numpy arrays (uint8 percentages for heatmaps: 4× smaller on the wire
than float lists and cheap to validate) with ``template="none"``. Steps are 1-based on every
axis so they match the replay slider (step k = the k-th forward pass).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from ..trace import Trace
from .frame import clamp_step
from .palette import DIVERGENCE, NEW_OUTLINE, PANE_COLOURS, plotly_colorscale

_FONT = dict(family="system-ui, sans-serif", size=11)
HEATMAP_HEIGHT, CURVES_HEIGHT = 280, 240


@dataclass(frozen=True)
class Divergence:
    """Where two runs part: the 1-based ``step`` and what each committed there, as
    ``(position, token text)`` pairs, so a viewer can say *what* differed, not only when."""

    step: int
    a: tuple[tuple[int, str], ...]
    b: tuple[tuple[int, str], ...]

    def committed(self, pane: str) -> tuple[tuple[int, str], ...]:
        return self.a if pane == "a" else self.b


def divergence_detail(a: Trace | None, b: Trace | None) -> Divergence | None:
    """:func:`first_divergence` with the tokens each run committed at that step."""
    step = first_divergence(a, b)
    if step is None or a is None or b is None:  # no step without both runs
        return None

    def commits(trace: Trace) -> tuple[tuple[int, str], ...]:
        s = trace.steps[step - 1]
        return tuple((pos, trace.token_text(s.proposed[pos])) for pos in s.committed)

    return Divergence(step, commits(a), commits(b))


def first_divergence(a: Trace | None, b: Trace | None) -> int | None:
    """1-based first step at which A and B commit different positions, or different tokens at
    the same positions (a forced or sampled token), None if never.

    Only steps both runs have are compared: identical commits give identical canvases, so
    two runs that agree on every shared step also end together.
    """
    if a is None or b is None:
        return None
    for i, (sa, sb) in enumerate(zip(a.steps, b.steps, strict=False)):
        if {p: sa.proposed[p] for p in sa.committed} != {p: sb.proposed[p] for p in sb.committed}:
            return i + 1
    return None


def _percent(matrix: np.ndarray) -> np.ndarray:
    return np.rint(np.nan_to_num(matrix, nan=0.0) * 100).clip(0, 100).astype(np.uint8)


def has_policy_probs(trace: Trace) -> bool:
    return any(s.probs is not None for s in trace.steps)


def _axis_names(i: int) -> tuple[str, str]:
    """Trace-side and layout-side names of the i-th (0-based) x axis: ("x", "xaxis"), ("x2", "xaxis2")…"""
    suffix = "" if i == 0 else str(i + 1)
    return f"x{suffix}", f"xaxis{suffix}"


def _domains(n: int, gap: float) -> list[list[float]]:
    width = (1 - gap * (n - 1)) / n
    return [[i * (width + gap), i * (width + gap) + width] for i in range(n)]


def step_ticks(n: int) -> dict:
    """Axis settings that put ticks on whole steps only (no 0.5, 1.5 on a 2-step run), ≤ ~10 of them."""
    dtick = next(d for d in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000) if n / d <= 10 or d == 1000)
    return dict(tickmode="linear", tick0=0 if dtick > 1 else 1, dtick=dtick, tickformat="d")


def placeholder_figure(text: str, height: int) -> go.Figure:
    """An empty figure that says what will appear, instead of meaningless axes."""
    hidden = dict(visible=False)
    return go.Figure(
        layout=dict(
            template="none",
            height=height,
            xaxis=hidden,
            yaxis=hidden,
            margin=dict(l=10, r=10, t=10, b=10),
            annotations=[
                dict(
                    text=text,
                    x=0.5,
                    y=0.5,
                    xref="paper",
                    yref="paper",
                    showarrow=False,
                    font=dict(size=13, color="#777"),
                )
            ],
        )
    )


def _title_annotation(text: str, domain: list[float]) -> dict:
    return dict(
        text=text,
        x=(domain[0] + domain[1]) / 2,
        y=1.0,
        xref="paper",
        yref="paper",
        yanchor="bottom",
        xanchor="center",
        showarrow=False,
        font=dict(size=11),
    )


def heatmap_figure(
    trace: Trace | None,
    step: int | None = None,
    *,
    divergence: int | None = None,
    max_steps: int | None = None,
    title: str = "",
) -> go.Figure:
    """Step × position confidence (and, for a policy, unmask probability) up to ``step``.

    Args:
        trace: the run; ``None`` gives an empty, labelled figure.
        step: steps shown (default all); rows after it are left blank.
        divergence: 1-based step where A and B first differ, drawn as a dashed line.
        max_steps: y-axis extent (default: this trace's own steps, so a short run is not squashed
            beside a long one), so a scrubbed heatmap keeps its scale.
        title: figure title.

    Markers: ``□`` at (position, step) where the position was committed (the unmask order map).
    Built with explicit axes and layout shapes (no ``make_subplots``/``add_vline``: 10× cheaper,
    which matters when frames stream).
    """
    if trace is None:
        return placeholder_figure(
            f"{title}: step × position heatmaps appear here once a run starts"
            if title
            else "step × position heatmaps appear here once a run starts",
            HEATMAP_HEIGHT,
        )
    k = trace.num_steps if step is None else clamp_step(trace, step)
    n = max(max_steps or 0, trace.num_steps, 1)
    panels = [("confidence %", trace.matrix("confidence"))]
    if has_policy_probs(trace):
        panels.append(("policy P(unmask) %", trace.matrix("probs")))
    domains = _domains(len(panels), 0.05)
    diverged = divergence if divergence is not None and divergence <= n else None
    data, shapes, annotations, layout = [], [], [], {}
    for i, (name, matrix) in enumerate(panels):
        xname, xkey = _axis_names(i)
        data += _heatmap_panel(trace, name, matrix[:k], xname)
        layout[xkey] = dict(
            domain=domains[i], range=[-0.5, trace.gen_length - 0.5], title=dict(text="position"), anchor="y"
        )
        annotations.append(_title_annotation(name, domains[i]))
        shapes += _block_lines(trace, xname)
        if diverged is not None:
            shapes.append(_divergence_line(f"{xname} domain", diverged))
    if diverged is not None:
        annotations.append(_divergence_label(diverged))
    return go.Figure(data=data, layout=_heatmap_layout(layout, title, n, shapes, annotations))


def _divergence_line(xref: str, step: int) -> dict:
    """A dashed horizontal line across a panel at the step where A and B first differ."""
    return dict(
        type="line", xref=xref, yref="y", x0=0, x1=1, y0=step, y1=step,
        line=dict(color=DIVERGENCE, width=2, dash="dash"),
    )  # fmt: skip


def _divergence_label(step: int) -> dict:
    return dict(
        x=0,
        y=step,
        xref="x",
        yref="y",
        text=f"A/B diverge at step {step}",
        showarrow=False,
        yshift=-9,
        xanchor="left",
        font=dict(color=DIVERGENCE, size=10),
        bgcolor="rgba(255,255,255,0.8)",
    )


def _heatmap_panel(trace: Trace, name: str, matrix: np.ndarray, xname: str) -> list:
    """One panel's traces: the (steps shown × L) ``matrix`` as a heatmap, and a □ where a
    position was committed within those steps."""
    k = matrix.shape[0]
    positions = np.arange(trace.gen_length, dtype=np.int32)
    commit = trace.commit_step()
    shown = (commit >= 0) & (commit < k)
    return [
        go.Heatmap(
            z=_percent(matrix),
            x=positions,
            y=np.arange(1, k + 1, dtype=np.int32),
            xaxis=xname,
            yaxis="y",
            coloraxis="coloraxis",
            hovertemplate=f"position %{{x}}<br>step %{{y}}<br>{name} %{{z}}%<extra></extra>",
        ),
        go.Scatter(
            x=positions[shown],
            y=(commit[shown] + 1).astype(np.int32),
            xaxis=xname,
            yaxis="y",
            mode="markers",
            name="commit (unmask order)",
            showlegend=False,
            marker=dict(symbol="square-open", size=6, color=NEW_OUTLINE, line=dict(width=1.5)),
            hovertemplate="committed position %{x} at step %{y}<extra></extra>",
        ),
    ]


def _block_lines(trace: Trace, xname: str) -> list[dict]:
    """Dotted vertical lines between semi-AR blocks (none for full diffusion)."""
    if trace.block_length >= trace.gen_length:
        return []
    return [
        dict(
            type="line",
            xref=xname,
            yref="paper",
            x0=b * trace.block_length - 0.5,
            x1=b * trace.block_length - 0.5,
            y0=0,
            y1=1,
            line=dict(color="#888", width=1, dash="dot"),
        )
        for b in range(1, trace.gen_length // trace.block_length)
    ]


def _heatmap_layout(axes: dict, title: str, n: int, shapes: list, annotations: list) -> dict:
    """The heatmap figure's layout around its panels' x ``axes``, ``n`` steps tall."""
    return dict(
        axes,
        template="none",
        height=HEATMAP_HEIGHT,
        font=_FONT,
        margin=dict(l=50, r=60, t=52, b=40),
        title=dict(
            text=f"{title} · □ = committed" if title else "□ = committed",
            font=dict(size=12),
            x=0,
            xanchor="left",
            y=0.98,
        ),
        modebar=dict(orientation="v"),  # a vertical toolbar on the right never covers the title
        yaxis=dict(range=[n + 0.5, 0.5], title=dict(text="step"), **step_ticks(n)),
        coloraxis=dict(
            colorscale=plotly_colorscale(),
            cmin=0,
            cmax=100,
            colorbar=dict(title=dict(text="%", side="right"), thickness=10, len=0.9),
        ),
        legend=dict(orientation="h", x=1, xanchor="right", y=1.2, yanchor="bottom", font=dict(size=10)),
        shapes=shapes,
        annotations=annotations,
    )


def curves_figure(
    panes: dict[str, Trace | None], step: int | None = None, *, divergence: int | None = None
) -> go.Figure:
    """Per-step curves for each pane: masks remaining, tokens committed per step, model ms.

    Args:
        panes: label → trace (``None`` entries are skipped); labels starting with "A"/"B" get the
            pane colours.
        step: a vertical marker at the shown step. divergence: a dashed marker at that step.
    """
    if not any(t is not None and t.num_steps for t in panes.values()):
        return placeholder_figure(
            "per-step curves (masks left, tokens per step, model time) appear here", CURVES_HEIGHT
        )
    titles = ("masks remaining", "tokens committed per step", "model ms per step")
    domains = _domains(3, 0.08)
    shown = [(label, t) for label, t in panes.items() if t is not None and t.num_steps]
    longest = max([1] + [t.num_steps for _, t in shown])
    data = [line for label, trace in shown for line in _curves(label, trace)]
    layout, shapes = _curves_axes(domains, longest, step, divergence)
    return go.Figure(
        data=data,
        layout=dict(
            layout,
            template="none",
            height=CURVES_HEIGHT,
            font=_FONT,
            margin=dict(l=45, r=40, t=40, b=40),
            shapes=shapes,
            modebar=dict(orientation="v"),
            annotations=[_title_annotation(t, d) for t, d in zip(titles, domains, strict=True)],
            legend=dict(orientation="h", x=1, xanchor="right", y=1.18, yanchor="bottom"),
        ),
    )


def _curves(label: str, trace: Trace) -> list[go.Scatter]:
    """One pane's three lines: masks remaining, tokens committed per step, model ms per step."""
    x = np.arange(1, trace.num_steps + 1, dtype=np.int32)
    per_step = np.array([len(s.committed) for s in trace.steps], dtype=np.int32)
    series = (
        (trace.gen_length - np.cumsum(per_step)).astype(np.int32),
        per_step,
        np.array([s.model_ms for s in trace.steps], dtype=np.float32),
    )
    style = dict(color=PANE_COLOURS.get(label.lower()[:1]), width=2)
    out = []
    for i, y in enumerate(series):
        xname, _ = _axis_names(i)
        out.append(
            go.Scatter(
                x=x,
                y=y,
                name=label,
                legendgroup=label,
                showlegend=i == 0,
                mode="lines",
                line=dict(style, shape="hv" if i == 1 else "linear"),
                xaxis=xname,
                yaxis=xname.replace("x", "y"),
            )
        )
    return out


def _curves_axes(
    domains: list[list[float]], longest: int, step: int | None, divergence: int | None
) -> tuple[dict, list[dict]]:
    """The three panels' axes over ``longest`` steps, and the step and divergence markers."""
    layout, shapes = {}, []
    for i, domain in enumerate(domains):
        xname, xkey = _axis_names(i)
        yname = xname.replace("x", "y")
        layout[xkey] = dict(
            domain=domain,
            anchor=yname,
            range=[0.5, longest + 0.5],
            title=dict(text="step (= NFE)"),
            **step_ticks(longest),
        )
        layout["y" + xkey[1:]] = dict(anchor=xname, rangemode="tozero")
        for at, line in (
            (step, dict(color="#555", width=1)),
            (divergence, dict(color=DIVERGENCE, width=1.5, dash="dash")),
        ):
            if at:
                shapes.append(
                    dict(type="line", xref=xname, yref=f"{yname} domain", x0=at, x1=at, y0=0, y1=1, line=line)
                )
    return layout, shapes
