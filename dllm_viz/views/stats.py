"""Per-pane numbers: step, NFE, tokens per step, masks left, timing, final answer."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from ..trace import Trace
from .figures import Divergence
from .frame import clamp_step
from .glossary import STAT_INFO

SHOWN_COMMITS = 6  # tokens listed per pane in the divergence line; the rest are counted


@dataclass(frozen=True)
class Verdict:
    """The answer check of a finished run: ``correct`` is None when the prompt has no known answer."""

    answer: str
    expected: str | None = None
    correct: bool | None = None
    reason: str | None = None  # what is wrong, in the verifier's words ("4 + 3 = 8 does not hold")


def verdict_words(verdict: Verdict) -> tuple[str, str]:
    """The answer check in words, and its kind (``ok``, ``bad``, ``na``): the stats line and the GIF say the same."""
    if verdict.correct is None:
        return "na", "(no known answer for this prompt)"
    if verdict.correct:
        return "ok", "✓ correct"
    return "bad", f"✗ wrong: {verdict.reason or f'expected {verdict.expected}'}"


def pane_numbers(trace: Trace, step: int) -> dict:
    """Numbers of ``trace`` after ``step`` steps (see :mod:`dllm_viz.views.frame`)."""
    k = clamp_step(trace, step)
    shown = trace.steps[:k]
    committed = int((trace.commit_step(k) >= 0).sum())  # the canvas, not a sum of commits: a branch may re-mask
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


def _commits(pairs: tuple[tuple[int, str], ...]) -> str:
    shown = " ".join(f"«{escape(text)}»@{pos}" for pos, text in pairs[:SHOWN_COMMITS])
    more = len(pairs) - SHOWN_COMMITS
    return (shown + (f" +{more} more" if more > 0 else "")) or "nothing"


def divergence_line(divergence: Divergence, pane: str) -> str:
    """The step where this pane and the other first committed different positions, and what each
    committed there (token text @ position): the moment the two futures split."""
    other = "b" if pane == "a" else "a"
    return (
        f'<div class="dv-diverge" data-divergence="{divergence.step}"><b>⚑ first divergence: step '
        f"{divergence.step}</b> this pane committed {_commits(divergence.committed(pane))}; "
        f"{other.upper()} committed {_commits(divergence.committed(other))}</div>"
    )


def stats_html(
    trace: Trace | None,
    step: int,
    *,
    pane: str = "a",
    render_ms: float | None = None,
    verdict: Verdict | None = None,
    divergence: Divergence | None = None,
) -> str:
    """A compact table of :func:`pane_numbers`, timings, the first divergence from the other pane
    once the replay has reached it, and, once finished, the answer check."""
    if trace is None:
        return f'<div class="dv-stats" data-pane="{escape(pane)}" data-nfe="0"></div>'
    n = pane_numbers(trace, step)
    items = [
        ("step", f"{n['step']}/{n['steps']}"),
        ("NFE", str(n["nfe"])),
        ("committed this step", str(n["new"])),
        ("masks left", str(n["masks_left"])),
        ("tokens/step", f"{n['tokens_per_step']:.2f}"),
        ("model", f"{n['model_ms']:.0f} ms"),
        ("engine", f"{n['step_ms']:.0f} ms"),
    ]
    if render_ms is not None:
        items.append(("render (app, both panes)", f"{render_ms:.0f} ms"))
    chips = "".join(f'<span class="dv-stat"{_hover(k)}><b>{escape(k)}</b> {escape(v)}</span>' for k, v in items)
    answer = ""
    if n["finished"] and n["step"] == n["steps"]:
        text = verdict.answer if verdict else trace.text
        check = ""
        if verdict is not None:
            kind, words = verdict_words(verdict)
            check = f' <span class="dv-{kind}">{escape(words)}</span>'
        answer = f'<div class="dv-answer"><b>final answer</b> {escape(text or "∅")}{check}</div>'
    diverged = divergence_line(divergence, pane) if divergence is not None and n["step"] >= divergence.step else ""
    correct = "" if verdict is None or verdict.correct is None else f' data-correct="{str(verdict.correct).lower()}"'
    return (
        f'<div class="dv-stats" data-pane="{escape(pane)}" data-nfe="{n["nfe"]}" '
        f'data-step="{n["step"]}"{correct}>{chips}{diverged}{answer}</div>'
    )


def _hover(label: str) -> str:
    """A stat's explanation as its hover text (the glossary's line), or nothing."""
    return f' title="{escape(STAT_INFO[label])}"' if label in STAT_INFO else ""


STATS_CSS = """
.dv-stats { font-family: system-ui, sans-serif; font-size: 12px; display: flex; flex-wrap: wrap; gap: 4px 12px;
  padding: 4px 2px; }
.dv-stat { font-variant-numeric: tabular-nums; white-space: nowrap; }
.dv-stat b, .dv-answer b { font-weight: 500; color: #666; margin-right: 2px; }
.dv-answer { flex-basis: 100%; word-break: break-word; }
.dv-diverge { flex-basis: 100%; word-break: break-word; background: #F9ECF3; border-left: 3px solid #CC79A7;
  padding: 2px 6px; }  /* palette.DIVERGENCE, the heatmaps' divergence marker */
.dv-diverge b { color: #8E3B6A; }
.dv-ok { color: #009E73; font-weight: 600; } .dv-bad { color: #D55E00; font-weight: 600; } .dv-na { color: #777; }
"""
