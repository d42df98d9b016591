"""Sweeps, summaries, Pareto fronts and the report files."""

from __future__ import annotations

import csv
import os
import re
import shutil

import pytest
import torch

from dllm_viz.engine import EngineConfig, run
from dllm_viz.eval import StrategySpec, heuristic_grid, markdown_table, pareto_figure, pareto_front, summarize, sweep
from dllm_viz.eval.report import write_report
from dllm_viz.tasks.problem import Problem


def test_pareto_front_drops_dominated_points():
    pts = [{"mean_nfe": n, "accuracy": a} for n, a in [(8, 50), (10, 40), (16, 70), (16, 60), (32, 70), (64, 90)]]
    assert [(p["mean_nfe"], p["accuracy"]) for p in pareto_front(pts)] == [(8, 50), (16, 70), (64, 90)]


def test_heuristic_grid_is_valid_for_each_setting():
    for L, BL in [(64, 8), (64, 64), (256, 32)]:
        for spec in heuristic_grid(L, BL):
            spec.build().validate(L, BL)  # raises on an invalid step count
    steps = sorted(s.params["steps"] for s in heuristic_grid(64, 8) if s.name == "confidence")
    assert steps == [8, 16, 32, 64]


def test_sweep_rows_and_summary(tiny_backend):
    problems = [Problem("one plus two", "#### 3", "3"), Problem("a b", "#### 4", "4")]
    specs = [StrategySpec("confidence", {"steps": 8}), StrategySpec("random", {"steps": 8})]
    rows = sweep(tiny_backend, problems, specs, block_lengths=[4, 8], gen_length=8, seeds=(0, 1))
    assert len(rows) == 2 * (1 + 2)  # per setting: deterministic once, random-K per seed
    conf = [r for r in rows if r["strategy"] == "confidence"]
    assert all(r["mean_nfe"] == 8 and r["tokens_per_step"] == 1 for r in conf)
    assert {r["setting"] for r in rows} == {"semi-AR BL=4", "full diffusion"}
    summary = summarize(rows)
    assert len(summary) == 4 and all(
        s["seeds"] == (2 if s["strategy"] == "random" else 1) and s["n"] == 2 for s in summary
    )
    table = markdown_table(summary)
    assert "### semi-AR BL=4" in table and "| High-Confidence-K (LLaDA low_confidence) | steps=8 |" in table
    fig = pareto_figure(summary)
    assert len(fig.layout.annotations) == 2  # one panel per setting


ROW = {
    "setting": "full diffusion",
    "strategy": "threshold",
    "params": "threshold=0.9",
    "seed": 0,
    "accuracy": 0.5,
    "mean_nfe": 10.0,
    "tokens_per_step": 6.4,
    "no_answer": 0.0,
    "n": 2,
    "block_length": 64,
    "seconds": 1.0,
}


def test_pareto_figure_names_each_strategy_once_and_draws_the_front():
    """Two settings, each with every strategy: the legend lists each strategy once, by the picker's
    name, plus the ★ front; a learned policy's marker differs from the front's; all at 100 % keeps
    the accuracy axis inside [0, 100] (plus room for the markers), not 99–101."""
    rows = [
        {
            **ROW,
            "setting": setting,
            "block_length": bl,
            "strategy": name,
            "params": params,
            "accuracy": 1.0,
            "mean_nfe": nfe,
        }
        for setting, bl in (("full diffusion", 64), ("semi-AR BL=8", 8))
        for name, params, nfe in (
            ("threshold", "threshold=0.9", 10.0),
            ("confidence", "steps=64", 64.0),
            ("policy", "p", 9.0),
        )
    ]
    fig = pareto_figure(summarize(rows))
    legend = [t.name for t in fig.data if t.showlegend is not False]
    assert sorted(legend) == sorted(
        [
            "Fast-dLLM threshold λ",
            "High-Confidence-K (LLaDA low_confidence)",
            "learned policy",
            "★ Pareto front (all strategies)",
        ]
    )
    policy = next(t for t in fig.data if t.name == "learned policy")
    front = [t for t in fig.data if t.legendgroup == "front"]
    assert len(front) == 2 and policy.marker.symbol != front[0].marker.symbol
    assert list(front[0].x) == [9.0]  # the policy alone is the front: cheapest at the same accuracy
    low, high = fig.layout.yaxis.range
    assert 0 <= low < 100 < high <= 102


