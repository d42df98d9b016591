"""The paper's acceptance targets, checked on a sweep summary instead of eyeballed from a plot.

Semi-AR: the policy's Pareto front stays within 1 point of the best heuristic at every NFE it
covers, and at its lowest NFE beats the best heuristic by ≥ 3 points. Full diffusion: at
matched NFE the policy beats every heuristic by ≥ 5 points, or matches the best heuristic's
accuracy with ≤ 70 % of its NFE. A win counts only when its paired-bootstrap 95 % interval
(:mod:`.stats`) excludes 0. "Best heuristic at NFE x" is the best accuracy any heuristic reaches with mean NFE ≤
x·(1 + ``NFE_SLACK``): the envelope of all heuristic points, so the policy is never compared
with a configuration that spends more compute than it does (beyond the slack).
"""

from __future__ import annotations

from collections.abc import Sequence

from .stats import Difference, paired_difference
from .sweep import pareto_front

NFE_SLACK = 0.05  # "matched" NFE: within 5 %
SEMI_AR_TOLERANCE = 1.0  # points
SEMI_AR_MARGIN = 3.0  # points, at the policy's lowest NFE
FULL_MARGIN = 5.0  # points
FULL_NFE_RATIO = 0.7
MATCH_TOLERANCE = 1.0  # points: "matches the best heuristic's accuracy"


def is_policy(row: dict) -> bool:
    return row["strategy"].startswith("policy")


def best_heuristic_at(nfe: float, heuristics: Sequence[dict]) -> dict | None:
    """The most accurate heuristic point spending at most ``nfe`` (with the slack), or None."""
    eligible = [h for h in heuristics if h["mean_nfe"] <= nfe * (1 + NFE_SLACK)]
    return max(eligible, key=lambda h: h["accuracy"], default=None)


def _fmt(p: dict) -> str:
    return f"{p['strategy']} ({p['params']}) {p['accuracy']:.1f} % at NFE {p['mean_nfe']:.1f}"


def difference(p: dict, h: dict) -> Difference | None:
    """Paired difference of two summary points, when both recorded per-problem correctness."""
    if p.get("per_problem") is None or h.get("per_problem") is None:
        return None
    return paired_difference(p["per_problem"], h["per_problem"])


def wins_by(p: dict, h: dict | None, margin: float) -> bool:
    """``p`` beats ``h`` by ≥ ``margin`` points with an interval excluding 0 (no rival: a win)."""
    if h is None:
        return True
    d = difference(p, h)
    return p["accuracy"] - h["accuracy"] >= margin and (d is None or d.significant)


def compare_front(front: Sequence[dict], heuristics: Sequence[dict]) -> tuple[list[float], list[str]]:
    """Accuracy gaps of each front point to the best heuristic at its NFE (points no heuristic
    reaches are listed but have no gap), with one explanatory line per point."""
    gaps, lines = [], []
    for p in front:
        h = best_heuristic_at(p["mean_nfe"], heuristics)
        if h is None:
            lines.append(f"- {_fmt(p)}: no heuristic reaches this NFE")
            continue
        gaps.append(p["accuracy"] - h["accuracy"])
        d = difference(p, h)
        lines.append(f"- {_fmt(p)} vs {_fmt(h)}: " + (str(d) if d else f"{gaps[-1]:+.1f} points"))
    return gaps, lines


def check_semi_ar(policy: Sequence[dict], heuristics: Sequence[dict]) -> dict:
    """Within 1 point at every covered NFE, and ≥ 3 points better at the policy's lowest NFE."""
    front = pareto_front(policy)
    gaps, lines = compare_front(front, heuristics)
    lowest = front[0]
    h_low = best_heuristic_at(lowest["mean_nfe"], heuristics)
    within = bool(gaps) and min(gaps) >= -SEMI_AR_TOLERANCE
    better_low = wins_by(lowest, h_low, SEMI_AR_MARGIN)
    return {
        "met": within and better_low,
        "within_tolerance": within,
        "better_at_lowest_nfe": better_low,
        "lines": lines,
    }


