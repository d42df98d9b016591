"""Does the unmasking decision matter in this world? The checks of a good built-in world.

A world is worth studying when careful decoding solves it, parallel decoding loses accuracy,
and the heuristics trade accuracy for NFE along a real curve, so a policy has something to
learn. Checked on a sweep summary (the heuristic grid of :func:`.sweep.heuristic_grid`):

1. careful decoding — High-Confidence-K, one token per step, semi-AR — solves ≥ 85 %;
2. one step per block (semi-AR) and everything in one step (full diffusion) each score ≥ 25
   points below it (paired 95 % interval);
3. in each setting the heuristics' Pareto front has ≥ 4 distinct points spanning ≥ 20 points.
"""

from __future__ import annotations

from collections.abc import Sequence

from .stats import paired_difference
from .sweep import pareto_front
from .targets import is_policy

CAREFUL_MIN = 85.0
PARALLEL_GAP = 25.0
FRONT_POINTS = 4
FRONT_SPAN = 20.0


def _confidence(rows: Sequence[dict], setting: str, steps: int) -> dict | None:
    return next(
        (
            r
            for r in rows
            if r["setting"] == setting and r["strategy"] == "confidence" and r["params"] == f"steps={steps}"
        ),
        None,
    )


def heuristic_front(rows: Sequence[dict], setting: str) -> list[dict]:
    """The Pareto front over every heuristic of one setting, distinct (NFE, accuracy) points only."""
    points = [r for r in rows if r["setting"] == setting and not is_policy(r)]
    distinct, seen = [], set()
    for p in pareto_front(points):
        key = (round(p["mean_nfe"], 2), round(p["accuracy"], 2))
        if key not in seen:
            seen.add(key)
            distinct.append(p)
    return distinct


def check_world(summary: Sequence[dict], gen_length: int) -> dict:
    """The three checks on a summary holding a semi-AR and a full-diffusion heuristic sweep."""
    semi = next((s for s in dict.fromkeys(r["setting"] for r in summary) if s.startswith("semi-AR")), None)
    full = "full diffusion"
    lines, met = [], True
    careful = _confidence(summary, semi, gen_length) if semi else None
    if semi is None or careful is None:
        return {"met": False, "lines": ["- no semi-AR High-Confidence-K run at one token per step in this sweep"]}
    ok = careful["accuracy"] >= CAREFUL_MIN
    met &= ok
    lines.append(
        f"- careful decoding (High-Confidence-K, 1 token/step, {semi}): {careful['accuracy']:.1f} % "
        f"(≥ {CAREFUL_MIN:g} %: {'yes' if ok else 'no'})"
    )
    block = int(semi.split("=")[1])
    for setting, steps, what in (
        (semi, gen_length // block, "one step per block"),
        (full, 1, "everything in one step"),
    ):
        fast = _confidence(summary, setting, steps)
        if fast is None:
            lines.append(f"- {what} ({setting}): not in this sweep")
            met = False
            continue
        gap = careful["accuracy"] - fast["accuracy"]
        ci = ""
        if careful.get("per_problem") is not None and fast.get("per_problem") is not None:
            ci = f", paired difference {paired_difference(careful['per_problem'], fast['per_problem'])}"
        ok = gap >= PARALLEL_GAP
        met &= ok
        lines.append(
            f"- {what} ({setting}, NFE {fast['mean_nfe']:.1f}): {fast['accuracy']:.1f} %, "
            f"{gap:.1f} points below careful decoding{ci} (≥ {PARALLEL_GAP:g}: {'yes' if ok else 'no'})"
        )
    for setting in (semi, full):
        front = heuristic_front(summary, setting)
        span = front[-1]["accuracy"] - front[0]["accuracy"] if front else 0.0
        ok = len(front) >= FRONT_POINTS and span >= FRONT_SPAN
        met &= ok
        points = ", ".join(f"{p['strategy']} {p['params']} {p['accuracy']:.1f} % @ {p['mean_nfe']:.1f}" for p in front)
        lines.append(
            f"- heuristic front, {setting}: {len(front)} distinct points spanning {span:.1f} points "
            f"(≥ {FRONT_POINTS} over ≥ {FRONT_SPAN:g}: {'yes' if ok else 'no'}): {points}"
        )
    return {"met": met, "lines": lines}


def world_markdown(summary: Sequence[dict], gen_length: int) -> str:
    """The checks as a markdown section; empty unless the sweep has both settings' heuristics."""
    settings = {r["setting"] for r in summary if not is_policy(r)}
    if "full diffusion" not in settings or not any(s.startswith("semi-AR") for s in settings):
        return ""
    verdict = check_world(summary, gen_length)
    return "\n".join(
        [
            "## Does the unmasking decision matter here?",
            "",
            f"World checks: {'all met' if verdict['met'] else 'not all met'}.",
            "",
            *verdict["lines"],
            "",
        ]
    )
