"""The built-in model's network: loads like any hub masked LM and is blind to left padding."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForMaskedLM

from dllm_viz.backends import load_backend
from dllm_viz.tasks import generate
from dllm_viz.tiny.data import encode_prompt
from dllm_viz.tiny.model import TinyModelConfig, build_model, count_parameters
from dllm_viz.tiny.tokenizer import build_tokenizer

TINY = TinyModelConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64)


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


@pytest.fixture(scope="module")
def saved(tok, tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-dllm")
    build_model(TINY, tok, seed=1).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_left_padding_does_not_change_the_logits_of_real_tokens(tok):
    """The engine left-pads prompts of different lengths; RoPE + the attention mask must make
    that invisible (a model with absolute positions would fail this)."""
    model = build_model(TINY, tok, seed=0).eval()
    short = encode_prompt(tok, generate(0, 1).question) + [tok.mask_token_id] * 8
    long = encode_prompt(tok, generate(0, 3).question) + [tok.mask_token_id] * 8
    pad = len(long) - len(short)
    assert pad > 5
    batch = torch.tensor([[tok.pad_token_id] * pad + short, long])
    attention = torch.tensor([[0] * pad + [1] * len(short), [1] * len(long)])
    with torch.no_grad():
        padded = model(input_ids=batch, attention_mask=attention).logits
        alone_short = model(input_ids=torch.tensor([short])).logits
        alone_long = model(input_ids=torch.tensor([long])).logits
    torch.testing.assert_close(padded[0, pad:], alone_short[0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(padded[1], alone_long[0], atol=1e-4, rtol=1e-4)


def test_saved_model_loads_with_auto_classes_and_the_project_backend(tok, saved):
    model = AutoModelForMaskedLM.from_pretrained(saved, local_files_only=True)
    assert model.config.model_type == "modernbert" and model.config.max_position_embeddings == 256
    assert model.config.global_attn_every_n_layers == 1  # every layer attends globally
    reference = build_model(TINY, tok, seed=1)
    for (name, a), (_, b) in zip(reference.state_dict().items(), model.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, msg=name)
    backend = load_backend(str(saved), device="cpu")
    assert (backend.mask_id, backend.eos_id, backend.pad_id) == (tok.mask_token_id, tok.eos_token_id, tok.pad_token_id)
    question = generate(5, 2).question
    assert backend.encode_prompt(question) == encode_prompt(tok, question)  # training and engine agree
    assert backend.max_length == 256


def test_build_is_deterministic_per_seed(tok):
    a, b, c = (build_model(TINY, tok, seed=s).state_dict() for s in (3, 3, 4))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_default_size_is_small_enough_to_ship(tok):
    params = count_parameters(build_model(TinyModelConfig(), tok))
    assert 3_000_000 < params < 6_000_000  # < 25 MB in fp32


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"hidden_size": 30, "num_heads": 4}, r"hidden_size \(30\) / num_heads \(4\) must be an even integer"),
        ({"num_layers": 0}, r"num_layers \(0\) must be a positive integer"),
        ({"rope_theta": 0}, r"rope_theta \(0\) must be > 0"),
    ],
)
def test_bad_model_config_is_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TinyModelConfig(**kwargs)


def test_context_longer_than_tokenizer_is_refused(tok):
    with pytest.raises(ValueError, match=r"max_positions \(512\) exceeds the tokenizer's model_max_length \(256\)"):
        build_model(TinyModelConfig(max_positions=512), tok)


def test_config_round_trip():
    assert TinyModelConfig.from_dict(TINY.to_dict()) == TINY
