"""Tables and plots of sweep results: CSV, markdown, an interactive plotly Pareto plot and a PNG."""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .sweep import SUBSETS, panels, pareto_front, subset_label, subset_of
from .targets import targets_markdown
from .world import world_markdown

logger = logging.getLogger(__name__)

# Okabe–Ito: distinguishable under the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


def write_csv(rows: Sequence[dict], path: str | Path) -> Path:
    """Every run as a CSV row; the columns are the union of the rows' keys (a merged older sweep
    lacks ``subset`` and ``open``: those cells stay empty)."""
    path = Path(path)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        writer.writeheader()
        writer.writerows(rows)
    return path


NUMERIC = {
    "block_length": int,
    "seed": int,
    "n": int,
    "accuracy": float,
    "mean_nfe": float,
    "tokens_per_step": float,
    "no_answer": float,
    "seconds": float,
}  # "correct" and "open" stay 0/1 strings


def read_runs(path: str | Path, expect_n: int, gen_length: int, open_bits: str | None = None) -> list[dict]:
    """Rows of an earlier ``runs.csv``, refused unless they used as many problems and the same L (and,
    when both sides know it, the same problems with an open amount, ``open_bits``).

    Files written before subsets existed have no ``subset`` column: their rows cover all problems
    (``subset="all"``). They record per-problem correctness but not per-problem NFE, so their
    ``free`` rows cannot be derived; they appear in the all-problem tables only (see :func:`has_free_rows`).
    """
    with Path(path).open(newline="") as fh:
        rows = [{k: NUMERIC.get(k, str)(v) for k, v in row.items()} for row in csv.DictReader(fh)]
    if not rows:
        raise ValueError(f"{path} has no runs")
    for row in rows:
        row["subset"] = subset_of(row)
        if row["subset"] not in SUBSETS:
            raise ValueError(f"{path}: subset ({row['subset']!r}) must be one of {', '.join(SUBSETS)}")
    whole = [r for r in rows if r["subset"] == "all"]
    bad = {(r["n"], round(r["tokens_per_step"] * r["mean_nfe"])) for r in whole} - {(expect_n, gen_length)}
    if bad:
        raise ValueError(
            f"{path} was measured on other problems or L (n, L = {sorted(bad)}); "
            f"this sweep uses n={expect_n}, L={gen_length}"
        )
    if open_bits is not None and any(r.get("open") and r["open"] != open_bits for r in rows):
        raise ValueError(f"{path} was measured on other problems (not the same ones leave an amount open)")
    return rows


def has_free_rows(rows: Sequence[dict]) -> bool:
    return any(subset_of(r) == "free" for r in rows)


def _front_keys(summary: Sequence[dict]) -> set[tuple]:
    """The Pareto front of each (setting, subset) over all its strategies (per strategy, every point of a
    one-point strategy would be starred)."""
    return {
        (p["setting"], subset_of(p), p["strategy"], p["params"])
        for pts in panels(summary).values()
        for p in pareto_front(pts)
    }


