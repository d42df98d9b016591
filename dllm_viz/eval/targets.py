"""The acceptance targets for learned policies, checked on a sweep summary instead of eyeballed from a plot.

A heuristic *matches* a policy point when its mean NFE is at most the point's NFE + ``NFE_MARGIN``
(absolute: the fronts here span about one forward pass, so a relative slack would be no slack at
low NFE). Semi-AR: no point of the policy's Pareto front is more than ``SEMI_AR_TOLERANCE`` below
the best matched heuristic, and some point is ≥ ``SEMI_AR_MARGIN`` above it. Full diffusion: some
point of the front is ≥ ``FULL_MARGIN`` above every matched heuristic. A win counts only with a
paired-bootstrap 95 % interval (:mod:`.stats`) above 0 against every matched heuristic, and only
against a heuristic set that holds both EB-Sampler variants (``REQUIRED_RIVALS``), the strongest
baselines here. Each check runs on every problem subset of the summary and is *judged* on the
problems with an open amount (``free``) where the sweep has them: the others are solved by nearly
every strategy and only dilute a difference.
"""

from __future__ import annotations

from collections.abc import Sequence

from .stats import Difference, paired_difference
from .sweep import panels, pareto_front, subset_label

NFE_MARGIN = 0.1  # a heuristic matches a policy point when its mean NFE ≤ the point's + 0.1
SEMI_AR_TOLERANCE = 1.0  # points below the best matched heuristic, at most, anywhere on the front
SEMI_AR_MARGIN = 3.0  # points above the best matched heuristic, somewhere on the front
FULL_MARGIN = 5.0  # points above every matched heuristic, somewhere on the front
REQUIRED_RIVALS = ("eb", "eb-maxprob")  # heuristic families a verdict needs among its rivals


def is_policy(row: dict) -> bool:
    return row["strategy"].startswith("policy")


def matched(nfe: float, heuristics: Sequence[dict]) -> list[dict]:
    """The heuristic points spending at most ``nfe`` + ``NFE_MARGIN`` forward passes."""
    return [h for h in heuristics if h["mean_nfe"] <= nfe + NFE_MARGIN]


def best_heuristic_at(nfe: float, heuristics: Sequence[dict]) -> dict | None:
    """The most accurate matched heuristic point (see :func:`matched`), or None."""
    return max(matched(nfe, heuristics), key=lambda h: h["accuracy"], default=None)


def _fmt(p: dict) -> str:
    return f"{p['strategy']} ({p['params']}) {p['accuracy']:.1f} % at NFE {p['mean_nfe']:.2f}"


def difference(p: dict, h: dict) -> Difference | None:
    """Paired difference of two summary points, when both recorded per-problem correctness."""
    if p.get("per_problem") is None or h.get("per_problem") is None:
        return None
    return paired_difference(p["per_problem"], h["per_problem"])


def beats_all(p: dict, rivals: Sequence[dict], margin: float) -> bool:
    """``p`` is ≥ ``margin`` points above each rival with a paired interval above 0 (no rivals or no
    per-problem results: no win, since nothing was measured against)."""
    if not rivals:
        return False
    for h in rivals:
        d = difference(p, h)
        if p["accuracy"] - h["accuracy"] < margin or d is None or d.low <= 0:
            return False
    return True


def _point_line(p: dict, h: dict | None) -> str:
    if h is None:
        return f"- {_fmt(p)}: no heuristic at NFE ≤ {p['mean_nfe'] + NFE_MARGIN:.2f}, nothing to compare"
    d = difference(p, h)
    gap = f"{p['accuracy'] - h['accuracy']:+.1f} points" + ("" if d else " (no per-problem results: no interval)")
    return f"- {_fmt(p)} vs {_fmt(h)}: " + (str(d) if d else gap)


def _missing(heuristics: Sequence[dict]) -> list[str]:
    families = {h["strategy"] for h in heuristics}
    return [name for name in REQUIRED_RIVALS if name not in families]


def check_semi_ar(policy: Sequence[dict], heuristics: Sequence[dict]) -> dict:
    """No front point more than 1 point below the best matched heuristic; some point ≥ 3 points above."""
    front = pareto_front(policy)
    lines, gaps, win = [], [], False
    for p in front:
        h = best_heuristic_at(p["mean_nfe"], heuristics)
        lines.append(_point_line(p, h))
        if h is not None:
            gaps.append(p["accuracy"] - h["accuracy"])
            win |= beats_all(p, matched(p["mean_nfe"], heuristics), SEMI_AR_MARGIN)
    within = bool(gaps) and min(gaps) >= -SEMI_AR_TOLERANCE
    missing = _missing(heuristics)
    return {
        "met": within and win and not missing,
        "within_tolerance": within,
        "margin_met": win,
        "missing": missing,
        "lines": lines,
    }


