"""Compare GRPO runs side by side: held-out evaluations as a table, training curves overlaid.

    python -m dllm_viz.rl.compare_runs outputs/policies/full-a3 outputs/policies/full-a3-paperlr \\
        --labels "lr 3e-4, warmup 5" "lr 3e-5, warmup 100 (paper)" --out docs/results/lr-schedules.png

Reads only what ``python -m dllm_viz.rl.train`` wrote (``metrics.jsonl``, ``run_config.json``), so the
comparison is of measured runs; the table covers the iterations every run reached.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from ..outputs import check_destination, check_input

if TYPE_CHECKING:
    import plotly.graph_objects as go

COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7")
CURVES = (
    ("reward", "training reward"),
    ("nfe", "training NFE"),
    ("mean_unmask_prob", "mean unmask probability"),
    ("heldout_reward", "held-out reward"),
)


def read_metrics(run_dir: Path) -> list[dict]:
    check_input(run_dir, "run folder", kind="folder")
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        raise ValueError(f"{run_dir} holds no metrics.jsonl (not a python -m dllm_viz.rl.train run folder)")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not rows:
        raise ValueError(f"{path} has no iterations")
    return rows


def heldout_table(runs: dict[str, list[dict]]) -> str:
    """Markdown: held-out reward / correct / NFE per evaluation, for the iterations every run reached."""
    last = min(rows[-1]["iteration"] for rows in runs.values())
    held = {label: {r["iteration"]: r for r in rows if "heldout_reward" in r} for label, rows in runs.items()}
    iterations = sorted(set.intersection(*(set(h) for h in held.values())))
    iterations = [i for i in iterations if i <= last]
    out = [
        "| rollout batch | " + " | ".join(f"{label}: held-out reward (correct, NFE)" for label in runs) + " |",
        "|---" * (len(runs) + 1) + "|",
    ]
    for i in iterations:
        cells = [
            f"{held[label][i]['heldout_reward']:.3f} ({held[label][i]['heldout_correct']:.2f}, "
            f"{held[label][i]['heldout_nfe']:.1f})"
            for label in runs
        ]
        out.append(f"| {i + 1} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def curves_layout(fig: go.Figure) -> go.Figure:
    """The layout of a row of per-batch training curves (cards and run comparisons look alike)."""
    fig.update_xaxes(title_text="rollout batch")
    fig.update_layout(
        template="plotly_white",
        height=300,
        width=1250,
        margin=dict(l=40, r=20, t=40, b=40),
        legend=dict(orientation="h", y=-0.25),
    )
    return fig


def curves_figure(runs: dict[str, list[dict]]) -> go.Figure:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=len(CURVES), subplot_titles=[t for _, t in CURVES], horizontal_spacing=0.06)
    for (label, rows), colour in zip(runs.items(), COLOURS, strict=False):
        for col, (key, _) in enumerate(CURVES, start=1):
            pts = [r for r in rows if key in r]
            fig.add_trace(
                go.Scatter(
                    x=[r["iteration"] + 1 for r in pts],
                    y=[r[key] for r in pts],
                    name=label,
                    mode="lines+markers" if key.startswith("heldout") else "lines",
                    line=dict(color=colour, width=1.5),
                    showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
    return curves_layout(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dllm_viz.rl.compare_runs", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders written by python -m dllm_viz.rl.train")
    parser.add_argument("--labels", nargs="+", default=None, help="one label per run (default: folder names)")
    parser.add_argument("--out", type=Path, default=None, help="also draw the curves into this PNG")
    parser.add_argument("--force", action="store_true", help="overwrite --out")
    args = parser.parse_args(argv)
    try:
        labels = args.labels or [p.name for p in args.runs]
        if len(labels) != len(args.runs) or len(set(labels)) != len(labels):
            raise ValueError(f"give one distinct label per run ({len(args.runs)} runs, {len(labels)} labels)")
        if len(args.runs) > len(COLOURS):
            raise ValueError(f"compare at most {len(COLOURS)} runs at once")
        if args.out is not None:
            check_destination(args.out, kind="file", force=args.force, hint="pass --force to overwrite it")
        runs = {label: read_metrics(path) for label, path in zip(labels, args.runs, strict=True)}
        print(heldout_table(runs))
        if args.out is not None:
            from ..eval.report import write_png

            print(write_png(curves_figure(runs), args.out))
    except (OSError, ValueError, RuntimeError) as err:
        parser.exit(2, f"error: {err}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
