"""Tiny random replicas of LLaDA-8B and Dream-v0-7B in their official on-disk layout.

Each replica has the hub's config.json fields (model_type, architectures, auto_map, special ids,
vocabulary size), safetensors written by hand under the official parameter names in two shards
with an index (as the 8B/7B checkpoints are), and a tokenizer that follows the hub's conventions:
LLaDA's registers no mask token (its mask id lives only in config.json) and has the Llama-3-style
chat template of the Instruct model; Dream's is a byte-level BPE saved as vocab.json + merges.txt
whose tokenizer_config names ``DreamTokenizer`` with an auto_map, as Dream's does. Weights are
scaled so that confidences spread widely instead of sitting near 1/V.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

WORDS = [
    "a",
    "b",
    "c",
    "d",
    "e",
    "one",
    "two",
    "three",
    "plus",
    "is",
    "Q",
    ":",
    "A",
    "user",
    "assistant",
    "the",
    "answer",
] + [str(d) for d in range(10)]

LLADA = dict(vocab=126464, mask=126336, bos=126080, eos=126081, eot=126348, start_header=126346, end_header=126347)
DREAM = dict(vocab=151936, mask=151666, eos=151643, im_start=151644, im_end=151645)

LLADA_CHAT_TEMPLATE = (
    "{% for message in messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    " + message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}"
    "{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
DREAM_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def save_sharded(tensors: dict, path: Path, shards: int = 2) -> None:
    """``shards`` safetensors files plus model.safetensors.index.json, like the hub checkpoints."""
    names = sorted(tensors)
    files = {f"model-{i + 1:05d}-of-{shards:05d}.safetensors": names[i::shards] for i in range(shards)}
    weight_map = {}
    for file, keys in files.items():
        save_file({k: tensors[k].contiguous() for k in keys}, str(path / file), metadata={"format": "pt"})
        weight_map.update({k: file for k in keys})
    size = sum(t.numel() * t.element_size() for t in tensors.values())
    (path / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": size}, "weight_map": weight_map})
    )


def _normal(g, *shape, std=1.0):
    return torch.randn(*shape, generator=g) * std


def llada_config(d=32, heads=4, kv_heads=4, layers=2, hidden=64) -> dict:
    """LLaDA-8B-Instruct's config.json with the sizes shrunk (every other field as published)."""
    return {
        "activation_type": "silu",
        "alibi": False,
        "alibi_bias_max": 8.0,
        "architectures": ["LLaDAModelLM"],
        "attention_dropout": 0.0,
        "attention_layer_norm": False,
        "attention_layer_norm_with_affine": True,
        "auto_map": {
            "AutoConfig": "configuration_llada.LLaDAConfig",
            "AutoModel": "modeling_llada.LLaDAModelLM",
            "AutoModelForCausalLM": "modeling_llada.LLaDAModelLM",
        },
        "bias_for_layer_norm": False,
        "block_group_size": 1,
        "block_type": "llama",
        "d_model": d,
        "embedding_dropout": 0.0,
        "embedding_size": LLADA["vocab"],
        "eos_token_id": LLADA["eos"],
        "flash_attention": False,
        "include_bias": False,
        "include_qkv_bias": False,
        "init_cutoff_factor": None,
        "init_device": "meta",
        "init_fn": "mitchell",
        "init_std": 0.02,
        "input_emb_norm": False,
        "layer_norm_type": "rms",
        "layer_norm_with_affine": True,
        "mask_token_id": LLADA["mask"],
        "max_sequence_length": 4096,
        "mlp_hidden_size": hidden,
        "mlp_ratio": 4,
        "model_type": "llada",
        "multi_query_attention": None,
        "n_heads": heads,
        "n_kv_heads": kv_heads,
        "n_layers": layers,
        "pad_token_id": LLADA["eos"],
        "precision": "amp_bf16",
        "residual_dropout": 0.0,
        "rms_norm_eps": 1e-05,
        "rope": True,
        "rope_full_precision": True,
        "rope_theta": 500000.0,
        "scale_logits": False,
        "transformers_version": "4.46.3",
        "use_cache": False,
        "vocab_size": LLADA["vocab"],
        "weight_tying": False,
    }