def check_full(policy: Sequence[dict], heuristics: Sequence[dict]) -> dict:
    """Some front point ≥ 5 points above every matched heuristic, each with an interval above 0."""
    lines, win = [], False
    for p in pareto_front(policy):
        lines.append(_point_line(p, best_heuristic_at(p["mean_nfe"], heuristics)))
        win |= beats_all(p, matched(p["mean_nfe"], heuristics), FULL_MARGIN)
    missing = _missing(heuristics)
    return {"met": win and not missing, "margin_met": win, "missing": missing, "lines": lines}


STEERED_SUFFIX = "-es"  # a policy family "<name>-es" is the expert-steered twin of "<name>"


def check_steering(steered: Sequence[dict], plain: Sequence[dict]) -> dict:
    """The expert-steered policy is better than the one without: some point of its front beats
    the plain policy's best matched point with an interval excluding 0, and none is
    significantly worse."""
    better = worse = False
    lines = []
    for p in pareto_front(steered):
        rival = best_heuristic_at(p["mean_nfe"], plain)  # the plain policy's envelope, same matching rule
        lines.append(_point_line(p, rival))
        d = difference(p, rival) if rival else None
        better |= d is not None and d.low > 0
        worse |= d is not None and d.high < 0
    return {"met": better and not worse, "lines": lines}


def check_targets(summary: Sequence[dict]) -> list[dict]:
    """One verdict per (setting, subset, policy family) present in the summary, plus, in full diffusion,
    expert-steered vs plain for every family pair ``<name>-es`` / ``<name>``. ``judged`` marks the
    verdicts that count: the ``free`` subset where the setting has one, else ``all``."""
    verdicts = []
    groups = panels(summary)
    for (setting, subset), rows in groups.items():
        judged = subset == "free" or (setting, "free") not in groups
        heuristics = [r for r in rows if not is_policy(r)]
        families = list(dict.fromkeys(r["strategy"] for r in rows if is_policy(r)))
        full = setting == "full diffusion"
        common = {"setting": setting, "subset": subset, "n": rows[0]["n"], "judged": judged}
        for family in families if heuristics else []:
            policy = [r for r in rows if r["strategy"] == family]
            verdict = (check_full if full else check_semi_ar)(policy, heuristics)
            verdicts.append({**common, "policy": family, **verdict})
        for family in families if full else []:
            plain = family[: -len(STEERED_SUFFIX)]
            if family.endswith(STEERED_SUFFIX) and plain in families:
                verdict = check_steering(
                    [r for r in rows if r["strategy"] == family], [r for r in rows if r["strategy"] == plain]
                )
                verdicts.append({**common, "policy": f"{family} vs {plain}", **verdict})
    return verdicts


def targets_markdown(summary: Sequence[dict]) -> str:
    """The verdicts as a markdown section (empty when there is no policy or no heuristic)."""
    verdicts = check_targets(summary)
    if not verdicts:
        return ""
    out = [
        "## Targets",
        "",
        f"A heuristic matches a policy point when its mean NFE ≤ the point's + {NFE_MARGIN:g}. Semi-AR: no point of "
        f"the policy's front more than {SEMI_AR_TOLERANCE:g} point below the best matched heuristic, and some point "
        f"≥ {SEMI_AR_MARGIN:g} points above it. Full diffusion: some point ≥ {FULL_MARGIN:g} points above every "
        f"matched heuristic. Expert steering: the `…{STEERED_SUFFIX}` policy's front beats the plain policy's at "
        "matched NFE somewhere and is significantly worse nowhere. A win needs a paired-bootstrap 95 % interval "
        f"over problems above 0 against every matched heuristic, and {' and '.join(REQUIRED_RIVALS)} among the "
        "heuristics. Verdicts are judged on the problems with an open amount (the others are solved by nearly "
        "every strategy); the all-problem verdicts are shown beside them.",
        "",
    ]
    for v in verdicts:
        which = subset_label(v["subset"], v["n"]) + (" (judged)" if v["judged"] else "")
        out += [f"### {v['policy']} — {v['setting']}, {which}: {'met' if v['met'] else 'not met'}", ""]
        if v.get("missing"):
            out.append(f"- not judged against a full set of rivals: no {', '.join(v['missing'])} runs here")
        out += [*v["lines"], ""]
    return "\n".join(out)
