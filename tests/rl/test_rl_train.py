"""The GRPO trainer end to end on a tiny random dLLM: rollouts, updates, checkpoints, resume."""

from __future__ import annotations

import json

import pytest
import torch

from dllm_viz.policy import DiTConfidencePolicy
from dllm_viz.rl.train import main

ARGS = [
    "--iterations",
    "3",
    "--prompts",
    "2",
    "--group-size",
    "4",
    "--gen-length",
    "16",
    "--warmup",
    "1",
    "--no-progress",
    "--save-every",
    "1",
    "--lr",
    "1e-3",
    "--reward",
    "additive",
    "--alpha",
    "1",
]


def _weights(path):
    return DiTConfidencePolicy.from_pretrained(path).state_dict()


def test_three_steps_change_every_weight_and_log_metrics(tiny_model_dir, tmp_path):
    # Additive reward varies with NFE even when every answer is wrong, so updates are never skipped.
    assert main(["--model", str(tiny_model_dir), "--out-dir", str(tmp_path / "run"), *ARGS]) == 0
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [0, 1, 2]
    assert all(not r["skipped"] and 0 < r["mean_unmask_prob"] < 1 and 1 <= r["nfe"] <= 16 for r in rows)
    torch.manual_seed(123)
    fresh = DiTConfidencePolicy().state_dict()
    trained = _weights(tmp_path / "run" / "checkpoint-last")
    unchanged = [k for k in fresh if torch.equal(fresh[k], trained[k])]
    assert unchanged == []
    assert (tmp_path / "run" / "checkpoint-best" / "model.safetensors").exists()


def test_checkpoint_best_is_chosen_by_held_out_reward(tiny_model_dir, tmp_path):
    out = tmp_path / "sel"
    assert (
        main(
            ["--model", str(tiny_model_dir), "--out-dir", str(out), *ARGS, "--eval-every", "1", "--eval-problems", "3"]
        )
        == 0
    )
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert all(0 <= r["heldout_correct"] <= 1 and 1 <= r["heldout_nfe"] <= 16 for r in rows)
    selection = json.loads((out / "checkpoint-best" / "selection.json").read_text())
    best = max(rows, key=lambda r: r["heldout_reward"])  # the first of equals: later ones must be strictly better
    assert selection["iteration"] == best["iteration"] and selection["heldout_problems"] == 3
    assert selection["heldout_reward"] == pytest.approx(best["heldout_reward"])


