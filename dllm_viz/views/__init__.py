"""Pure views of traces: HTML token grids, plotly figures, stats tables and GIF frames.

No model, no Gradio: every function takes traces (and a step) and returns a string, a figure
or an image, so each is tested on small handmade traces (tests/views/test_views.py).
"""

from .figures import Divergence, curves_figure, divergence_detail, first_divergence, has_policy_probs, heatmap_figure
from .frame import Cell, clamp_step, frame_cells
from .gif import render_frames, render_gif
from .grid import GRID_CSS, legend_html, render_grid
from .stats import STATS_CSS, Verdict, pane_numbers, stats_html

__all__ = [
    "Cell",
    "Divergence",
    "GRID_CSS",
    "STATS_CSS",
    "Verdict",
    "clamp_step",
    "curves_figure",
    "divergence_detail",
    "first_divergence",
    "frame_cells",
    "has_policy_probs",
    "heatmap_figure",
    "legend_html",
    "pane_numbers",
    "render_frames",
    "render_gif",
    "render_grid",
    "stats_html",
]
