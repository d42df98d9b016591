"""Backend adapters on tiny models built here: generic masked LMs, and remote-code models that
reproduce LLaDA's and Dream's conventions (model_type, AutoModel, Dream's logit shift)."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch

from dllm_viz.backends import DreamBackend, LLaDABackend, MaskedLMBackend, ModelLoadError, load_backend

from conftest import build_word_tokenizer, save_tiny_masked_lm

REMOTE_CODE = '''
import torch
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import MaskedLMOutput


class TinyRemoteConfig(PretrainedConfig):
    model_type = "{model_type}"

    def __init__(self, vocab_size=32, **kwargs):
        self.vocab_size = vocab_size
        super().__init__(**kwargs)


class TinyRemoteModel(PreTrainedModel):
    """Logits at position i are a one-hot of (token_i + 1) mod V: an AR-style 'next token'."""

    config_class = TinyRemoteConfig

    def __init__(self, config):
        super().__init__(config)
        self.scale = torch.nn.Parameter(torch.tensor(5.0))

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        nxt = (input_ids + 1) % self.config.vocab_size
        return MaskedLMOutput(logits=self.scale * torch.nn.functional.one_hot(nxt, self.config.vocab_size).float())
'''


def save_remote_code_model(path, model_type):
    path.mkdir(parents=True, exist_ok=True)
    (path / "modeling_tiny.py").write_text(textwrap.dedent(REMOTE_CODE.format(model_type=model_type)))
    tok = build_word_tokenizer()
    tok.save_pretrained(path)
    config = {
        "model_type": model_type, "vocab_size": len(tok), "architectures": ["TinyRemoteModel"],
        "auto_map": {"AutoConfig": "modeling_tiny.TinyRemoteConfig", "AutoModel": "modeling_tiny.TinyRemoteModel"},
    }
    (path / "config.json").write_text(json.dumps(config))
    from safetensors.torch import save_file

    save_file({"scale": torch.tensor(5.0)}, str(path / "model.safetensors"))
    return path


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
    backend = load_backend(str(save_remote_code_model(tmp_path / "dream", "Dream")), trust_remote_code=True)
    assert isinstance(backend, DreamBackend)
    ids = torch.tensor([[5, 6, 7, 8]])
    logits = backend.logits(ids, None)
    # Position i is predicted by the model's output at i-1, i.e. token_{i-1} + 1 = token_i here.
    assert logits[0, 1:].argmax(-1).tolist() == [6, 7, 8]
    assert logits[0, 0].argmax().item() == 6  # position 0 reuses the first output


def test_llada_convention_has_no_shift(tmp_path):
    backend = load_backend(str(save_remote_code_model(tmp_path / "llada", "llada")), trust_remote_code=True)
    assert isinstance(backend, LLaDABackend)
    logits = backend.logits(torch.tensor([[5, 6, 7]]), None)
    assert logits[0].argmax(-1).tolist() == [6, 7, 8]


def test_remote_code_needs_allow_list_or_opt_in(tmp_path):
    path = save_remote_code_model(tmp_path / "untrusted", "llada")
    with pytest.raises(ModelLoadError, match=r"ships its own modelling code and is not on the allow-list .*trust_remote_code=True"):
        load_backend(str(path))


def test_offline_hub_id_names_model_and_reason(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match=r"'GSAI-ML/LLaDA-8B-Instruct' could not be loaded: the Hugging Face Hub is unreachable \(offline\?\)"):
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