def check_full(policy: Sequence[dict], heuristics: Sequence[dict]) -> dict:
    """≥ 5 points over every heuristic at matched NFE, or the best heuristic's accuracy with ≤ 70 % of its NFE."""
    front = pareto_front(policy)
    gaps, lines = compare_front(front, heuristics)
    rivals = [(p, best_heuristic_at(p["mean_nfe"], heuristics)) for p in front]
    margin_met = any(h is not None and wins_by(p, h, FULL_MARGIN) for p, h in rivals)
    best = max(heuristics, key=lambda h: (h["accuracy"], -h["mean_nfe"]))
    cheap = [p for p in front if p["accuracy"] >= best["accuracy"] - MATCH_TOLERANCE]
    ratio = min((p["mean_nfe"] for p in cheap), default=None)
    ratio = None if ratio is None else ratio / best["mean_nfe"]
    efficiency_met = ratio is not None and ratio <= FULL_NFE_RATIO
    lines.append(
        f"- best heuristic overall: {_fmt(best)}; the policy matches it (within {MATCH_TOLERANCE:g} point) "
        + ("nowhere" if ratio is None else f"with {100 * ratio:.0f} % of its NFE")
    )
    return {
        "met": margin_met or efficiency_met,
        "margin_met": margin_met,
        "efficiency_met": efficiency_met,
        "nfe_ratio": ratio,
        "lines": lines,
    }


STEERED_SUFFIX = "-es"  # a policy family "<name>-es" is the expert-steered twin of "<name>"


def check_steering(steered: Sequence[dict], plain: Sequence[dict]) -> dict:
    """The expert-steered policy is better than the one without: some point of its front beats
    the plain policy's best point at matched NFE with an interval excluding 0, and none is
    significantly worse."""
    _, lines = compare_front(pareto_front(steered), plain)
    better = worse = False
    for p in pareto_front(steered):
        rival = best_heuristic_at(p["mean_nfe"], plain)  # the plain policy's envelope, same matching rule
        d = difference(p, rival) if rival else None
        better |= rival is None or (d is not None and d.low > 0)
        worse |= d is not None and d.high < 0
    return {"met": better and not worse, "lines": lines}


def check_targets(summary: Sequence[dict]) -> list[dict]:
    """One verdict per (setting, policy family) present in the summary, plus, in full diffusion,
    expert-steered vs plain for every family pair ``<name>-es`` / ``<name>``."""
    verdicts = []
    for setting in dict.fromkeys(r["setting"] for r in summary):
        rows = [r for r in summary if r["setting"] == setting]
        heuristics = [r for r in rows if not is_policy(r)]
        families = list(dict.fromkeys(r["strategy"] for r in rows if is_policy(r)))
        full = setting == "full diffusion"
        for family in families if heuristics else []:
            policy = [r for r in rows if r["strategy"] == family]
            verdict = (check_full if full else check_semi_ar)(policy, heuristics)
            verdicts.append({"setting": setting, "policy": family, **verdict})
        for family in families if full else []:
            plain = family[: -len(STEERED_SUFFIX)]
            if family.endswith(STEERED_SUFFIX) and plain in families:
                verdict = check_steering(
                    [r for r in rows if r["strategy"] == family], [r for r in rows if r["strategy"] == plain]
                )
                verdicts.append({"setting": setting, "policy": f"{family} vs {plain}", **verdict})
    return verdicts


def targets_markdown(summary: Sequence[dict]) -> str:
    """The verdicts as a markdown section (empty when there is no policy or no heuristic)."""
    verdicts = check_targets(summary)
    if not verdicts:
        return ""
    out = [
        "## Paper targets",
        "",
        f"Best heuristic at NFE x = the most accurate heuristic run with mean NFE ≤ x·{1 + NFE_SLACK:g}. "
        f"Semi-AR: the policy's front within {SEMI_AR_TOLERANCE:g} point everywhere and ≥ {SEMI_AR_MARGIN:g} points "
        f"better at its lowest NFE. Full diffusion: ≥ {FULL_MARGIN:g} points better at matched NFE, or the best "
        f"heuristic's accuracy (within {MATCH_TOLERANCE:g} point) with ≤ {100 * FULL_NFE_RATIO:.0f} % of its NFE. "
        f"Expert steering: the `…{STEERED_SUFFIX}` policy's front beats the plain policy's at matched NFE somewhere "
        "and is significantly worse nowhere. "
        "Differences carry paired-bootstrap 95 % intervals over problems; a win needs one that excludes 0.",
        "",
    ]
    for v in verdicts:
        out += [f"### {v['policy']} — {v['setting']}: {'met' if v['met'] else 'not met'}", "", *v["lines"], ""]
    return "\n".join(out)
