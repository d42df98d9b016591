"""What a pane shows after ``k`` steps of a trace: the per-position state every view draws.

Step convention shared by all views: ``k`` counts the steps applied, from 0 (the fully
masked canvas) to ``trace.num_steps`` (the final answer). At ``k ≥ 1`` the shown beliefs are
those of step ``k`` (1-based), i.e. the forward pass whose decision produced the canvas:
positions committed at that step are "new", still-masked ones show that pass's argmax.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..trace import Trace, TraceStep


@dataclass(frozen=True)
class Cell:
    """One generated position at the shown step.

    Attributes:
        pos: 0-based position; block: its block index.
        state: "committed", "masked" (a belief exists) or "blank" (k = 0, nothing known yet).
        token_id, text: committed token, or the current argmax for a masked position.
        prob: probability of ``token_id`` at commit (committed) or now (masked).
        approx: ``prob`` is only an upper bound (a sampled token outside the stored top-k).
        commit_step: 1-based step that committed it (None while masked).
        new: committed at the shown step.
        topk: (text, prob) alternatives from the step the probabilities come from.
        eos: the token is the end-of-sequence token.
    """

    pos: int
    block: int
    state: str
    token_id: int | None = None
    text: str = ""
    prob: float = 0.0
    approx: bool = False
    commit_step: int | None = None
    new: bool = False
    topk: tuple[tuple[str, float], ...] = ()
    eos: bool = False


def clamp_step(trace: Trace, k: int) -> int:
    """``k`` limited to ``[0, trace.num_steps]`` (a pane that finished early keeps its end)."""
    return max(0, min(int(k), trace.num_steps))


def token_prob(trace: Trace, step: int, pos: int) -> tuple[float, bool]:
    """Probability of the token proposed at ``pos`` in 0-based ``step`` and whether it is approximate."""
    s = trace.steps[step]
    token = s.proposed[pos]
    for tid, p in zip(s.topk_ids[pos], s.topk_probs[pos], strict=True):
        if tid == token:
            return float(p), False
    if not s.topk_probs[pos]:
        return float(s.confidence[pos]), True
    return float(min(s.topk_probs[pos])), True  # sampled outside the top-k: below every stored prob


def frame_cells(trace: Trace, k: int) -> list[Cell]:
    """The cells of ``trace`` after ``k`` steps (see the module docstring)."""
    k = clamp_step(trace, k)
    commit = trace.commit_step(k)  # (L,) 0-based step or -1 (as of step k: a re-masked position is masked)
    current = trace.steps[k - 1] if k else None
    cells = []
    for pos in range(trace.gen_length):
        block = pos // trace.block_length
        cs = int(commit[pos])
        if 0 <= cs < k:
            s = trace.steps[cs]
            tid = int(s.proposed[pos])
            prob, approx = token_prob(trace, cs, pos)
            cells.append(
                Cell(
                    pos,
                    block,
                    "committed",
                    tid,
                    trace.token_text(tid),
                    prob,
                    approx,
                    cs + 1,
                    cs == k - 1,
                    _topk(trace, s, pos),
                    tid == trace.eos_id,
                )
            )
        elif current is not None:
            tid = int(current.topk_ids[pos][0]) if current.topk_ids[pos] else int(current.proposed[pos])
            cells.append(
                Cell(
                    pos,
                    block,
                    "masked",
                    tid,
                    trace.token_text(tid),
                    float(current.confidence[pos]),
                    topk=_topk(trace, current, pos),
                    eos=tid == trace.eos_id,
                )
            )
        else:
            cells.append(Cell(pos, block, "blank"))
    return cells


def _topk(trace: Trace, step: TraceStep, pos: int) -> tuple[tuple[str, float], ...]:
    return tuple((trace.token_text(t), float(p)) for t, p in zip(step.topk_ids[pos], step.topk_probs[pos], strict=True))


def display_text(text: str) -> str:
    """Make whitespace and empty tokens visible in one cell."""
    if text == "":
        return "∅"
    text = text.replace("\n", "⏎").replace("\t", "⇥")
    return text if text.strip() else "␣" * len(text)