def markdown_table(summary: Sequence[dict]) -> str:
    """One table per setting and problem subset; ★ marks that table's Pareto front over all strategies."""
    front = _front_keys(summary)
    out = []
    for (setting, subset), rows in panels(summary).items():
        rows = sorted(rows, key=lambda r: (r["strategy"], r["mean_nfe"]))
        out += [
            f"### {setting}, {subset_label(subset, rows[0]['n'])}",
            "",
            "| strategy | parameters | accuracy % (± std over seeds) | mean NFE | tokens/step | no answer % | front |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            star = "★" if (r["setting"], subset, r["strategy"], r["params"]) in front else ""
            out.append(
                f"| {display_name(r['strategy'])} | {r['params']} | {r['accuracy']:.1f} ± {r['accuracy_std']:.1f} | "
                f"{r['mean_nfe']:.1f} | {r['tokens_per_step']:.2f} | {r['no_answer']:.1f} | {star} |"
            )
        out.append("")
    return "\n".join(out)


def display_name(strategy: str) -> str:
    """A strategy family as the app's picker names it (``threshold`` → "Fast-dLLM threshold λ",
    ``policy`` → "learned policy"); a name the registry does not know stays as it is."""
    from ..strategies import REGISTRY

    info = REGISTRY.get(strategy)
    return info.label if info else strategy


def _accuracy_range(summary: Sequence[dict]) -> list[float]:
    """A y range inside [0, 100] with a little room: never 99–101 % when every point is 100."""
    low = min((p["accuracy"] - p["accuracy_std"] for p in summary), default=0.0)
    return [max(0.0, min(low, 90.0) - 5.0), 102.0]


def _strategy_trace(pts: Sequence[dict], strategy: str, color: str, first: bool) -> go.Scatter:
    """A strategy's points: a diamond for a learned policy, a circle for a heuristic; one legend
    entry per strategy across every panel (``legendgroup``)."""
    name = display_name(strategy)
    return go.Scatter(
        x=[p["mean_nfe"] for p in pts],
        y=[p["accuracy"] for p in pts],
        mode="markers",
        marker=dict(color=color, size=9, symbol="diamond" if strategy.startswith("policy") else "circle"),
        error_y=dict(type="data", array=[p["accuracy_std"] for p in pts], visible=True, thickness=1),
        name=name,
        legendgroup=strategy,
        showlegend=first,
        cliponaxis=False,  # a point at 100 % is drawn whole
        text=[p["params"] for p in pts],
        hovertemplate="%{text}<br>NFE %{x:.1f}<br>accuracy %{y:.1f}%<extra>" + name + "</extra>",
    )


def _front_trace(front: Sequence[dict], first: bool) -> go.Scatter:
    """The panel's Pareto front over all its strategies: a dashed line through ★ rings, the same
    ★ that marks the front in the tables."""
    return go.Scatter(
        x=[p["mean_nfe"] for p in front],
        y=[p["accuracy"] for p in front],
        mode="lines+markers",
        line=dict(color="#444", width=1.5, dash="dash"),
        marker=dict(symbol="star-open", size=18, color="#444", line=dict(width=1.5)),
        name="★ Pareto front (all strategies)",
        legendgroup="front",
        showlegend=first,
        cliponaxis=False,
        hoverinfo="skip",
    )


def pareto_figure(summary: Sequence[dict], title: str = "Accuracy vs NFE") -> go.Figure:
    """One panel per setting (columns) and problem subset (rows: all, then those with an open amount):
    every point as a marker, each strategy's own front as a thin line, the panel's front over all
    strategies as ★; every strategy once in the legend, by the picker's name."""
    groups = panels(summary)
    settings = list(dict.fromkeys(s for s, _ in groups))
    subsets = [s for s in SUBSETS if any(k[1] == s for k in groups)]
    strategies = list(dict.fromkeys(r["strategy"] for r in summary))
    titles = [
        f"{setting}, {subset_label(subset, groups[setting, subset][0]['n'])}" if (setting, subset) in groups else ""
        for subset in subsets
        for setting in settings
    ]
    fig = make_subplots(rows=len(subsets), cols=len(settings), subplot_titles=titles, shared_yaxes=True)
    shown: set[str] = set()
    for (setting, subset), rows in groups.items():
        row, col = subsets.index(subset) + 1, settings.index(setting) + 1
        for i, strategy in enumerate(strategies):
            pts = [r for r in rows if r["strategy"] == strategy]
            if not pts:
                continue
            color, own = PALETTE[i % len(PALETTE)], pareto_front(pts)
            fig.add_trace(_strategy_trace(pts, strategy, color, strategy not in shown), row=row, col=col)
            shown.add(strategy)
            if len(own) > 1:
                line = dict(color=color, width=1)
                own_front = go.Scatter(
                    x=[p["mean_nfe"] for p in own],
                    y=[p["accuracy"] for p in own],
                    mode="lines",
                    line=line,
                    legendgroup=strategy,
                    showlegend=False,
                    hoverinfo="skip",
                )
                fig.add_trace(own_front, row=row, col=col)
        fig.add_trace(_front_trace(pareto_front(rows), "front" not in shown), row=row, col=col)
        shown.add("front")
        fig.update_xaxes(title_text="mean NFE (forward passes per answer)", type="log", row=row, col=col)
    for row in range(1, len(subsets) + 1):
        fig.update_yaxes(title_text="accuracy %", row=row, col=1)
    fig.update_yaxes(range=_accuracy_range(summary))
    fig.update_layout(
        title=title,
        template="plotly_white",
        height=480 * len(subsets),
        width=560 * len(settings),
        legend=dict(orientation="h", yanchor="top", y=-0.15, xanchor="left", x=0),
    )
    return fig


def write_png(fig: go.Figure, path: str | Path) -> Path:
    """``fig`` as a PNG, the same plotly figure as the HTML, rendered by kaleido in headless Chrome/Chromium.

    kaleido (>= 1, in requirements.txt) finds Debian's ``/usr/bin/chromium`` on the PATH, or the
    browser named by ``BROWSER_PATH``; it uses the plotly.js of the installed plotly, so no network.

    Raises:
        RuntimeError: no kaleido, or no Chrome/Chromium for it to drive (the message says which).
    """
    try:
        fig.write_image(path, scale=1.5)
    except Exception as err:  # kaleido drives an external browser: whatever fails there, name it plainly
        raise RuntimeError(
            f"{Path(path).name} not written: kaleido could not render it ({type(err).__name__}: "
            f"{str(err).strip().splitlines()[0] if str(err).strip() else 'no message'}). It needs "
            "Chrome or Chromium: apt-get install chromium, or set BROWSER_PATH"
        ) from err
    return Path(path)


def write_report(
    rows: Sequence[dict], summary: Sequence[dict], out_dir: str | Path, title: str, command: str, png: bool = True
) -> dict[str, Path]:
    """CSV of every run, markdown table, a self-contained interactive HTML and (with ``png``) a PNG.

    A PNG that cannot be rendered (no Chrome/Chromium) is logged as a warning and left out of the
    returned paths: the sweep behind the report may have taken an hour, and the HTML shows the
    same plot. A stale ``pareto.png`` from an earlier report in ``out_dir`` is removed first.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"csv": write_csv(rows, out_dir / "runs.csv")}
    gen_length = round(rows[0]["tokens_per_step"] * rows[0]["mean_nfe"])
    md = (
        f"# {title}\n\nProduced by:\n\n```\n{command}\n```\n\n{markdown_table(summary)}\n"
        f"{world_markdown([r for r in summary if subset_of(r) == 'all'], gen_length)}\n{targets_markdown(summary)}"
    )
    (out_dir / "results.md").write_text(md)
    paths["md"] = out_dir / "results.md"
    fig = pareto_figure(summary, title)
    # plotly.js embedded (~4.7 MB), not loaded from a CDN: the file opens offline and stays readable.
    fig.write_html(out_dir / "pareto.html", include_plotlyjs=True)
    paths["html"] = out_dir / "pareto.html"
    (out_dir / "pareto.png").unlink(missing_ok=True)
    if png:
        try:
            paths["png"] = write_png(fig, out_dir / "pareto.png")
        except RuntimeError as err:
            logger.warning("%s", err)
    return paths
