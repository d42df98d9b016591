"""Tiny models with their own modelling code (``trust_remote_code``) that follow LLaDA's and Dream's
conventions (model_type, AutoModel, Dream's logit shift): the backends' and the app's tests load them."""

from __future__ import annotations

import json
import textwrap

import torch

from conftest import build_word_tokenizer

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
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        nxt = (input_ids + 1) % self.config.vocab_size
        return MaskedLMOutput(logits=self.scale * torch.nn.functional.one_hot(nxt, self.config.vocab_size).float())
'''


# Dream's attention passes its mask straight to SDPA and takes RoPE positions from position_ids;
# this stand-in does the same with one attention layer and learned absolute positions, so padding
# handled wrongly (an integer mask, or positions that count the padding) shows.
DREAM_LIKE_CODE = """
import torch
import torch.nn.functional as F
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import MaskedLMOutput


class TinyRemoteConfig(PretrainedConfig):
    model_type = "{model_type}"

    def __init__(self, vocab_size=32, hidden=16, positions=64, **kwargs):
        self.vocab_size, self.hidden, self.positions = vocab_size, hidden, positions
        super().__init__(**kwargs)


class TinyRemoteModel(PreTrainedModel):
    config_class = TinyRemoteConfig

    def __init__(self, config):
        super().__init__(config)
        self.embed = torch.nn.Embedding(config.vocab_size, config.hidden)
        self.pos = torch.nn.Embedding(config.positions, config.hidden)
        self.qkv = torch.nn.Linear(config.hidden, 3 * config.hidden)
        self.head = torch.nn.Linear(config.hidden, config.vocab_size)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, **kwargs):
        if position_ids is None:
            position_ids = torch.arange(input_ids.shape[1]).unsqueeze(0)
        h = self.embed(input_ids) + self.pos(position_ids)
        q, k, v = self.qkv(h).unsqueeze(1).chunk(3, dim=-1)
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=attention_mask)
        return MaskedLMOutput(logits=self.head(h + att.squeeze(1)))
"""


def save_remote_code_model(path, model_type, code=REMOTE_CODE, mask_in_tokenizer=True, config_extra=None):
    path.mkdir(parents=True, exist_ok=True)
    (path / "modeling_tiny.py").write_text(textwrap.dedent(code.replace("{model_type}", model_type)))
    tok = build_word_tokenizer(mask=mask_in_tokenizer)
    tok.save_pretrained(path)
    config = {
        "model_type": model_type,
        "vocab_size": len(tok),
        "architectures": ["TinyRemoteModel"],
        "auto_map": {"AutoConfig": "modeling_tiny.TinyRemoteConfig", "AutoModel": "modeling_tiny.TinyRemoteModel"},
        **(config_extra or {}),
    }
    (path / "config.json").write_text(json.dumps(config))
    from safetensors.torch import save_file

    if code is REMOTE_CODE:
        save_file({"scale": torch.tensor(5.0)}, str(path / "model.safetensors"))
    else:  # a seeded random model saved through its own class
        import importlib.util

        spec = importlib.util.spec_from_file_location(f"tiny_{model_type}", path / "modeling_tiny.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        torch.manual_seed(0)
        net = module.TinyRemoteModel(module.TinyRemoteConfig(vocab_size=len(tok)))
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path / "model.safetensors"))
    return path