def test_resume_continues_exactly(tiny_model_dir, tmp_path):
    model = ["--model", str(tiny_model_dir)]
    main([*model, "--out-dir", str(tmp_path / "straight"), *ARGS])
    main([*model, "--out-dir", str(tmp_path / "resumed"), *ARGS, "--stop-after", "2"])
    main([*model, "--out-dir", str(tmp_path / "resumed"), *ARGS, "--resume"])
    rows = [json.loads(line)["iteration"] for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert rows == [0, 1, 2]
    a, b = _weights(tmp_path / "straight" / "checkpoint-last"), _weights(tmp_path / "resumed" / "checkpoint-last")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_expert_steering_groups_include_expert_rows(tiny_model_dir, tmp_path):
    args = [
        "--model",
        str(tiny_model_dir),
        "--out-dir",
        str(tmp_path / "es"),
        *ARGS,
        "--block-length",
        "16",
        "--es-thresholds",
        "0.9",
        "--es-block-length",
        "4",
        "--iterations",
        "1",
    ]
    assert main(args) == 0
    row = json.loads((tmp_path / "es" / "metrics.jsonl").read_text())
    assert "loss" in row


def test_bad_settings_exit_with_a_message(tiny_model_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--model", str(tiny_model_dir), "--out-dir", str(tmp_path / "x"), *ARGS, "--es-thresholds", "0.9"])
    assert exc.value.code == 2
    assert "expert steering is for full diffusion" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["--model", str(tiny_model_dir), "--out-dir", str(tmp_path / "y"), *ARGS, "--levels", "1", "7"])
    assert exc.value.code == 2
    assert "levels must be among [1, 2, 3], got [1, 7]" in capsys.readouterr().err


def test_training_problems_come_from_the_chosen_levels():
    from dllm_viz.rl.trainer import training_problems
    from dllm_viz.tasks.wordproblems import test_set

    easy = training_problems(0, 16, seed=1, levels=[1])
    assert all(p.level == 1 for p in easy)
    assert training_problems(0, 16, seed=1, levels=[1]) == easy
    held_out = {p.question for p in test_set(1, 200)}
    assert not held_out & {p.question for p in easy}


def test_checkpoints_are_selected_on_validation_problems_never_test_problems():
    from dllm_viz.rl.trainer import heldout_problems
    from dllm_viz.tasks.wordproblems import TEST_SET_MAX, test_set

    selection = heldout_problems(96, (1, 2), 1.0)
    assert len(selection) == 96 and {p.level for p in selection} == {1, 2}
    tests = {p.question for level in (1, 2) for p in test_set(level, TEST_SET_MAX, 1.0)}
    assert not tests & {p.question for p in selection}


@pytest.mark.browser
def test_policy_card_from_a_run(tiny_model_dir, tmp_path):
    from dllm_viz.rl.card import main as card_main

    main(
        ["--model", str(tiny_model_dir), "--out-dir", str(tmp_path / "run"), *ARGS, "--threads", "1", "--entropy-input"]
    )
    report = tmp_path / "results.md"
    report.write_text("| strategy | accuracy |\n|---|---|\n| policy | 1.0 |")
    assert card_main([str(tmp_path / "run"), str(tmp_path / "shipped"), "--eval", str(report), "--beta", "2"]) == 0
    card = (tmp_path / "shipped" / "README.md").read_text()
    from dllm_viz.strategies.trained_for import read_trained_for

    run_config = json.loads((tmp_path / "run" / "run_config.json").read_text())
    trained_for = read_trained_for(tmp_path / "shipped")  # the run's setting, its validation τ_π, the given β
    engine = run_config["engine"]
    assert (trained_for.gen_length, trained_for.block_length) == (engine["gen_length"], engine["block_length"])
    assert (trained_for.temperature, trained_for.beta) == (run_config["args"]["eval_temperature"], 2.0)
    assert "python -m dllm_viz.rl.train --out-dir" in card and "--alpha 1.0" in card and "| policy | 1.0 |" in card
    assert "3 rollout batches of 2 prompts × 4 rollouts" in card
    assert "- held-out evaluations: " in card and "![training curves" in card
    assert "its max-prob confidence and its entropy; it acts by independent Bernoulli draws" in card
    assert "CPU (1 torch threads)" in card  # the run's --threads, not the card process's
    assert sorted(p.name for p in (tmp_path / "shipped").iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
        "trained_for.json",
        "training_curves.png",
        "training_metrics.jsonl",
    ]
    from PIL import Image

    with Image.open(tmp_path / "shipped" / "training_curves.png") as img:
        assert img.width > 1000


def test_two_cpu_processes_train_one_policy_through_torchrun(tiny_model_dir, tmp_path):
    """torchrun + DDP (gloo): each process decodes half the prompt groups, rank 0 writes the run."""
    import subprocess
    import sys

    out = tmp_path / "ddp"
    args = [
        "--model",
        str(tiny_model_dir),
        "--out-dir",
        str(out),
        *ARGS,
        "--prompts",
        "4",
        "--iterations",
        "2",
        "--eval-every",
        "1",
        "--eval-problems",
        "2",
        "--threads",
        "1",
    ]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "dllm_viz.rl.train",
        *args,
    ]
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=240, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((out / "run_config.json").read_text())["processes"] == 2
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [0, 1]  # one row per iteration, written by rank 0 only
    assert all(not r["skipped"] and "heldout_reward" in r for r in rows)
    torch.manual_seed(123)
    fresh, trained = DiTConfidencePolicy().state_dict(), _weights(out / "checkpoint-last")
    assert not any(torch.equal(fresh[k], trained[k]) for k in fresh)
    bad_args = [str(tmp_path / "ddp-bad") if a == str(out) else a for a in args[:-6]]  # a fresh folder: `out` is
    # not empty now, and the destination is refused before the prompt count is checked
    bad = subprocess.run([*cmd[: -len(args)], *bad_args, "--prompts", "3"], capture_output=True, text=True, timeout=240)
    assert bad.returncode != 0 and "must be a multiple of the number of processes (2)" in bad.stderr


