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
    assert "### semi-AR BL=4" in table and "| confidence | steps=8 |" in table
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


def _pt(setting, strategy, nfe, acc, params="p"):
    return {"setting": setting, "strategy": strategy, "params": f"{params}{nfe}", "mean_nfe": nfe, "accuracy": acc}


def test_semi_ar_target_needs_the_whole_front_within_one_point_and_a_win_at_the_lowest_nfe():
    from dllm_viz.eval.targets import check_targets

    s = "semi-AR BL=8"
    heur = [_pt(s, "confidence", 64, 90), _pt(s, "confidence", 16, 70), _pt(s, "threshold", 20, 85)]
    good = [_pt(s, "policy:a", 12, 60), _pt(s, "policy:a", 20, 84), _pt(s, "policy:a", 60, 89)]
    [v] = check_targets(heur + good)
    assert v["met"] and v["better_at_lowest_nfe"]  # no heuristic reaches NFE 12
    bad = [_pt(s, "policy:b", 16, 74), _pt(s, "policy:b", 30, 80)]  # 80 vs threshold's 85 at NFE ≤ 30
    [v] = check_targets(heur + bad)
    assert not v["met"] and not v["within_tolerance"] and v["better_at_lowest_nfe"]  # +4 at NFE 16
    assert any("-5.0 points" in line for line in v["lines"])
    small = [_pt(s, "policy:c", 16, 72), _pt(s, "policy:c", 64, 90)]  # +2 at its lowest NFE: under 3 points
    [v] = check_targets(heur + small)
    assert v["within_tolerance"] and not v["better_at_lowest_nfe"] and not v["met"]


def test_a_win_needs_a_paired_interval_that_excludes_zero():
    import numpy as np

    from dllm_viz.eval.targets import check_targets

    s = "semi-AR BL=8"
    rng = np.random.default_rng(0)
    base = (rng.random(100) < 0.7).astype(float)
    heur = {**_pt(s, "confidence", 16, 100 * base.mean()), "per_problem": base}
    noisy = base.copy()  # +4 points from 10 swaps each way plus 4 net: not significant on 100 problems
    flips_up, flips_down = np.flatnonzero(base == 0)[:14], np.flatnonzero(base == 1)[:10]
    noisy[flips_up], noisy[flips_down] = 1, 0
    policy = {**_pt(s, "policy:x", 16, 100 * noisy.mean()), "per_problem": noisy}
    [v] = check_targets([heur, policy])
    assert policy["accuracy"] - heur["accuracy"] == pytest.approx(4.0)
    assert not v["better_at_lowest_nfe"] and "95 % CI" in "\n".join(v["lines"])
    clean = base.copy()
    clean[np.flatnonzero(base == 0)[:20]] = 1  # +20 points, every change in the policy's favour
    policy = {**_pt(s, "policy:y", 16, 100 * clean.mean()), "per_problem": clean}
    [v] = check_targets([heur, policy])
    assert v["better_at_lowest_nfe"]


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


def test_full_diffusion_target_margin_or_efficiency():
    from dllm_viz.eval.targets import check_targets, targets_markdown

    s = "full diffusion"
    heur = [_pt(s, "confidence", 64, 60), _pt(s, "threshold", 30, 40)]
    margin = [_pt(s, "policy:m", 30, 46)]  # +6 over threshold at NFE 30
    assert check_targets(heur + margin)[0]["margin_met"]
    efficient = [_pt(s, "policy:e", 40, 59.5)]  # best heuristic's accuracy within a point at 62 % of its NFE
    v = check_targets(heur + efficient)[0]
    assert v["efficiency_met"] and v["nfe_ratio"] == pytest.approx(40 / 64)
    neither = [_pt(s, "policy:n", 30, 42), _pt(s, "policy:n", 64, 59.5)]
    v = check_targets(heur + neither)[0]
    assert not v["met"]
    assert "not met" in targets_markdown(heur + neither) and targets_markdown(heur) == ""


def test_expert_steering_verdict_pairs_name_es_with_name_and_needs_a_significant_win():
    import numpy as np

    from dllm_viz.eval.targets import check_targets

    s = "full diffusion"
    heur = [_pt(s, "threshold", 9, 50)]
    base = np.zeros(100)
    base[:60] = 1
    better = base.copy()
    better[60:80] = 1  # +20 points, all in the steered policy's favour
    plain = {**_pt(s, "policy:full", 3, 60), "per_problem": base}
    steered = {**_pt(s, "policy:full-es", 3, 80), "per_problem": better}
    [*_, v] = check_targets([*heur, plain, steered])
    assert v["policy"] == "policy:full-es vs policy:full" and v["met"]
    worse = {**_pt(s, "policy:full-es", 3, 40), "per_problem": np.r_[np.ones(40), np.zeros(60)]}
    [*_, v] = check_targets([*heur, plain, worse])
    assert not v["met"]
    assert [v["policy"] for v in check_targets([*heur, plain])] == ["policy:full"]  # no twin, no verdict


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
    assert read_runs(tmp_path / "runs.csv", expect_n=2, gen_length=8) == [row]
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
