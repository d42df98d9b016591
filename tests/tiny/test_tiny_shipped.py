"""The shipped built-in model (assets/tiny-dllm): complete, small, and it solves a problem of its world."""

from __future__ import annotations

from pathlib import Path

import pytest

from dllm_viz.backends import BUILTIN_MODEL, load_backend
from dllm_viz.engine import EngineConfig, run
from dllm_viz.strategies import build_strategy
from dllm_viz.tasks import verify_chain

ASSET = Path(__file__).resolve().parents[2] / "assets" / "tiny-dllm"
QUESTION = "Tom has 12 apples. He buys 5 more apples. How many apples does Tom have now?"


@pytest.fixture(scope="module")
def backend():
    return load_backend(str(ASSET), device="cpu")


def test_shipped_files_are_complete_and_small():
    assert Path(BUILTIN_MODEL) == ASSET
    names = {p.name for p in ASSET.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "README.md"} <= names
    assert sum(p.stat().st_size for p in ASSET.iterdir()) < 25_000_000
    card = (ASSET / "README.md").read_text()
    assert "python -m dllm_viz.tiny.train" in card and "python -m dllm_viz.tiny.evaluate" in card


FREE_QUESTION = "Mei has 9 shells. She gives shells to Lily. How many shells does Mei have now?"


def test_shipped_model_solves_a_free_choice_problem_one_token_at_a_time(backend):
    """The default world: the amount is open, and careful decoding (greedy, one token per step,
    semi-AR blocks of 8, as in the card) writes a consistent choice."""
    result = run(backend, [FREE_QUESTION], build_strategy("confidence"), EngineConfig(gen_length=64, block_length=8))
    assert verify_chain(result.texts[0], 9, [("-", None)]), result.texts[0]
    assert result.texts[0].startswith("Mei has 9 - ") and int(result.nfe[0]) == 64


def test_shipped_model_is_a_stock_masked_lm(backend):
    assert type(backend.model).__name__ == "ModernBertForMaskedLM"
    assert (
        backend.tokenizer.apply_chat_template(
            [{"role": "user", "content": QUESTION}], add_generation_prompt=True, tokenize=False
        )
        == f"Q: {QUESTION} A:"
    )
