"""Evaluation: strategy sweeps (accuracy vs NFE), Pareto fronts, tables and plots."""

from .report import markdown_table, pareto_figure, write_report
from .sweep import StrategySpec, heuristic_grid, pareto_front, policy_grid, summarize, sweep

__all__ = [
    "StrategySpec",
    "heuristic_grid",
    "markdown_table",
    "pareto_figure",
    "pareto_front",
    "policy_grid",
    "summarize",
    "sweep",
    "write_report",
]