@pytest.mark.browser
def test_compare_runs_tables_the_shared_heldout_evaluations_and_draws_curves(tmp_path, capsys):
    from dllm_viz.rl.compare_runs import main as compare_main

    for name, rewards in (("fast", [0.2, 0.5, 0.7]), ("slow", [0.1, 0.15])):
        run = tmp_path / name
        run.mkdir()
        rows = [
            {
                "iteration": i,
                "reward": r,
                "nfe": 10.0 - i,
                "mean_unmask_prob": 0.1 * i,
                "heldout_reward": r,
                "heldout_correct": 0.9,
                "heldout_nfe": 5.0,
            }
            for i, r in enumerate(rewards)
        ]
        (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    out = tmp_path / "cmp.png"
    assert compare_main([str(tmp_path / "fast"), str(tmp_path / "slow"), "--labels", "A", "B", "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| 2 | 0.500 (0.90, 5.0) | 0.150 (0.90, 5.0) |" in table and "| 3 |" not in table  # only shared iterations
    assert out.stat().st_size > 10_000
    with pytest.raises(SystemExit):
        compare_main([str(tmp_path / "fast"), str(tmp_path / "slow"), "--out", str(out)])  # exists: needs --force
    assert "--force" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        compare_main([str(tmp_path / "fast"), str(tmp_path / "nowhere")])
    assert "is not an existing folder" in capsys.readouterr().err


def test_flags_are_generated_from_the_config_and_keep_their_old_names():
    import argparse

    from dllm_viz.flags import add_arguments, from_args, to_args
    from dllm_viz.rl.trainer import GRPOTrainConfig

    parser = argparse.ArgumentParser()
    add_arguments(parser, GRPOTrainConfig)
    argv = [
        "--out-dir", "o", "--group-size", "4", "--prompts", "2", "--lr", "1e-3", "--warmup", "1",
        "--es-thresholds", "0.9", "0.8", "--levels", "1", "2", "--no-progress", "--resume", "--top-p", "3",
        "--block-length", "64", "--entropy-input",
    ]  # fmt: skip
    config = from_args(GRPOTrainConfig, parser.parse_args(argv))
    grpo = config.grpo
    assert (grpo.num_generations, grpo.prompts_per_batch, grpo.learning_rate, grpo.warmup_steps) == (4, 2, 1e-3, 1)
    assert grpo.es_thresholds == (0.9, 0.8) and config.levels == (1, 2) and config.top_p == 3 and config.entropy_input
    assert config.resume and not config.progress and config.block_length == 64 and grpo.es_block_length is None
    defaults = from_args(GRPOTrainConfig, parser.parse_args(["--out-dir", "o"]))
    assert defaults == GRPOTrainConfig(out_dir="o")  # every flag's default is the field's
    flags = to_args(config)  # what run_config.json records and the policy card turns back into a command
    assert flags["lr"] == 1e-3 and flags["no_progress"] is True and flags["group_size"] == 4
    rebuilt = []
    for key, value in flags.items():
        if value in (None, False, ()):
            continue
        values = [] if value is True else list(value) if isinstance(value, tuple) else [value]
        rebuilt += [f"--{key.replace('_', '-')}", *map(str, values)]
    assert from_args(GRPOTrainConfig, parser.parse_args(rebuilt)) == config


def test_a_batch_callback_sees_every_row_and_can_stop_the_run(tiny_model_dir, tmp_path):
    from dllm_viz.rl.config import GRPOConfig
    from dllm_viz.rl.trainer import GRPOTrainConfig, GRPOTrainer
    from dllm_viz.training import read_state

    seen = []

    def stop_after_two(trainer, row):
        seen.append((trainer, row["iteration"], row["reward"]))
        return row["iteration"] == 1

    grpo = GRPOConfig(num_generations=4, prompts_per_batch=2, warmup_steps=1, learning_rate=1e-3)
    config = GRPOTrainConfig(
        out_dir=str(tmp_path / "cb"), model=str(tiny_model_dir), iterations=5, grpo=grpo, gen_length=16,
        eval_every=0, save_every=10, progress=False,
    )  # fmt: skip
    trainer = GRPOTrainer(config, callbacks=[stop_after_two])
    trainer.train()
    assert [(t is trainer, it) for t, it, _ in seen] == [(True, 0), (True, 1)]
    rows = [json.loads(line) for line in (tmp_path / "cb" / "metrics.jsonl").read_text().splitlines()]
    assert [r["reward"] for r in rows] == [reward for *_, reward in seen]
    assert read_state(tmp_path / "cb" / "checkpoint-last")["iteration"] == 1  # saved although save_every is 10
    assert (tmp_path / "cb" / "checkpoint-best" / "model.safetensors").exists()


def test_init_from_starts_the_next_stage_from_a_trained_policy(tiny_model_dir, tmp_path, capsys):
    """An α curriculum: stage two starts from stage one's weights and refuses another network."""
    model = ["--model", str(tiny_model_dir)]
    main([*model, "--out-dir", str(tmp_path / "stage1"), *ARGS, "--iterations", "1"])
    stage1 = tmp_path / "stage1" / "checkpoint-last"
    args = [*model, "--out-dir", str(tmp_path / "stage2"), *ARGS, "--alpha", "6", "--init-from", str(stage1)]
    assert main([*args, "--stop-after", "0"]) == 0
    a, b = _weights(stage1), _weights(tmp_path / "stage2" / "checkpoint-last")
    assert all(torch.equal(a[k], b[k]) for k in a)
    torch.manual_seed(123)
    assert not torch.equal(DiTConfidencePolicy().state_dict()["head.weight"], a["head.weight"])
    with pytest.raises(SystemExit) as exc:
        main([*model, "--out-dir", str(tmp_path / "stage3"), *ARGS, "--init-from", str(stage1), "--entropy-input"])
    assert exc.value.code == 2
    assert "--entropy-input True vs False" in capsys.readouterr().err
    assert not (tmp_path / "stage3").exists()
