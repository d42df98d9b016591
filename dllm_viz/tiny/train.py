"""Train the built-in tiny dLLM on procedural word problems (LLaDA-SFT / MDLM objective).

    python -m dllm_viz.tiny.train --out-dir outputs/tiny-dllm --threads 1   # ~1.5 h on 2 shared CPU cores
    python -m dllm_viz.tiny.train --out-dir outputs/tiny-dllm --resume # continue after a stop

Every batch is a pure function of ``(seed, step)``: its problems come from the training
stream of :mod:`dllm_viz.tasks.wordproblems` (which can never yield a held-out question) and
its masks from a generator seeded with the step. A resumed run therefore continues exactly
as if it had never stopped; checkpoints hold only weights, AdamW moments and the step, all
as safetensors/JSON (no pickles). The result in ``<out-dir>/final`` loads with
``AutoModelForMaskedLM`` / ``AutoTokenizer`` like any hub masked LM.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import torch
from tqdm.auto import tqdm
from transformers import AutoModelForMaskedLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from ..flags import add_arguments, from_args
from ..outputs import check_destination
from ..tasks.wordproblems import DEFAULT_FREE, LEVELS, generate, test_set
from ..training import adamw, load_optimizer, read_state, save_checkpoint, warmup_cosine
from .data import collate, diffusion_loss, mask_responses
from .model import build_model, count_parameters, modernbert_config
from .tokenizer import build_tokenizer
from .train_config import RESUMABLE_CHANGES, TrainConfig

logger = logging.getLogger(__name__)

CHECKPOINT, FINAL = "checkpoint", "final"
EVAL_RATIOS = (0.3, 0.7, 1.0)  # held-out masked loss is reported at these fixed mask ratios


def level_weights(config: TrainConfig, step: int) -> tuple[float, ...]:
    """Curriculum weights of levels 1..3 at ``step`` (linear from start to end weights)."""
    frac = step / max(config.steps - 1, 1)
    return tuple(a + (b - a) * frac for a, b in zip(config.level_weights_start, config.level_weights_end, strict=True))


def training_problems(config: TrainConfig, step: int) -> list:
    """The problems of one step, a pure function of ``(seed, step)``."""
    rng = random.Random(f"tiny-train/{config.seed}/{step}")
    level = rng.choices(LEVELS, weights=level_weights(config, step))[0]
    free = DEFAULT_FREE if rng.random() < config.free_fraction else 0.0
    first = (config.seed * 1_000_003 + step) * config.batch_size
    return [generate(first + i, level, "train", free) for i in range(config.batch_size)]


def learning_rate(config: TrainConfig, step: int) -> float:
    """Linear warmup to ``lr`` (the first step already at ``lr / warmup_steps``), then cosine decay
    to ``lr * min_lr_ratio``."""
    return warmup_cosine(
        step, config.warmup_steps, config.steps, config.min_lr_ratio, peak=config.lr, warm_first_step=True
    )


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but no GPU is available")
    return torch.device(name)


def train_step(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    config: TrainConfig,
    step: int,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
) -> float:
    """One optimiser step on the batch of ``step``; returns the loss."""
    batch = collate(tokenizer, training_problems(config, step), config.gen_length).to(device)
    generator = torch.Generator(device=device).manual_seed(config.seed * 1_000_003 + step)
    noisy, masked, t = mask_responses(batch, tokenizer.mask_token_id, generator, config.min_mask_ratio)
    P = batch.prompt_length
    logits = model(input_ids=noisy, attention_mask=batch.attention_mask).logits
    loss = diffusion_loss(logits[:, P:], batch.input_ids[:, P:], masked[:, P:], t, config.loss_weighting)
    for group in optimizer.param_groups:
        group["lr"] = learning_rate(config, step)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    optimizer.step()
    return float(loss.detach())


@torch.no_grad()
def heldout_loss(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, config: TrainConfig, device: torch.device, n: int = 64
) -> dict[str, float]:
    """Masked cross-entropy on held-out problems at the fixed ratios :data:`EVAL_RATIOS`."""
    was_training = model.training
    model.eval()
    out = {}
    try:
        for level in LEVELS:
            batch = collate(tokenizer, test_set(level, n, DEFAULT_FREE), config.gen_length).to(device)
            P = batch.prompt_length
            for ratio in EVAL_RATIOS:
                generator = torch.Generator(device=device).manual_seed(level)
                noisy, masked, t = mask_responses(
                    batch, tokenizer.mask_token_id, generator, ratio=torch.full((n,), ratio)
                )
                logits = model(input_ids=noisy, attention_mask=batch.attention_mask).logits
                loss = diffusion_loss(logits[:, P:], batch.input_ids[:, P:], masked[:, P:], t)
                out[f"loss_l{level}_t{ratio}"] = float(loss)
    finally:
        model.train(was_training)
    return out


def heldout_accuracy(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, config: TrainConfig, n: int
) -> dict[str, float]:
    """Accuracy per level with the engine: High-Confidence-K, one token per step, BL = L/8.

    Runs through the same backend class that serves hub masked LMs, so it measures what the
    app will see. (These are the first ``n`` problems of the fixed test set; they are only
    watched, never used to pick a checkpoint.)
    """
    from ..backends.hf import MaskedLMBackend
    from ..engine import EngineConfig
    from ..eval.solve import solve
    from ..strategies import build_strategy

    backend = MaskedLMBackend(model, tokenizer, name="training")  # sets eval + no grad
    try:
        engine = EngineConfig.semi_ar(config.gen_length)
        return {
            f"acc_l{level}": solve(
                backend, test_set(level, n, DEFAULT_FREE), build_strategy("confidence"), engine
            ).accuracy
            for level in LEVELS
        }
    finally:
        model.train().requires_grad_(True)


def load_checkpoint(
    directory: Path, config: TrainConfig, device: torch.device
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, torch.optim.AdamW, dict]:
    """(model, tokenizer, optimizer, state) from a checkpoint, refusing a different run's config."""
    state = read_state(directory)
    saved = TrainConfig.from_dict(state["config"])
    diff = sorted(k for k, v in config.to_dict().items() if k not in RESUMABLE_CHANGES and v != saved.to_dict()[k])
    if diff:
        raise ValueError(
            f"cannot resume {directory}: the checkpoint was made with different {diff} "
            f"({ {k: saved.to_dict()[k] for k in diff} }); use the same settings or a new --out-dir"
        )
    tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    model = AutoModelForMaskedLM.from_pretrained(directory, local_files_only=True).to(device).train()
    optimizer = make_optimizer(model, config)
    load_optimizer(directory, optimizer, device=str(device))
    return model, tokenizer, optimizer, state


