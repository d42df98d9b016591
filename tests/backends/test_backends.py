"""Backend adapters on tiny models built here: generic masked LMs, and remote-code models that
reproduce LLaDA's and Dream's conventions (model_type, AutoModel, Dream's logit shift)."""

from __future__ import annotations

import pytest
import torch
from remote_code import DREAM_LIKE_CODE, save_remote_code_model

from dllm_viz.backends import DreamBackend, LLaDABackend, MaskedLMBackend, ModelLoadError, load_backend

from conftest import save_tiny_masked_lm


@pytest.mark.parametrize("arch", ["modernbert", "bert"])
def test_generic_masked_lm_loads_on_cpu_fp32(tmp_path, arch):
    backend = load_backend(str(save_tiny_masked_lm(tmp_path / arch, arch=arch)))
    assert type(backend) is MaskedLMBackend
    assert backend.device.type == "cpu" and next(backend.model.parameters()).dtype == torch.float32
    assert backend.mask_id == backend.tokenizer.mask_token_id and backend.eos_id == backend.tokenizer.eos_token_id
    ids = backend.encode_prompt("one plus two")
    assert backend.decode(ids) == "Q : one plus two A :"  # chat template applied
    logits = backend.logits(torch.tensor([ids]), None)
    assert logits.shape == (1, len(ids), len(backend.tokenizer))


def test_left_padding_does_not_change_logits(tiny_backend):
    ids = tiny_backend.encode_prompt("one plus two") + [tiny_backend.mask_id] * 4
    alone = tiny_backend.logits(torch.tensor([ids]), None)
    padded = torch.tensor([[tiny_backend.pad_id] * 3 + ids])
    mask = torch.tensor([[0] * 3 + [1] * len(ids)])
    batch = tiny_backend.logits(padded, mask)[:, 3:]
    assert torch.allclose(alone, batch, atol=1e-4)


def test_dream_convention_shifts_logits_right(tmp_path):
    backend = load_backend(
        str(save_remote_code_model(tmp_path / "dream", "Dream")), trust_remote_code=True, model_code="remote"
    )
    assert isinstance(backend, DreamBackend)
    ids = torch.tensor([[5, 6, 7, 8]])
    logits = backend.logits(ids, None)
    # Position i is predicted by the model's output at i-1, i.e. token_{i-1} + 1 = token_i here.
    assert logits[0, 1:].argmax(-1).tolist() == [6, 7, 8]
    assert logits[0, 0].argmax().item() == 6  # position 0 reuses the first output


def test_llada_convention_has_no_shift(tmp_path):
    backend = load_backend(
        str(save_remote_code_model(tmp_path / "llada", "llada")), trust_remote_code=True, model_code="remote"
    )
    assert isinstance(backend, LLaDABackend)
    logits = backend.logits(torch.tensor([[5, 6, 7]]), None)
    assert logits[0].argmax(-1).tolist() == [6, 7, 8]


def test_remote_code_needs_allow_list_or_opt_in(tmp_path):
    path = save_remote_code_model(tmp_path / "untrusted", "llada")
    with pytest.raises(
        ModelLoadError, match=r"ships its own modelling code and is not on the allow-list .*trust_remote_code=True"
    ):
        load_backend(str(path), model_code="remote")


def test_offline_hub_id_names_model_and_reason(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        ModelLoadError,
        match=r"'GSAI-ML/LLaDA-8B-Instruct' could not be loaded: the Hugging Face Hub is unreachable \(offline\?\)",
    ):
        load_backend("GSAI-ML/LLaDA-8B-Instruct")


def test_missing_folder_and_bad_id():
    with pytest.raises(ModelLoadError, match=r"'./no/such/model': no such folder"):
        load_backend("./no/such/model")
    with pytest.raises(ModelLoadError, match=r"'just-a-name': no such folder, and it is not a Hub id"):
        load_backend("just-a-name")


def test_folder_without_config(tmp_path):
    with pytest.raises(ModelLoadError, match="the folder has no config.json"):
        load_backend(str(tmp_path))


def test_end_of_turn_token_ends_the_text(tmp_path):
    from dllm_viz.engine import decode_generation

    path = save_tiny_masked_lm(tmp_path / "eot")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    tok.add_special_tokens({"additional_special_tokens": ["<|eot_id|>"]})
    tok.save_pretrained(path)
    backend = load_backend(str(path))
    eot = tok.convert_tokens_to_ids("<|eot_id|>")
    assert backend.stop_ids == {backend.eos_id, eot}
    ids = tok("one plus two", add_special_tokens=False)["input_ids"]
    assert decode_generation(backend, ids + [eot] + ids) == "one plus two"
    assert decode_generation(backend, ids + [backend.eos_id, eot]) == "one plus two"


def test_mask_id_comes_from_the_config_when_the_tokenizer_has_none(tmp_path):
    # LLaDA-8B's hub tokenizer registers no mask token; only config.json has mask_token_id.
    path = save_remote_code_model(
        tmp_path / "llada", "llada", mask_in_tokenizer=False, config_extra={"mask_token_id": 2}
    )
    backend = load_backend(str(path), trust_remote_code=True, model_code="remote")
    assert backend.tokenizer.mask_token_id is None
    assert backend.mask_id == 2


def test_no_mask_token_anywhere_is_refused(tmp_path):
    path = save_remote_code_model(tmp_path / "llada", "llada", mask_in_tokenizer=False)
    with pytest.raises(
        ModelLoadError, match=r"neither its tokenizer \(no mask token\) nor its config \(no mask_token_id\)"
    ):
        load_backend(str(path), trust_remote_code=True, model_code="remote")


def test_dream_padded_batch_uses_a_boolean_mask_and_real_positions(tmp_path):
    path = save_remote_code_model(tmp_path / "dream", "Dream", code=DREAM_LIKE_CODE)
    backend = load_backend(str(path), trust_remote_code=True, model_code="remote")
    ids = torch.tensor([[5, 6, 7, 8, 2, 2]])
    with pytest.raises(RuntimeError, match="attn_mask dtype"):  # what Dream does with an integer mask
        backend.model(input_ids=ids, attention_mask=torch.ones_like(ids))
    alone = backend.logits(ids, None)
    padded = torch.cat([torch.zeros(1, 3, dtype=torch.long), ids], 1)
    batch = torch.cat([padded, torch.cat([ids, ids[:, :3]], 1)])  # row 1 unpadded, so the mask is needed
    mask = torch.ones_like(batch)
    mask[0, :3] = 0
    out = backend.logits(batch, mask)
    assert torch.isfinite(out).all()
    # Every position a row predicts from real tokens matches the unpadded run (position 0 reads a
    # padding output after the shift; no generation position ever does).
    assert torch.allclose(out[0, 4:], alone[0, 1:], atol=1e-5)
    assert not torch.allclose(out[0, 4:], backend.logits(batch, None)[0, 4:], atol=1e-3)  # the mask mattered
