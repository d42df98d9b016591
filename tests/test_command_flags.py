"""The commands whose flags are generated from config dataclasses (:mod:`dllm_viz.flags`) keep the
flag names they always had, accept every invocation the docs show, and with no flags (beyond the
required ones) give exactly the dataclasses' defaults."""

from __future__ import annotations

import dataclasses
import importlib
import shlex
from pathlib import Path

import pytest

from dllm_viz.cli import COMMANDS as CLI_COMMANDS
from dllm_viz.eval.__main__ import EvalFlags
from dllm_viz.eval.pairs import PairsFlags
from dllm_viz.flags import from_args
from dllm_viz.generate import ModelFlags
from dllm_viz.strategies import StrategySpec
from dllm_viz.tiny.evaluate import CPUModelFlags, EvaluateFlags
from dllm_viz.tiny.train import SessionFlags, TrainConfig
from dllm_viz.ui.stories import StoriesFlags

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), *sorted((ROOT / "assets").rglob("README.md"))]

# module -> (the flags it had before they were generated, the required arguments, the configs they give)
COMMANDS: dict[str, tuple[set[str], list[str], list[object]]] = {
    "dllm_viz.tiny.train": (
        {
            *("--out-dir", "--resume", "--steps", "--batch-size", "--lr", "--warmup-steps", "--gen-length"),
            *("--level-weights-start", "--level-weights-end", "--free-fraction", "--loss-weighting"),
            *("--eval-every", "--eval-problems", "--checkpoint-every", "--log-every", "--time-limit-minutes"),
            *("--seed", "--device", "--threads", "--hidden-size", "--layers", "--heads", "--intermediate-size"),
            *("--init-from", "--no-progress"),
        },
        [],
        [TrainConfig(), SessionFlags()],
    ),
    "dllm_viz.tiny.evaluate": (
        {
            "--model",
            "--n",
            "--free",
            "--gen-length",
            "--batch-size",
            "--speed-prompts",
            "--json",
            "--force",
            "--threads",
        },
        [],
        [CPUModelFlags(), EvaluateFlags()],
    ),
    "dllm_viz.eval.__main__": (
        {
            *("--model", "--device", "--trust-remote-code", "--model-code", "--threads"),
            *("--level", "--free", "--n", "--problems", "--split", "--gen-length", "--settings", "--seeds"),
            *("--batch-size", "--policy", "--temperatures", "--betas", "--policy-label", "--no-heuristics"),
            *("--compact", "--strategies", "--out", "--force", "--include"),
        },
        [],
        [ModelFlags(), EvalFlags()],
    ),
    "dllm_viz.eval.pairs": (
        {"--n", "--gen-length", "--setting", "--pair"},
        ["a.csv", "--n", "3", "--pair", "x", "y"],
        [PairsFlags(n=3)],
    ),
    "dllm_viz.ui.stories": (
        {"--a", "--b", "--full", "--gen-length", "--block-length", "--n", "--show"},
        ["--a", "confidence", "--b", "threshold,threshold=0.7"],
        [StoriesFlags(a=StrategySpec.parse("confidence"), b=StrategySpec.parse("threshold", threshold=0.7))],
    ),
}


def documented(module: str) -> list[list[str]]:
    """The arguments of every ``python -m <module> ...`` (``torchrun ... -m <module> ...`` too; a
    package's ``__main__`` by the package's name) or ``dllm-viz <name> ...`` in the docs and the
    module's docstring: continuations joined, inline code cut at its backtick, comments dropped."""
    prefixes = [
        f" -m {module.removesuffix('.__main__')} ",
        *(f"dllm-viz {n} " for n, (m, _) in CLI_COMMANDS.items() if m == module),
    ]
    texts = [p.read_text(encoding="utf-8") for p in DOCS] + [importlib.import_module(module).__doc__ or ""]
    found = []
    for text in texts:
        for line in text.replace("\\\n", " ").splitlines():
            for prefix in prefixes:
                for rest in line.split(prefix)[1:]:
                    found.append(shlex.split(rest.partition("`")[0], comments=True))
    return found


@pytest.mark.parametrize("module", COMMANDS)
def test_flags_keep_their_names_and_defaults(module):
    old_flags, required, configs = COMMANDS[module]
    parser = importlib.import_module(module).build_parser()
    assert old_flags <= set(parser._option_string_actions), sorted(old_flags - set(parser._option_string_actions))
    args = parser.parse_args(required)
    for config in configs:
        assert from_args(type(config), args) == config


@pytest.mark.parametrize("module", COMMANDS)
def test_every_documented_invocation_parses(module):
    parser = importlib.import_module(module).build_parser()
    invocations = documented(module)
    if module != "dllm_viz.ui.stories":  # a maintenance command: its docs name it without flags
        assert invocations, f"no documented {module} command found (has the extraction broken?)"
    for argv in invocations:
        parser.parse_args(argv)  # exits 2 on a flag it no longer knows


def test_tiny_evaluate_loads_like_every_command_but_on_the_cpu():
    """Its model flags are ModelFlags' own, the CPU by default (it reports CPU decoding speed)."""
    assert dataclasses.asdict(CPUModelFlags()) == dataclasses.asdict(ModelFlags(device="cpu"))
    assert issubclass(CPUModelFlags, ModelFlags)


def test_the_model_cards_training_command_rebuilds_the_run():
    """A model card shows each stage as the ``python -m dllm_viz.tiny.train`` flags that differ from
    the defaults; they parse back to the same settings (the optimiser's included)."""
    from dllm_viz.tiny.card import stage_command
    from dllm_viz.tiny.model import TinyModelConfig
    from dllm_viz.tiny.train import parse_args

    model = TinyModelConfig(hidden_size=64, num_layers=2, num_heads=2, intermediate_size=128)
    config = TrainConfig(
        out_dir="o", model=model, gen_length=32, level_weights_start=(1.0, 0.0, 0.0), min_mask_ratio=0.01,
        weight_decay=0.0, time_limit_minutes=5.0, threads=2, init_from="assets/tiny-dllm",
    )  # fmt: skip
    command = stage_command(config.to_dict())
    assert command.startswith("python -m dllm_viz.tiny.train ")
    assert parse_args(shlex.split(command)[3:])[0] == config