def initial_model(config: TrainConfig) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    """(tokenizer, model) to start from: fresh (seeded), or ``config.init_from``'s weights."""
    if config.init_from is None:
        tokenizer = build_tokenizer(model_max_length=config.model.max_positions)
        return tokenizer, build_model(config.model, tokenizer, seed=config.seed)
    if not (Path(config.init_from) / "config.json").is_file():
        raise ValueError(f"init_from ({config.init_from!r}) is not a saved model folder (no config.json)")
    tokenizer = AutoTokenizer.from_pretrained(config.init_from, local_files_only=True)
    model = AutoModelForMaskedLM.from_pretrained(config.init_from, local_files_only=True)
    expected = modernbert_config(config.model, tokenizer)
    keys = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "max_position_embeddings")
    diff = {
        k: (getattr(model.config, k), getattr(expected, k))
        for k in keys
        if getattr(model.config, k) != getattr(expected, k)
    }
    if diff:
        raise ValueError(
            f"init_from ({config.init_from!r}) holds a different network than --hidden-size/--layers/...: "
            f"{ {k: f'{a} saved vs {b} configured' for k, (a, b) in diff.items()} }"
        )
    return tokenizer, model


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW; no weight decay on norms and biases (the usual transformer recipe)."""
    return adamw(model, config.lr, (0.9, 0.98), config.weight_decay)


def train(config: TrainConfig, resume: bool = False, progress: bool = True) -> dict:
    """Run (or resume) training; returns the summary also written to ``out_dir/final/training.json``.

    Raises:
        ValueError: ``out_dir`` already holds a checkpoint and ``resume`` is False, or it holds
            a checkpoint of a run with different settings, or it is not empty and holds no
            checkpoint (another run's output or a shipped model).
    """
    out_dir = Path(config.out_dir)
    device = resolve_device(config.device)
    if config.threads:
        torch.set_num_threads(config.threads)
    model, tokenizer, optimizer, state = start_run(config, resume, device)
    params = count_parameters(model)
    logger.info("%d parameters, device %s, %d CPU threads", params, device, torch.get_num_threads())

    start_step, started, earlier = state["step"], time.perf_counter(), state["elapsed_seconds"]
    elapsed = lambda: earlier + time.perf_counter() - started  # noqa: E731 (wall time over all sessions)
    ema = None
    bar = tqdm(
        range(start_step, config.steps),
        initial=start_step,
        total=config.steps,
        disable=not progress,
        desc="train",
        dynamic_ncols=True,
    )
    with (out_dir / "metrics.jsonl").open("a") as metrics:
        for step in bar:
            loss = train_step(model, tokenizer, config, step, optimizer, device)
            ema = loss if ema is None else 0.95 * ema + 0.05 * loss
            done = step + 1
            if config.log_every and done % config.log_every == 0:
                bar.set_postfix(loss=f"{ema:.3f}", lr=f"{learning_rate(config, step):.1e}")
                line = {"step": done, "loss": loss, "loss_ema": ema, "lr": learning_rate(config, step)}
                _write_line(metrics, {**line, "seconds": elapsed()})
            if config.eval_every and (done % config.eval_every == 0 or done == config.steps):
                record = evaluate(model, tokenizer, config, device, {"step": done, "seconds": elapsed()})
                state["history"].append(record)
                _write_line(metrics, {"eval": record})
            out_of_time = config.time_limit_minutes is not None and elapsed() > 60 * config.time_limit_minutes
            if done == config.steps or out_of_time or (config.checkpoint_every and done % config.checkpoint_every == 0):
                state.update(step=done, elapsed_seconds=elapsed(), config=config.to_dict())
                save_checkpoint(out_dir / CHECKPOINT, model, optimizer, state, tokenizer)
            if out_of_time:
                logger.warning(
                    "time limit of %s min reached at step %d; rerun with --resume", config.time_limit_minutes, done
                )
                break
    bar.close()
    return finish(config, model, tokenizer, state, params, device)


def start_run(
    config: TrainConfig, resume: bool, device: torch.device
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, torch.optim.AdamW, dict]:
    """(model, tokenizer, optimizer, state) to train from: the checkpoint in ``out_dir`` when
    resuming, else a new run in a folder that holds no other run's files."""
    out_dir = Path(config.out_dir)
    checkpoint = out_dir / CHECKPOINT
    # Never write into another run's folder (or a shipped model): only --resume may reuse one.
    if checkpoint.exists() and not resume:
        raise ValueError(
            f"{out_dir} already holds a training run ({checkpoint}); pass --resume to continue it, "
            "or choose a new --out-dir"
        )
    if not checkpoint.exists():
        check_destination(
            out_dir,
            kind="folder",
            force=False,
            hint=f"it holds no {CHECKPOINT}/ to --resume, so choose a new --out-dir",
        )
    if resume and checkpoint.exists():
        model, tokenizer, optimizer, state = load_checkpoint(checkpoint, config, device)
        logger.info("resuming %s at step %d", checkpoint, state["step"])
    else:
        tokenizer, model = initial_model(config)
        model = model.to(device).train()  # type: ignore[arg-type]  # transformers' decorated .to reads as taking the model
        optimizer = make_optimizer(model, config)
        state = {"step": 0, "elapsed_seconds": 0.0, "history": []}
    out_dir.mkdir(parents=True, exist_ok=True)
    return model, tokenizer, optimizer, state


def evaluate(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, config: TrainConfig, device: torch.device, when: dict
) -> dict:
    """``when`` (step, seconds) with the held-out losses and, with ``eval_problems``, accuracies."""
    record = {**when, **heldout_loss(model, tokenizer, config, device)}
    if config.eval_problems:
        record.update(heldout_accuracy(model, tokenizer, config, config.eval_problems))
    logger.info("eval %s", json.dumps(record))
    return record


def _write_line(metrics: TextIO, entry: dict) -> None:
    metrics.write(json.dumps(entry) + "\n")
    metrics.flush()


def finish(
    config: TrainConfig, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, state: dict, params: int,
    device: torch.device,
) -> dict:  # fmt: skip
    """The run's summary; a finished run's model, tokenizer and summary saved in ``out_dir/final``."""
    summary = {
        "steps": state["step"],
        "finished": state["step"] >= config.steps,
        "parameters": params,
        "train_seconds": state["elapsed_seconds"],
        "device": str(device),
        "threads": torch.get_num_threads(),
        "config": config.to_dict(),
        "last_eval": state["history"][-1] if state["history"] else None,
    }
    if summary["finished"]:
        final = Path(config.out_dir) / FINAL
        model.save_pretrained(final)
        tokenizer.save_pretrained(final)
        (final / "training.json").write_text(json.dumps(summary, indent=1))
    return summary


@dataclass(frozen=True)
class SessionFlags:
    """How this invocation runs, beside what it trains (not part of the run's settings)."""

    resume: bool = field(default=False, metadata={"help": "continue the checkpoint in --out-dir"})
    progress: bool = field(default=True, metadata={"help": "no progress bar"})


def build_parser() -> argparse.ArgumentParser:
    """The command's flags, generated from :class:`TrainConfig` (with :class:`TinyModelConfig`) and
    :class:`SessionFlags`, which hold the defaults and help."""
    p = argparse.ArgumentParser(prog="python -m dllm_viz.tiny.train", description=__doc__.split("\n")[0])
    add_arguments(p, TrainConfig)
    add_arguments(p, SessionFlags)
    return p


def parse_args(argv: list[str] | None = None) -> tuple[TrainConfig, bool, bool]:
    """CLI flags → (TrainConfig, resume, progress bar)."""
    args = build_parser().parse_args(argv)
    session = from_args(SessionFlags, args)
    return from_args(TrainConfig, args), session.resume, session.progress


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config, resume, progress = parse_args(argv)
        summary = train(config, resume=resume, progress=progress)
    except ValueError as err:  # a user error (folder, settings): the message says what to do
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    logger.info("done: %s", json.dumps({k: v for k, v in summary.items() if k != "config"}))
    return summary


if __name__ == "__main__":
    main()