def test_report_files_are_self_contained(tmp_path):
    paths = write_report([ROW], summarize([ROW]), tmp_path, "t", "python -m dllm_viz.eval", png=False)
    assert list(csv.DictReader(open(paths["csv"])))[0]["params"] == "threshold=0.9"
    assert "python -m dllm_viz.eval" in paths["md"].read_text()
    html = paths["html"].read_text()
    # plotly.js is inside the file (so it renders offline), not fetched from a CDN
    assert "<script" in html and not re.search(r"<script[^>]*\ssrc=", html)
    assert len(html) > 1_000_000 and "Plotly.newPlot" in html


@pytest.mark.browser
def test_report_png_is_a_real_image_rendered_by_kaleido(tmp_path):
    if not (shutil.which("chromium") or shutil.which("chromium-browser") or os.environ.get("BROWSER_PATH")):
        message = "chromium is not installed (apt-get install -y chromium); kaleido needs it for the PNG"
        if os.environ.get("DLLM_VIZ_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from PIL import Image

    paths = write_report([ROW], summarize([ROW]), tmp_path, "t", "cmd")
    assert paths["png"] == tmp_path / "pareto.png" and not (tmp_path / "pareto.png.txt").exists()
    with Image.open(paths["png"]) as image:
        assert image.format == "PNG" and image.size == (840, 720)  # 560 x 480 at scale 1.5
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is not None and len(colours) > 10  # drawn, not a blank page


def test_report_without_a_browser_warns_and_writes_the_rest(tmp_path, monkeypatch, caplog):
    (tmp_path / "pareto.png").write_bytes(b"stale")  # an earlier report's PNG must not survive as if current
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-such-chromium"))
    paths = write_report([ROW], summarize([ROW]), tmp_path, "t", "cmd")
    assert set(paths) == {"csv", "md", "html"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pareto.html", "results.md", "runs.csv"]
    assert "pareto.png not written" in caplog.text and "apt-get install chromium" in caplog.text


def test_unknown_strategy_in_spec():
    with pytest.raises(ValueError, match="unknown strategy 'nope'"):
        StrategySpec("nope").build()


def test_deterministic_strategies_decode_identically_for_every_seed(tiny_backend):
    """What lets a sweep run them once: at temperature 0 the seed changes nothing."""
    prompts = ["one plus two", "a b c"]
    for spec in heuristic_grid(8, 4):
        if spec.stochastic:
            continue
        a, b = (
            run(tiny_backend, prompts, spec.build(), EngineConfig(gen_length=8, block_length=4, seed=s)) for s in (0, 1)
        )
        assert torch.equal(a.tokens, b.tokens) and torch.equal(a.nfe, b.nfe), spec


def _pt(setting, strategy, nfe, acc, params="p", subset="all", n=100):
    """A summary point whose problems solved are the first ``acc`` % (so a more accurate point solves
    a superset: its paired interval against a less accurate one lies above 0)."""
    import numpy as np

    solved = round(acc * n / 100)
    return {
        "setting": setting,
        "subset": subset,
        "strategy": strategy,
        "params": f"{params}{nfe}",
        "n": n,
        "mean_nfe": nfe,
        "accuracy": acc,
        "per_problem": np.r_[np.ones(solved), np.zeros(n - solved)],
    }


def test_matched_nfe_is_the_policy_nfe_plus_a_tenth_absolute():
    from dllm_viz.eval.targets import matched

    heur = [_pt("s", "eb", 2.15, 90), _pt("s", "eb", 2.2, 95), _pt("s", "threshold", 9.3, 99)]
    assert [h["mean_nfe"] for h in matched(2.05, heur)] == [2.15]
    assert matched(9.0, heur) == [heur[0], heur[1]]  # 9.3 is within 5 % of 9.0 but 0.3 NFE more: not matched


SEMI = "semi-AR BL=8"
SEMI_HEUR = [
    _pt(SEMI, "confidence", 8.0, 60),
    _pt(SEMI, "eb", 8.5, 80),
    _pt(SEMI, "eb-maxprob", 8.6, 85),
    _pt(SEMI, "threshold", 9.0, 90),
]


def test_semi_ar_target_needs_no_point_over_a_point_below_and_some_point_three_above():
    from dllm_viz.eval.targets import check_targets, targets_markdown

    good = [_pt(SEMI, "policy:a", 8.0, 70), _pt(SEMI, "policy:a", 8.6, 86), _pt(SEMI, "policy:a", 9.5, 90)]
    [v] = check_targets(SEMI_HEUR + good)
    assert v["met"] and v["within_tolerance"] and v["margin_met"] and v["judged"]  # +10 over confidence at 8.0
    low = [_pt(SEMI, "policy:b", 8.0, 70), _pt(SEMI, "policy:b", 9.0, 88)]  # 88 vs threshold's 90 at NFE 9.0
    [v] = check_targets(SEMI_HEUR + low)
    assert not v["met"] and not v["within_tolerance"] and v["margin_met"]
    assert any("-2.0 points" in line for line in v["lines"])
    small = [_pt(SEMI, "policy:c", 8.0, 62), _pt(SEMI, "policy:c", 9.0, 90)]  # +2 at best: under 3 points
    [v] = check_targets(SEMI_HEUR + small)
    assert v["within_tolerance"] and not v["margin_met"] and not v["met"]
    unmatched = [_pt(SEMI, "policy:d", 7.0, 99)]  # no heuristic at NFE ≤ 7.1: nothing was measured against
    [v] = check_targets(SEMI_HEUR + unmatched)
    assert not v["met"] and "nothing to compare" in v["lines"][0]
    without_maxprob = [h for h in SEMI_HEUR if h["strategy"] != "eb-maxprob"]
    [v] = check_targets(without_maxprob + good)
    assert v["margin_met"] and v["missing"] == ["eb-maxprob"] and not v["met"]
    assert "no eb-maxprob runs here" in targets_markdown(without_maxprob + good)


def test_a_win_needs_a_paired_interval_that_excludes_zero():
    import numpy as np

    from dllm_viz.eval.targets import check_targets

    rng = np.random.default_rng(0)
    base = (rng.random(100) < 0.7).astype(float)
    heur = [{**h, "per_problem": base, "accuracy": 100 * base.mean()} for h in SEMI_HEUR if h["mean_nfe"] == 8.0]
    heur += [h for h in SEMI_HEUR if h["mean_nfe"] > 8.0]
    noisy = base.copy()  # +4 points from 10 swaps each way plus 4 net: not significant on 100 problems
    flips_up, flips_down = np.flatnonzero(base == 0)[:14], np.flatnonzero(base == 1)[:10]
    noisy[flips_up], noisy[flips_down] = 1, 0
    policy = {**_pt(SEMI, "policy:x", 8.0, 100 * noisy.mean()), "per_problem": noisy}
    [v] = check_targets([*heur, policy])
    assert policy["accuracy"] - heur[0]["accuracy"] == pytest.approx(4.0)
    assert not v["margin_met"] and "95 % CI" in "\n".join(v["lines"])
    clean = base.copy()
    clean[np.flatnonzero(base == 0)[:20]] = 1  # +20 points, every change in the policy's favour
    policy = {**_pt(SEMI, "policy:y", 8.0, 100 * clean.mean()), "per_problem": clean}
    [v] = check_targets([*heur, policy])
    assert v["margin_met"]
    unscored = {**policy, "per_problem": None}  # no per-problem results: no interval, so no win
    [v] = check_targets([*heur, unscored])
    assert not v["margin_met"] and "no interval" in v["lines"][0]


def test_paired_bootstrap_interval_covers_the_difference_and_is_tighter_than_unpaired():
    import numpy as np

    from dllm_viz.eval.stats import paired_difference, per_problem

    assert per_problem(["101", "111"]).tolist() == [1.0, 0.5, 1.0]
    with pytest.raises(ValueError, match="equally long"):
        per_problem(["10", "111"])
    rng = np.random.default_rng(1)
    hard = rng.random(500) < 0.5  # problems one strategy solves; the other also solves a few more
    a, b = hard.astype(float), (hard | (rng.random(500) < 0.1)).astype(float)
    d = paired_difference(b, a)
    assert d.low <= d.points <= d.high and d.significant and d.points > 0
    assert d.high - d.low < 2 * 1.96 * 100 * np.sqrt(2 * 0.25 / 500)  # narrower than two independent intervals
    with pytest.raises(ValueError, match="equally long"):
        paired_difference(a, b[:10])


def test_world_checks_read_careful_parallel_and_the_front_from_a_summary():
    from dllm_viz.eval.world import check_world, world_markdown

    semi, full = "semi-AR BL=8", "full diffusion"
    rows = [
        _pt(semi, "confidence", 64, 95, "steps="),
        _pt(semi, "confidence", 8, 40, "steps="),
        _pt(semi, "threshold", 9, 70),
        _pt(semi, "threshold", 10, 85),
        _pt(semi, "eb", 12, 93),
        _pt(full, "confidence", 1, 30, "steps="),
        _pt(full, "threshold", 2, 60),
        _pt(full, "threshold", 3, 80),
        _pt(full, "eb", 4, 96),
    ]
    for r in rows:
        if r["strategy"] == "confidence":
            r["params"] = f"steps={r['mean_nfe']}"
    v = check_world(rows, gen_length=64)
    assert v["met"], v["lines"]
    flat = [r for r in rows if r["params"] != "steps=1"] + [_pt(full, "confidence", 1, 90, "steps=")]
    flat[-1]["params"] = "steps=1"
    v = check_world(flat, gen_length=64)
    assert not v["met"] and any("everything in one step" in line and "(≥ 25: no)" in line for line in v["lines"])
    assert "Does the unmasking decision matter" in world_markdown(rows, 64)
    assert world_markdown([r for r in rows if r["setting"] == semi], 64) == ""


FULL = "full diffusion"
FULL_HEUR = [
    _pt(FULL, "confidence", 1.0, 50),
    _pt(FULL, "eb-maxprob", 1.9, 85),
    _pt(FULL, "eb", 2.1, 90),
    _pt(FULL, "threshold", 2.3, 88),
]


def test_full_diffusion_target_needs_five_points_over_every_matched_heuristic():
    from dllm_viz.eval.targets import check_targets, targets_markdown

    [v] = check_targets(FULL_HEUR + [_pt(FULL, "policy:m", 2.05, 96)])  # +6 over EB γ at 2.1 ≤ 2.15
    assert v["met"] and not v["missing"]
    [v] = check_targets(FULL_HEUR + [_pt(FULL, "policy:n", 2.05, 94)])  # +4 over EB: not enough
    assert not v["met"] and any("eb (p2.1) 90.0 % at NFE 2.10" in line for line in v["lines"])
    [v] = check_targets(FULL_HEUR + [_pt(FULL, "policy:c", 1.95, 94)])  # EB at 2.1 spends more: +9 over max-prob EB
    assert v["met"]
    assert "not met" in targets_markdown(FULL_HEUR + [_pt(FULL, "policy:n", 2.05, 94)])
    assert targets_markdown(FULL_HEUR) == ""


def test_targets_are_judged_on_the_problems_with_an_open_amount():
    from dllm_viz.eval.targets import check_targets, targets_markdown

    free = [{**_pt(FULL, h["strategy"], h["mean_nfe"] + 1, h["accuracy"] - 10, subset="free", n=60)} for h in FULL_HEUR]
    summary = [
        *FULL_HEUR,
        _pt(FULL, "policy:f", 2.05, 93),  # +3 over EB on all problems: not met there
        *free,
        _pt(FULL, "policy:f", 3.05, 86, subset="free", n=60),  # +6 over EB (3.1, 80 %) on the open ones
    ]
    verdicts = check_targets(summary)
    assert [(v["subset"], v["judged"], v["met"]) for v in verdicts] == [("all", False, False), ("free", True, True)]
    md = targets_markdown(summary)
    assert "policy:f — full diffusion, 60 problems with an open amount (judged): met" in md
    assert "policy:f — full diffusion, all 100 problems: not met" in md
    # without open-amount rows (a fixed-answer world, or a sweep written before subsets) all problems are judged
    [v] = check_targets(summary[:5])
    assert v["subset"] == "all" and v["judged"]


def test_expert_steering_verdict_pairs_name_es_with_name_and_needs_a_significant_win():
    import numpy as np

    from dllm_viz.eval.targets import check_targets

    base = np.zeros(100)
    base[:60] = 1
    better = base.copy()
    better[60:80] = 1  # +20 points, all in the steered policy's favour
    plain = {**_pt(FULL, "policy:full", 3, 60), "per_problem": base}
    steered = {**_pt(FULL, "policy:full-es", 3, 80), "per_problem": better}
    [*_, v] = check_targets([*FULL_HEUR, plain, steered])
    assert v["policy"] == "policy:full-es vs policy:full" and v["met"]
    worse = {**_pt(FULL, "policy:full-es", 3, 40), "per_problem": np.r_[np.ones(40), np.zeros(60)]}
    [*_, v] = check_targets([*FULL_HEUR, plain, worse])
    assert not v["met"]
    assert [v["policy"] for v in check_targets([*FULL_HEUR, plain])] == ["policy:full"]  # no twin, no verdict


def test_policies_sharing_a_label_keep_distinct_parameter_names():
    from dllm_viz.eval import policy_grid

    specs = policy_grid("assets/policies/a1", "policy", betas=(1.0, 2.0)) + policy_grid("x/a3", "policy")
    assert [s.describe() for s in specs] == [
        "a1, temperature=1.0, beta=1.0",
        "a1, temperature=1.0, beta=2.0",
        "a3, temperature=1.0, beta=1.0",
    ]
    assert {s.family for s in specs} == {"policy"}


ONE_RUN = {  # a runs.csv row of a sweep on 2 problems at L = 8
    "setting": "full diffusion",
    "block_length": 8,
    "strategy": "threshold",
    "params": "threshold=0.9",
    "seed": 0,
    "n": 2,
    "accuracy": 0.5,
    "mean_nfe": 4.0,
    "tokens_per_step": 2.0,
    "no_answer": 0.0,
    "seconds": 0.1,
}


def test_include_merges_an_earlier_sweep_and_refuses_a_different_one(tmp_path):
    from dllm_viz.eval.report import read_runs

    row = dict(ONE_RUN)
    write_report([row], summarize([row]), tmp_path, "t", "cmd", png=False)
    assert read_runs(tmp_path / "runs.csv", expect_n=2, gen_length=8) == [{**row, "subset": "all"}]
    with pytest.raises(ValueError, match=r"other problems or L .*n=3, L=8"):
        read_runs(tmp_path / "runs.csv", expect_n=3, gen_length=8)


def test_compact_grid_keeps_every_family_at_fewer_points():
    full, compact = heuristic_grid(64, 8), heuristic_grid(64, 8, compact=True)
    assert {s.name for s in compact} == {s.name for s in full} and len(compact) < 0.6 * len(full)
    assert [s.params["steps"] for s in compact if s.name == "confidence"] == [64, 32, 16, 8]  # every k
    assert [s.params["steps"] for s in compact if s.name == "margin"] == [16, 8]  # 8: one step per block
    assert [s.params["steps"] for s in compact if s.name == "random"] == [16]
    assert [s.params["steps"] for s in heuristic_grid(64, 64, compact=True) if s.name == "entropy"] == [16, 1]


def test_cli_refuses_a_mismatched_include_before_loading_or_decoding(tmp_path, capsys):
    from dllm_viz.eval.__main__ import main

    row = dict(ONE_RUN)
    write_report([row], summarize([row]), tmp_path, "t", "cmd", png=False)
    with pytest.raises(SystemExit) as exc:  # the model path does not exist: reaching it would fail differently
        main(
            ["--model", str(tmp_path / "no-model"), "--level", "1", "--n", "3", "--include", str(tmp_path / "runs.csv")]
        )
    assert exc.value.code == 2
    assert "other problems or L" in capsys.readouterr().err


def test_a_run_included_twice_counts_once():
    row = {
        "setting": "full diffusion",
        "block_length": 8,
        "strategy": "threshold",
        "params": "threshold=0.9",
        "seed": 0,
        "n": 2,
        "accuracy": 0.5,
        "mean_nfe": 4.0,
        "tokens_per_step": 2.0,
        "no_answer": 0.0,
        "seconds": 0.1,
        "correct": "10",
    }
    [once] = summarize([row, dict(row)])
    assert once["seeds"] == 1 and once["accuracy"] == 50.0
    [two] = summarize([row, {**row, "seed": 1, "accuracy": 1.0, "correct": "11"}])
    assert two["seeds"] == 2 and two["accuracy"] == 75.0 and two["per_problem"].tolist() == [1.0, 0.5]


WORDS = ["[MASK]", "[EOS]", "####", "5", "-", "=", "1", "2", "3"]
RIGHT, WRONG = "5 - 3 = 2 #### 2".split(), "5 - 3 = 1 #### 1".split()


def _scripted_world(scripted):
    """A backend whose answer and confidence depend on the one-word question's length: words of even
    length are answered right, of length ≤ 3 confidently (p = 0.95: threshold 0.9 commits all 7 tokens
    in one step), of length 4 unsure (p = 0.5: one token per step)."""

    def fn(pos, canvas):
        length = canvas[0] - 2  # encode_prompt: 2 + len(word) % (vocab - 2)
        words = RIGHT if length % 2 == 0 else WRONG
        j = min(max(pos - 1, 0), len(words) - 1)  # generation starts after the one prompt token
        return WORDS.index(words[j]), (0.95 if length <= 3 else 0.5)

    backend = scripted(vocab_size=len(WORDS), fn=fn)
    backend.decode = lambda ids: " ".join(WORDS[i] for i in ids)
    # open amount: "5 - ?"; fixed: "5 - 3". Lengths: 1 open wrong fast, 2 open right fast, 3 fixed wrong fast,
    # 4 open right slow, 2 (again) fixed right fast.
    free, fixed = (("-", None),), (("-", 3),)
    problems = [
        Problem(q, "", "2", level=1, start=5, chain=c)
        for q, c in [("a", free), ("bb", free), ("ccc", fixed), ("dddd", free), ("ee", fixed)]
    ]
    return backend, problems


def test_sweep_reports_the_open_amount_subset_beside_all_problems(scripted, tmp_path):
    from dllm_viz.eval.report import read_runs
    from dllm_viz.eval.stats import paired_difference

    backend, problems = _scripted_world(scripted)
    specs = [StrategySpec("threshold", {"threshold": 0.9}), StrategySpec("confidence")]
    rows = sweep(backend, problems, specs, block_lengths=[7], gen_length=7, seeds=(0,))
    by = {(r["strategy"], r["subset"]): r for r in rows}
    assert len(rows) == 4 and all(r["open"] == "11010" for r in rows)
    every, free = by["threshold", "all"], by["threshold", "free"]
    assert (every["n"], every["correct"], every["mean_nfe"]) == (5, "01011", (1 + 1 + 1 + 7 + 1) / 5)
    assert (free["n"], free["correct"], free["mean_nfe"], free["accuracy"]) == (3, "011", 3.0, 2 / 3)
    assert by["confidence", "free"]["mean_nfe"] == 7 and by["confidence", "free"]["correct"] == "011"
    summary = summarize(rows)
    assert [(s["strategy"], s["subset"], s["n"]) for s in summary] == [
        ("threshold", "all", 5),
        ("threshold", "free", 3),
        ("confidence", "all", 5),
        ("confidence", "free", 3),
    ]
    pairs = {(s["strategy"], s["subset"]): s["per_problem"] for s in summary}
    d = paired_difference(pairs["threshold", "free"], pairs["confidence", "free"])  # same tokens: no difference
    assert (d.points, d.low, d.high) == (0.0, 0.0, 0.0)
    table = markdown_table(summary)
    assert (
        "### full diffusion, all 5 problems" in table and "### full diffusion, 3 problems with an open amount" in table
    )
    assert table.count("★") == 2  # one front per subset: threshold is cheaper at equal accuracy in both
    assert [a.text for a in pareto_figure(summary).layout.annotations] == [
        "full diffusion, all 5 problems",
        "full diffusion, 3 problems with an open amount",
    ]
    paths = write_report(rows, summary, tmp_path, "t", "cmd", png=False)
    again = read_runs(paths["csv"], expect_n=5, gen_length=7, open_bits="11010")
    assert [(s["subset"], s["accuracy"], s["mean_nfe"]) for s in summarize(again)] == [
        (s["subset"], s["accuracy"], s["mean_nfe"]) for s in summary
    ]
    with pytest.raises(ValueError, match="not the same ones leave an amount open"):
        read_runs(paths["csv"], expect_n=5, gen_length=7, open_bits="11100")


def test_an_old_runs_csv_without_subsets_is_read_as_all_problems_and_merges_with_new_rows(scripted, tmp_path):
    from dllm_viz.eval.report import has_free_rows, read_runs, write_csv

    backend, problems = _scripted_world(scripted)
    rows = sweep(backend, problems, [StrategySpec("threshold")], block_lengths=[7], gen_length=7, seeds=(0,))
    old = [{k: v for k, v in rows[0].items() if k not in ("subset", "open")}]  # the columns runs.csv had before
    write_csv(old, tmp_path / "old.csv")
    assert "subset" not in (tmp_path / "old.csv").read_text().splitlines()[0]
    earlier = read_runs(tmp_path / "old.csv", expect_n=5, gen_length=7, open_bits="11010")
    assert earlier[0]["subset"] == "all" and not has_free_rows(earlier)
    merged = earlier + sweep(backend, problems, [StrategySpec("confidence")], block_lengths=[7], gen_length=7)
    write_csv(merged, tmp_path / "merged.csv")  # old rows get empty subset and open cells
    back = read_runs(tmp_path / "merged.csv", expect_n=5, gen_length=7, open_bits="11010")
    assert [(r["strategy"], r["subset"]) for r in back] == [
        ("threshold", "all"),
        ("confidence", "all"),
        ("confidence", "free"),
    ]


def test_cli_tunes_on_the_validation_split_and_says_so(tmp_path):
    """``--split validation`` decodes validation problems (for tuning τ_π, β, checkpoints) and the
    report names the split, so a tuning report is never mistaken for a test result."""
    from dllm_viz.eval.__main__ import main

    out = tmp_path / "val"
    args = [
        "--n",
        "2",
        "--settings",
        "full",
        "--strategies",
        "threshold",
        "--compact",
        "--seeds",
        "0",
        "--threads",
        "1",
    ]
    assert main([*args, "--split", "validation", "--out", str(out)]) == 0
    report = (out / "results.md").read_text()
    assert "2 validation-split free-choice problems" in report
    with pytest.raises(SystemExit):
        main([*args, "--split", "train", "--out", str(tmp_path / "x")])


def test_pairs_cli_prints_a_paired_interval_per_subset_and_names_an_ambiguous_run(tmp_path, capsys):
    from dllm_viz.eval.pairs import main as pairs_main
    from dllm_viz.eval.report import write_csv

    base = {**ONE_RUN, "n": 4, "mean_nfe": 4.0, "tokens_per_step": 2.0}
    rows = [
        {**base, "correct": "1111", "accuracy": 1.0},
        {**base, "strategy": "eb", "params": "gamma=0.5", "correct": "1100", "accuracy": 0.5},
        {**base, "strategy": "eb", "params": "gamma=0.1", "correct": "0000", "accuracy": 0.0},
    ]
    path = write_csv(rows, tmp_path / "runs.csv")
    assert pairs_main([str(path), "--n", "4", "--gen-length", "8", "--pair", "threshold|", "eb|0.5"]) == 0
    out = capsys.readouterr().out
    assert "all (4 problems)" in out and "= +50.0 points (95 % CI +0.0 … +100.0)" in out
    with pytest.raises(SystemExit) as exc:
        pairs_main([str(path), "--n", "4", "--gen-length", "8", "--pair", "threshold|", "eb|gamma"])
    assert exc.value.code == 2 and "names 2 runs" in capsys.readouterr().err


def test_solve_validates_its_strategy_once_for_all_batches(tiny_backend, check_counts):
    from dllm_viz.eval.solve import solve

    problems = [Problem("one plus two", "#### 3", "3"), Problem("a b", "#### 4", "4")] * 2
    confidence, config = StrategySpec("confidence", {"steps": 8}).build(), EngineConfig(gen_length=8, block_length=4)
    solve(tiny_backend, problems, confidence, config, batch_size=2)
    assert dict(check_counts) == {"validate": 1, "encode": 4}  # one Plan; each question encoded once
