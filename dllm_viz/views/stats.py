"""Per-pane numbers: step, NFE, tokens per step, masks left, timing, final answer."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from ..trace import Trace
from .frame import clamp_step


@dataclass(frozen=True)
class Verdict:
    """The answer check of a finished run: ``correct`` is None when the prompt has no known answer."""

    answer: str
    expected: str | None = None
    correct: bool | None = None


def pane_numbers(trace: Trace, step: int) -> dict:
    """Numbers of ``trace`` after ``step`` steps (see :mod:`dllm_viz.views.frame`)."""
    k = clamp_step(trace, step)
    shown = trace.steps[:k]
    committed = sum(len(s.committed) for s in shown)
    return {
        "step": k,
        "steps": trace.num_steps,
        "nfe": shown[-1].nfe if shown else 0,
        "new": len(shown[-1].committed) if shown else 0,
        "masks_left": trace.gen_length - committed,
        "tokens_per_step": committed / k if k else 0.0,
        "model_ms": sum(s.model_ms for s in shown),
        "step_ms": sum(s.step_ms for s in shown),
        "finished": trace.gen_length == committed,
    }


def stats_html(trace: Trace | None, step: int, *, pane: str = "a", render_ms: float | None = None,
               verdict: Verdict | None = None) -> str:
    """A compact table of :func:`pane_numbers`, timings and, once finished, the answer check."""
    if trace is None:
        return f'<div class="dv-stats" data-pane="{escape(pane)}" data-nfe="0"></div>'
    n = pane_numbers(trace, step)
    rows = [
        ("step", f"{n['step']} / {n['steps']}"),
        ("NFE", str(n["nfe"])),
        ("committed this step", str(n["new"])),
        ("masks remaining", str(n["masks_left"])),
        ("tokens per step (mean)", f"{n['tokens_per_step']:.2f}"),
        ("model time (forward passes)", f"{n['model_ms']:.0f} ms"),
        ("engine time (incl. features, decision)", f"{n['step_ms']:.0f} ms"),
    ]
    if render_ms is not None:
        rows.append(("render time (this app)", f"{render_ms:.0f} ms"))
    if n["finished"] and n["step"] == n["steps"]:
        answer = verdict.answer if verdict else trace.text
        rows.append(("final answer", answer or "∅"))
        if verdict is not None and verdict.correct is not None:
            mark = "✓ correct" if verdict.correct else f"✗ wrong (expected {verdict.expected})"
            rows.append(("answer check", mark))
        elif verdict is not None:
            rows.append(("answer check", "no known answer for this prompt"))
    cells = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    correct = "" if verdict is None or verdict.correct is None else f' data-correct="{str(verdict.correct).lower()}"'
    return (f'<table class="dv-stats" data-pane="{escape(pane)}" data-nfe="{n["nfe"]}" '
            f'data-step="{n["step"]}"{correct}>{cells}</table>')


STATS_CSS = """
.dv-stats { font-family: system-ui, sans-serif; font-size: 12px; border-collapse: collapse; width: 100%; }
.dv-stats th { text-align: left; font-weight: 500; color: #555; padding: 1px 8px 1px 0; width: 55%; }
.dv-stats td { font-variant-numeric: tabular-nums; padding: 1px 0; word-break: break-word; }
"""
