"""Training the built-in dLLM: the forward process, the loss, the CLI, checkpoints and resume."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForMaskedLM

from dllm_viz.tasks import generate
from dllm_viz.tiny.data import collate, diffusion_loss, encode_prompt, encode_response, mask_responses
from dllm_viz.tiny.model import TinyModelConfig, build_model
from dllm_viz.tiny.tokenizer import build_tokenizer
from dllm_viz.tiny.train import (
    TrainConfig,
    learning_rate,
    level_weights,
    main,
    parse_args,
    train,
    training_problems,
)

TINY = TinyModelConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64)


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


def tiny_run(out_dir, **overrides) -> TrainConfig:
    kwargs = dict(
        out_dir=str(out_dir),
        model=TINY,
        batch_size=4,
        steps=2,
        warmup_steps=1,
        eval_every=0,
        checkpoint_every=1,
        log_every=1,
    )
    return TrainConfig(**{**kwargs, **overrides})


# --- data and objective ----------------------------------------------------------------------


def test_batches_follow_the_engine_layout(tok):
    problems = [generate(0, 1), generate(0, 3)]
    batch = collate(tok, problems, gen_length=64)
    P = batch.prompt_length
    for row, problem in enumerate(problems):
        prompt = encode_prompt(tok, problem.question)
        pad = P - len(prompt)
        assert batch.input_ids[row, :pad].eq(tok.pad_token_id).all() and batch.attention_mask[row, :pad].eq(0).all()
        assert batch.input_ids[row, pad:P].tolist() == prompt and batch.attention_mask[row, pad:].eq(1).all()
        response = batch.input_ids[row, P:].tolist()
        assert len(response) == 64 and response[-1] == tok.eos_token_id
        end = response.index(tok.eos_token_id)
        assert tok.decode(response[:end]) == problem.solution
        assert set(response[end:]) == {tok.eos_token_id}  # EOS padding teaches the model to stop


def test_a_response_without_room_for_eos_is_refused(tok):
    with pytest.raises(ValueError, match=r"leaves no EOS within gen_length \(8\)"):
        encode_response(tok, "Tom has 12 + 5 = 17 apples. #### 17", gen_length=8)


def test_masking_never_touches_the_prompt_and_follows_the_ratio(tok):
    batch = collate(tok, [generate(s, 2) for s in range(64)], gen_length=64)
    generator = torch.Generator().manual_seed(0)
    noisy, masked, t = mask_responses(batch, tok.mask_token_id, generator)
    P = batch.prompt_length
    assert not masked[:, :P].any() and torch.equal(noisy[:, :P], batch.input_ids[:, :P])
    assert masked[:, P:].any(1).all()
    assert torch.equal(noisy[masked], torch.full_like(noisy[masked], tok.mask_token_id))
    assert torch.equal(noisy[~masked], batch.input_ids[~masked])
    assert ((t > 0) & (t <= 1)).all()
    # the realised ratio tracks t (64 positions per row, so within a loose band)
    assert torch.corrcoef(torch.stack([masked[:, P:].float().mean(1), t]))[0, 1] > 0.9
    _, all_masked, _ = mask_responses(batch, tok.mask_token_id, generator, ratio=torch.ones(64))
    assert all_masked[:, P:].all()
    _, none_masked, _ = mask_responses(batch, tok.mask_token_id, generator, ratio=torch.zeros(64))
    assert none_masked[:, P:].sum(1).eq(1).all()  # ≥ 1 masked per row, so every row carries signal


def test_loss_counts_only_masked_positions():
    logits = torch.zeros(1, 3, 5)
    logits[0, 0, 4] = 100.0  # confidently wrong at an unmasked position: must not count
    targets = torch.tensor([[1, 2, 3]])
    masked = torch.tensor([[False, True, True]])
    t = torch.tensor([0.5])
    uniform = torch.log(torch.tensor(5.0))
    torch.testing.assert_close(diffusion_loss(logits, targets, masked, t), uniform)
    torch.testing.assert_close(diffusion_loss(logits, targets, masked, t, "elbo"), 2 * uniform / 0.5 / 3)
    with pytest.raises(ValueError, match=r"weighting \('l2'\) must be one of"):
        diffusion_loss(logits, targets, masked, t, "l2")


# --- schedule and config ---------------------------------------------------------------------


def test_schedule_and_curriculum():
    config = TrainConfig(steps=1000, warmup_steps=100, lr=1e-3, min_lr_ratio=0.1)
    assert learning_rate(config, 0) == pytest.approx(1e-5)
    assert learning_rate(config, 99) == pytest.approx(1e-3)
    assert learning_rate(config, 999) == pytest.approx(1e-4, rel=1e-3)
    assert level_weights(config, 0) == pytest.approx(config.level_weights_start)
    assert level_weights(config, 999) == pytest.approx(config.level_weights_end)
    batch = training_problems(config, 5)
    assert batch == training_problems(config, 5) and len({p.level for p in batch}) == 1
    assert batch != training_problems(config, 6)


def test_config_round_trip_and_named_errors():
    config = TrainConfig(model=TINY, level_weights_start=[1, 0, 0])
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match=r"unknown TrainConfig field\(s\) \['epochs'\]"):
        TrainConfig.from_dict({"epochs": 3})
    with pytest.raises(ValueError, match=r"level_weights_end \(\(1.0, 1.0\)\) must be 3 non-negative"):
        TrainConfig(level_weights_end=(1, 1))
    with pytest.raises(ValueError, match=r"gen_length \(60\) must be a multiple of 8"):
        TrainConfig(gen_length=60)
    with pytest.raises(ValueError, match=r"device \('tpu'\)"):
        TrainConfig(device="tpu")


def test_cli_flags_reach_the_config():
    config, resume, progress = parse_args(
        [
            "--steps",
            "7",
            "--layers",
            "2",
            "--hidden-size",
            "64",
            "--heads",
            "2",
            "--level-weights-start",
            "1,0,0",
            "--resume",
            "--no-progress",
        ]
    )
    assert (config.steps, config.model.num_layers, config.model.hidden_size) == (7, 2, 64)
    assert config.level_weights_start == (1.0, 0.0, 0.0) and resume and not progress


# --- training runs ---------------------------------------------------------------------------


def test_two_step_smoke_run_trains_saves_and_evaluates(tmp_path, tok):
    summary = main(
        [
            "--out-dir",
            str(tmp_path),
            "--steps",
            "2",
            "--batch-size",
            "4",
            "--warmup-steps",
            "1",
            "--hidden-size",
            "32",
            "--layers",
            "2",
            "--heads",
            "2",
            "--intermediate-size",
            "64",
            "--eval-every",
            "2",
            "--eval-problems",
            "1",
            "--log-every",
            "1",
            "--no-progress",
        ]
    )
    assert summary["finished"] and summary["steps"] == 2
    assert set(summary["last_eval"]) >= {"acc_l1", "acc_l2", "acc_l3", "loss_l1_t1.0"}
    final = tmp_path / "final"
    assert json.loads((final / "training.json").read_text())["parameters"] == summary["parameters"]
    trained = AutoModelForMaskedLM.from_pretrained(final, local_files_only=True).state_dict()
    initial = build_model(TINY, tok, seed=0).state_dict()
    for name, value in initial.items():
        assert not torch.equal(value, trained[name]), f"{name} did not move"
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines if "loss" in line] == [1, 2]
    assert [line["eval"]["step"] for line in lines if "eval" in line] == [2]


def test_resume_continues_exactly_and_refuses_other_runs(tmp_path):
    straight = train(tiny_run(tmp_path / "a", steps=3), progress=False)
    stopped = train(tiny_run(tmp_path / "b", steps=3, time_limit_minutes=1e-9), progress=False)
    assert not stopped["finished"] and stopped["steps"] == 1
    with pytest.raises(ValueError, match="already holds a training run .*; pass --resume"):
        train(tiny_run(tmp_path / "b", steps=3), progress=False)
    with pytest.raises(ValueError, match=r"different \['lr'\]"):
        train(tiny_run(tmp_path / "b", steps=3, lr=5e-4), resume=True, progress=False)
    resumed = train(tiny_run(tmp_path / "b", steps=3), resume=True, progress=False)
    assert straight["finished"] and resumed["finished"]
    a = load_file(str(tmp_path / "a" / "final" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "final" / "model.safetensors"))
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_init_from_continues_a_saved_model_and_checks_its_shape(tmp_path):
    train(tiny_run(tmp_path / "stage1", steps=1), progress=False)
    stage1 = tmp_path / "stage1" / "final"
    summary = train(tiny_run(tmp_path / "stage2", steps=1, init_from=str(stage1)), progress=False)
    assert summary["finished"] and summary["config"]["init_from"] == str(stage1)
    a = load_file(str(stage1 / "model.safetensors"))
    b = load_file(str(tmp_path / "stage2" / "final" / "model.safetensors"))
    assert any(not torch.equal(a[k], b[k]) for k in a)
    wider = TinyModelConfig(hidden_size=64, num_layers=2, num_heads=2, intermediate_size=64)
    with pytest.raises(ValueError, match=r"holds a different network.*hidden_size"):
        train(tiny_run(tmp_path / "stage3", steps=1, init_from=str(stage1), model=wider), progress=False)
    with pytest.raises(ValueError, match=r"is not a saved model folder"):
        train(tiny_run(tmp_path / "stage4", steps=1, init_from=str(tmp_path)), progress=False)


def test_model_card_lists_each_stage_command_and_the_measured_tables(tmp_path):
    import json

    from dllm_viz.tiny.card import main as card_main

    train(tiny_run(tmp_path / "s1", steps=2), progress=False)
    train(tiny_run(tmp_path / "s2", steps=3, lr=3e-4, init_from=str(tmp_path / "s1" / "final")), progress=False)
    evaluation = {
        "levels": [
            {
                "setting": "semi-AR",
                "block_length": 8,
                "level": 1,
                "n": 200,
                "accuracy": 0.9,
                "mean_nfe": 64.0,
                "no_answer": 0.0,
            }
        ],
        "speed": {"median_steps_per_s": 80.0, "min_steps_per_s": 70.0, "prompts": 20, "threads": 1},
    }
    (tmp_path / "eval.json").write_text(json.dumps(evaluation))
    (tmp_path / "results.md").write_text(
        "# m: 200 problems\n\n### semi-AR BL=8\n\n| strategy |\n|---|\n| confidence |\n"
    )
    dest = tmp_path / "shipped"
    assert (
        card_main(
            [
                str(tmp_path / "s1"),
                str(tmp_path / "s2"),
                "--dest",
                str(dest),
                "--evaluate",
                str(tmp_path / "eval.json"),
                "--baselines",
                str(tmp_path / "results.md"),
            ]
        )
        == 0
    )
    card = (dest / "README.md").read_text()
    assert f"--out-dir {tmp_path / 's1'} --batch-size 4 --steps 2" in card and "--lr 0.0003" in card
    assert f"--init-from {tmp_path / 's1' / 'final'}" in card and "--level-weights" not in card
    assert (
        "--hidden-size 32 --layers 2 --heads 2" in card
        and "| semi-AR (BL=8) | fixed answer | 1 | 200 | 90.0 % | 64.0 |" in card
    )
    assert "80 steps/s" in card and "| confidence |" in card and "Held-out problems: 200 problems." in card
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in dest.iterdir()}
    assert not (dest / "optimizer.safetensors").exists()
    with pytest.raises(SystemExit):
        card_main([str(tmp_path), "--dest", str(dest), "--evaluate", str(tmp_path / "eval.json")])