def llada_weights(config: dict, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    d, h, layers = config["d_model"], config["mlp_hidden_size"], config["n_layers"]
    kv = config["n_kv_heads"] * d // config["n_heads"]
    V = config["embedding_size"]
    t = {
        "model.transformer.wte.weight": _normal(g, V, d),
        "model.transformer.ln_f.weight": 1 + _normal(g, d, std=0.1),
        "model.transformer.ff_out.weight": _normal(g, V, d, std=1.6),
    }
    for i in range(layers):
        p = f"model.transformer.blocks.{i}."
        t |= {
            p + "attn_norm.weight": 1 + _normal(g, d, std=0.1),
            p + "ff_norm.weight": 1 + _normal(g, d, std=0.1),
            p + "q_proj.weight": _normal(g, d, d, std=0.5),
            p + "k_proj.weight": _normal(g, kv, d, std=0.5),
            p + "v_proj.weight": _normal(g, kv, d, std=0.3),
            p + "attn_out.weight": _normal(g, d, d, std=0.3),
            p + "ff_proj.weight": _normal(g, h, d, std=0.3),
            p + "up_proj.weight": _normal(g, h, d, std=0.3),
            p + "ff_out.weight": _normal(g, d, h, std=0.2),
        }
    return t


def llada_tokenizer(instruct: bool = True):
    """A word-level stand-in for LLaDA's tokenizer: 126464 ids, the hub's special ids, and (as on
    the hub) no registered mask token, although "<|mdm_mask|>" is in the vocabulary."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = {
        LLADA["bos"]: "<|startoftext|>",
        LLADA["eos"]: "<|endoftext|>",
        LLADA["mask"]: "<|mdm_mask|>",
        LLADA["start_header"]: "<|start_header_id|>",
        LLADA["end_header"]: "<|end_header_id|>",
        LLADA["eot"]: "<|eot_id|>",
    }
    vocab = {w: i for i, w in enumerate(WORDS)}
    for i in range(len(WORDS), LLADA["vocab"]):
        vocab[specials.get(i, f"<|reserved_{i}|>")] = i
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<|reserved_100|>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Digits(individual_digits=True)]
    )
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials.values()])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|startoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        model_max_length=4096,
    )
    if instruct:
        fast.chat_template = LLADA_CHAT_TEMPLATE
    return fast


def llada_on_device(device, dtype: torch.dtype, seed: int = 0, **sizes):
    """A native LLaDA backend with random weights made directly on ``device`` (for speed benches).

    The model is built on the meta device, materialised uninitialised on ``device`` and initialised
    there (``init_std`` normals), so LLaDA-8B's shape on a GPU never holds its 16 GB in host memory;
    the config and tokenizer are the replica's. Before materialising, the loader's own memory check
    refuses a device without room (:class:`~dllm_viz.models.loading.InsufficientMemory`).
    """
    from dllm_viz.backends import LLaDABackend
    from dllm_viz.models import LLaDAConfig, LLaDAForMaskedDiffusion
    from dllm_viz.models.loading import check_fits, empty_model, weight_bytes

    device = torch.device(device)
    config = LLaDAConfig(**llada_config(**sizes))
    model = empty_model(LLaDAForMaskedDiffusion, config, dtype)
    name = f"random LLaDA-shaped d={config.d_model} layers={config.n_layers}"
    check_fits(name, weight_bytes(model), dtype, device)
    torch.manual_seed(seed)
    model = model.to_empty(device=device)
    with torch.no_grad():
        model.apply(model._init_weights)
    return LLaDABackend(model, llada_tokenizer(), name=name)


def save_llada_replica(path: Path, instruct: bool = True, seed: int = 0, **sizes) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    config = llada_config(**sizes)
    (path / "config.json").write_text(json.dumps(config, indent=2))
    save_sharded(llada_weights(config, seed), path)
    tok = llada_tokenizer(instruct)
    tok.save_pretrained(path)
    cfg = json.loads((path / "tokenizer_config.json").read_text())
    assert "mask_token" not in cfg or cfg["mask_token"] is None  # the hub's LLaDA has none
    return path


def dream_config(d=32, heads=4, kv_heads=2, layers=2, hidden=64) -> dict:
    """Dream-v0-Instruct-7B's config.json with the sizes shrunk."""
    return {
        "architectures": ["DreamModel"],
        "attention_dropout": 0.0,
        "auto_map": {"AutoConfig": "configuration_dream.DreamConfig", "AutoModel": "modeling_dream.DreamModel"},
        "bos_token_id": DREAM["eos"],
        "eos_token_id": DREAM["eos"],
        "hidden_act": "silu",
        "hidden_size": d,
        "initializer_range": 0.02,
        "intermediate_size": hidden,
        "mask_token_id": DREAM["mask"],
        "max_position_embeddings": 131072,
        "max_window_layers": 28,
        "model_type": "Dream",
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "num_key_value_heads": kv_heads,
        "pad_token_id": DREAM["eos"],
        "rms_norm_eps": 1e-06,
        "rope_scaling": None,
        "rope_theta": 1000000.0,
        "sliding_window": 131072,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.46.2",
        "use_cache": False,
        "use_sliding_window": False,
        "vocab_size": DREAM["vocab"],
    }


def dream_weights(config: dict, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    d, h, layers, V = (
        config["hidden_size"],
        config["intermediate_size"],
        config["num_hidden_layers"],
        config["vocab_size"],
    )
    kv = config["num_key_value_heads"] * d // config["num_attention_heads"]
    t = {
        "model.embed_tokens.weight": _normal(g, V, d),
        "model.norm.weight": 1 + _normal(g, d, std=0.1),
        "lm_head.weight": _normal(g, V, d, std=1.6),
    }
    for i in range(layers):
        p = f"model.layers.{i}."
        t |= {
            p + "input_layernorm.weight": 1 + _normal(g, d, std=0.1),
            p + "post_attention_layernorm.weight": 1 + _normal(g, d, std=0.1),
            p + "self_attn.q_proj.weight": _normal(g, d, d, std=0.5),
            p + "self_attn.q_proj.bias": _normal(g, d, std=0.1),
            p + "self_attn.k_proj.weight": _normal(g, kv, d, std=0.5),
            p + "self_attn.k_proj.bias": _normal(g, kv, std=0.1),
            p + "self_attn.v_proj.weight": _normal(g, kv, d, std=0.3),
            p + "self_attn.v_proj.bias": _normal(g, kv, std=0.1),
            p + "self_attn.o_proj.weight": _normal(g, d, d, std=0.3),
            p + "mlp.gate_proj.weight": _normal(g, h, d, std=0.3),
            p + "mlp.up_proj.weight": _normal(g, h, d, std=0.3),
            p + "mlp.down_proj.weight": _normal(g, d, h, std=0.2),
        }
    return t


def byte_level_alphabet() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for bytes: printable Latin-1 bytes map to
    themselves, the others to code points from 256 up, in byte order (so space is "Ġ")."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = iter(range(256, 512))
    return [chr(b) if b in keep else chr(next(extra)) for b in range(256)]


def save_dream_tokenizer(path: Path) -> None:
    """Byte-level BPE files (vocab.json, merges.txt) with Dream's special ids and a tokenizer_config
    that, like the hub's, names the remote ``DreamTokenizer`` class."""
    alphabet = byte_level_alphabet()
    vocab = {ch: i for i, ch in enumerate(alphabet)}
    merges = []
    for word in WORDS:  # merge each word left to right, then its space-prefixed form "Ġ" + word
        parts = list(word)
        while len(parts) > 1:
            merged = parts[0] + parts[1]
            if merged not in vocab:
                merges.append(f"{parts[0]} {parts[1]}")
                vocab[merged] = len(vocab)
            parts = [merged] + parts[2:]
    for word in WORDS:
        merges.append(f"Ġ {word}")
        vocab["Ġ" + word] = len(vocab)
    for i in range(len(vocab), DREAM["eos"]):
        vocab[f"<fill{i}>"] = i
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    # Added tokens are contiguous from 151643 (Qwen2.5's specials, then Dream's <|mask|> at 151666).
    specials = {i: f"<|extra_{i}|>" for i in range(DREAM["eos"], DREAM["mask"] + 1)}
    specials |= {
        DREAM["eos"]: "<|endoftext|>",
        DREAM["im_start"]: "<|im_start|>",
        DREAM["im_end"]: "<|im_end|>",
        DREAM["mask"]: "<|mask|>",
    }
    added = {
        str(i): {
            "content": t,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for i, t in specials.items()
    }
    (path / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "added_tokens_decoder": added,
                "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
                "auto_map": {"AutoTokenizer": ["tokenization_dream.DreamTokenizer", None]},
                "bos_token": None,
                "chat_template": DREAM_CHAT_TEMPLATE,
                "clean_up_tokenization_spaces": False,
                "eos_token": "<|endoftext|>",
                "errors": "replace",
                "mask_token": "<|mask|>",
                "model_max_length": 131072,
                "pad_token": "<|endoftext|>",
                "split_special_tokens": False,
                "tokenizer_class": "DreamTokenizer",
                "unk_token": None,
            }
        )
    )


def save_dream_replica(path: Path, seed: int = 0, **sizes) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    config = dream_config(**sizes)
    (path / "config.json").write_text(json.dumps(config, indent=2))
    (path / "generation_config.json").write_text(
        json.dumps(
            {  # Dream's remote from_pretrained requires one
                "bos_token_id": DREAM["eos"],
                "eos_token_id": DREAM["eos"],
                "pad_token_id": DREAM["eos"],
                "transformers_version": "4.46.2",
            }
        )
    )
    save_sharded(dream_weights(config, seed), path)
    save_dream_tokenizer(path)
    return path
