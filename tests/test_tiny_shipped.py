"""The shipped built-in model (assets/tiny-dllm): complete, small, and it solves an easy problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from dllm_viz.backends import BUILTIN_MODEL, load_backend
from dllm_viz.engine import EngineConfig, run
from dllm_viz.strategies import build_strategy
from dllm_viz.tasks import is_correct

ASSET = Path(__file__).resolve().parents[1] / "assets" / "tiny-dllm"
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


def test_shipped_model_solves_a_fixed_easy_problem(backend):
    """Greedy, one token per step (High-Confidence-K), semi-AR blocks of 8, as in the card."""
    result = run(backend, [QUESTION], build_strategy("confidence"), EngineConfig(gen_length=64, block_length=8))
    assert result.texts[0] == "Tom has 12 + 5 = 17 apples. #### 17"
    assert is_correct(result.texts[0], "17")
    assert int(result.nfe[0]) == 64  # one committed token per forward pass


def test_shipped_model_is_a_stock_masked_lm(backend):
    assert type(backend.model).__name__ == "ModernBertForMaskedLM"
    assert backend.tokenizer.apply_chat_template(
        [{"role": "user", "content": QUESTION}], add_generation_prompt=True, tokenize=False
    ) == f"Q: {QUESTION} A:"
