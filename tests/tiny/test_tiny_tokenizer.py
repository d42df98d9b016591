"""The built-in model's tokenizer: closed vocabulary, digits split, exact round trip, offline reload."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from dllm_viz.tasks import LEVELS, generate
from dllm_viz.tiny.data import encode_prompt
from dllm_viz.tiny.tokenizer import SPACE, build_tokenizer


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


def ids(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


def test_generated_text_round_trips_without_unknown_words(tok):
    longest = 0
    for level in LEVELS:
        for seed in range(200):
            problem = generate(seed, level)
            for text in (problem.question, problem.solution):
                encoded = ids(tok, text)
                assert tok.unk_token_id not in encoded, text
                assert tok.decode(encoded) == text
            longest = max(longest, len(ids(tok, problem.solution)))
    # The whole response must fit the engine's L = 64 with room to spare for EOS.
    assert longest <= 56


def test_numbers_are_split_into_digits(tok):
    tokens = tok.convert_ids_to_tokens(ids(tok, "Tom has 120 apples. #### 120"))
    assert tokens == [
        f"{SPACE}Tom",
        f"{SPACE}has",
        f"{SPACE}1",
        "2",
        "0",
        f"{SPACE}apples",
        ".",
        f"{SPACE}####",
        f"{SPACE}1",
        "2",
        "0",
    ]
    # every token decodes on its own to readable text (for the app's token grid)
    assert [tok.decode([i]) for i in ids(tok, "has 12.")] == ["has", "1", "2", "."]


def test_special_tokens_and_small_vocabulary(tok):
    special = {tok.pad_token_id, tok.mask_token_id, tok.eos_token_id, tok.unk_token_id}
    assert None not in special and len(special) == 4
    assert len(tok) < 400
    assert tok.padding_side == "left" and tok.model_max_length == 256
    # no post-processor: special tokens are never added behind the engine's back
    assert ids(tok, "Tom has 3 apples.") == tok("Tom has 3 apples.")["input_ids"]
    assert (
        tok.decode([tok.eos_token_id, *ids(tok, "3 apples"), tok.eos_token_id], skip_special_tokens=True) == "3 apples"
    )


def test_prompt_and_response_encode_like_their_concatenation(tok):
    problem = generate(7, 3)
    prompt = encode_prompt(tok, problem.question)
    text = tok.apply_chat_template(
        [{"role": "user", "content": problem.question}], add_generation_prompt=True, tokenize=False
    )
    assert text == f"Q: {problem.question} A:"
    assert prompt + ids(tok, problem.solution) == ids(tok, f"{text} {problem.solution}")


def test_saved_tokenizer_reloads_offline_with_identical_behaviour(tok, tmp_path):
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path, local_files_only=True)
    assert isinstance(loaded, PreTrainedTokenizerFast)
    problem = generate(3, 2)
    assert encode_prompt(loaded, problem.question) == encode_prompt(tok, problem.question)
    assert ids(loaded, problem.solution) == ids(tok, problem.solution)
    assert (loaded.mask_token, loaded.eos_token, loaded.pad_token) == ("[MASK]", "[EOS]", "[PAD]")
    assert loaded.model_max_length == 256


def test_unknown_words_map_to_unk_instead_of_failing(tok):
    encoded = ids(tok, "Tom has 3 zebras.")
    assert tok.unk_token_id in encoded and len(encoded) == 5


def test_bad_max_length():
    with pytest.raises(ValueError, match=r"model_max_length \(4\) must be ≥ 8"):
        build_tokenizer(model_max_length=4)
