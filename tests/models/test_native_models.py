"""Native LLaDA and Dream: the official layout loads, logits match the upstream code, and the
properties any correct implementation has (bidirectional, padding-invariant, bf16 ≈ fp32) hold.

The upstream comparison needs the checkpoints' own modelling files, which this repository does not
vendor. Point ``DLLM_VIZ_UPSTREAM_CODE`` at a folder with ``llada/{configuration,modeling}_llada.py``
and ``dream/{configuration_dream,modeling_dream,generation_utils}.py`` (from the hub repos
GSAI-ML/LLaDA-8B-Instruct and Dream-org/Dream-v0-Instruct-7B, or the copies in NVlabs/Fast-dLLM
``llada/model`` and ``dream/model``); without it those tests are skipped.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from replicas import DREAM, LLADA

from dllm_viz.backends import DreamBackend, LLaDABackend, ModelLoadError, load_backend
from dllm_viz.engine import EngineConfig, run
from dllm_viz.models import DreamForMaskedDiffusion, LLaDAForMaskedDiffusion
from dllm_viz.strategies import build_strategy

UPSTREAM = os.environ.get("DLLM_VIZ_UPSTREAM_CODE")
UPSTREAM_FILES = {
    "llada": ["configuration_llada.py", "modeling_llada.py"],
    "dream": ["configuration_dream.py", "modeling_dream.py", "generation_utils.py"],
}
CLASSES = {"llada": LLaDAForMaskedDiffusion, "dream": DreamForMaskedDiffusion}


@pytest.fixture(scope="session")
def native(replica_dirs):
    # dtype explicit: transformers 5 defaults to the config's (bfloat16 in Dream's config.json)
    return {name: CLASSES[name].from_pretrained(replica_dirs[name], dtype=torch.float32).eval() for name in CLASSES}


def canvas(batch=2, length=24, seed=0):
    return torch.randint(0, 120000, (batch, length), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", ["llada", "dream"])
def test_official_layout_loads_every_tensor_without_remote_code(replica_dirs, name):
    path = replica_dirs[name]
    assert not list(path.glob("*.py"))  # no modelling code in the folder: nothing to trust
    assert json.loads((path / "config.json").read_text())["auto_map"]  # though config.json points to some
    model, info = CLASSES[name].from_pretrained(path, output_loading_info=True, dtype=torch.float32)
    assert not any(info.values()), info  # no missing, unexpected or mismatched tensors
    from safetensors import safe_open

    index = json.loads((path / "model.safetensors.index.json").read_text())["weight_map"]
    state = model.state_dict()
    assert set(index) == set(state)
    shard = next(iter(set(index.values())))
    with safe_open(str(path / shard), "pt") as f:
        for key in f.keys():
            assert torch.equal(f.get_tensor(key), state[key])


def test_llada_backend_takes_the_mask_id_from_config(replica_dirs):
    backend = load_backend(str(replica_dirs["llada"]))
    assert isinstance(backend, LLaDABackend) and isinstance(backend.model, LLaDAForMaskedDiffusion)
    assert backend.tokenizer.mask_token_id is None and backend.mask_id == LLADA["mask"]
    assert backend.eos_id == LLADA["eos"] and backend.stop_ids == {LLADA["eos"], LLADA["eot"]}
    assert backend.supports_kv_cache and backend.max_length == 4096
    ids = backend.encode_prompt("one plus two")
    assert ids[:2] == [LLADA["bos"], LLADA["start_header"]] and ids[-1] == LLADA["end_header"]  # chat template


def test_dream_backend_loads_its_tokenizer_without_remote_code(replica_dirs):
    backend = load_backend(str(replica_dirs["dream"]))
    assert isinstance(backend, DreamBackend) and isinstance(backend.model, DreamForMaskedDiffusion)
    assert backend.mask_id == DREAM["mask"] and backend.eos_id == DREAM["eos"] and backend.logit_shift == 1
    assert backend.stop_ids == {DREAM["eos"], DREAM["im_end"]}
    ids = backend.encode_prompt("one plus two")
    assert ids[0] == DREAM["im_start"] and backend.decode(ids).startswith("user\none plus two")


def test_base_and_instruct_load_alike(replica_dirs):
    base, instruct = load_backend(str(replica_dirs["llada-base"])), load_backend(str(replica_dirs["llada"]))
    assert base.mask_id == instruct.mask_id and type(base.model) is type(instruct.model)
    assert base.decode(base.encode_prompt("one plus two")) == "one plus two"  # no chat template: plain text


@pytest.mark.parametrize("name", ["llada", "dream"])
def test_attention_is_bidirectional(native, name):
    x = canvas()
    y = x.clone()
    y[:, -1] = (y[:, -1] + 1) % 1000
    with torch.no_grad():
        a, b = native[name](x).logits, native[name](y).logits
    assert a.shape == (2, 24, native[name].config.vocab_size)
    assert not torch.allclose(a[:, 0], b[:, 0])  # the first position sees the last token


@pytest.mark.parametrize("name", ["llada", "dream"])
def test_left_padding_leaves_real_positions_unchanged(native, name):
    x = canvas(batch=1)
    padded = torch.cat([torch.full((1, 5), 7), x], 1)
    batch = torch.cat([padded, canvas(batch=1, length=29, seed=1)])
    mask = torch.ones_like(batch)
    mask[0, :5] = 0
    with torch.no_grad():
        alone = native[name](x).logits
        out = native[name](batch, attention_mask=mask).logits
        unmasked = native[name](batch).logits
    assert torch.allclose(out[0, 5:], alone[0], atol=1e-4)
    assert not torch.allclose(unmasked[0, 5:], alone[0], atol=1e-2)  # the mask is what made them equal


@pytest.mark.parametrize("name", ["llada", "dream"])
def test_bf16_tracks_fp32(replica_dirs, native, name):
    half = CLASSES[name].from_pretrained(replica_dirs[name], dtype=torch.bfloat16).eval()
    x = canvas()
    with torch.no_grad():
        full, low = native[name](x).logits, half(x).logits.float()
    assert (
        low.dtype == torch.float32 and half.model.layers[0].mlp.up_proj.weight.dtype == torch.bfloat16
        if name == "dream"
        else half.model.transformer.blocks[0].ff_proj.weight.dtype == torch.bfloat16
    )
    # The replicas' weights are scaled up (logits reach ±50), which magnifies bf16 rounding.
    corr = torch.corrcoef(torch.stack([full.flatten(), low.flatten()]))[0, 1]
    assert corr > 0.99
    assert (full.argmax(-1) == low.argmax(-1)).float().mean() >= 0.75


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("block_type", "sequential", "native LLaDA supports block_type='llama' only"),
        ("layer_norm_type", "gemma_rms", "native LLaDA supports layer_norm_type 'rms' or 'default'"),
    ],
)
def test_unsupported_llada_config_is_refused_by_name(replica_dirs, tmp_path, field, value, message):
    path = tmp_path / "odd"
    shutil.copytree(replica_dirs["llada"], path)
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, field: value}))
    with pytest.raises(ModelLoadError, match=message):
        load_backend(str(path))


def test_model_code_native_refuses_other_models(tiny_model_dir):
    with pytest.raises(ModelLoadError, match="has model_type 'modernbert', which has no native class"):
        load_backend(str(tiny_model_dir), model_code="native")


def test_native_decode_runs_end_to_end(replica_dirs):
    backend = load_backend(str(replica_dirs["dream"]))
    result = run(
        backend, ["one plus two", "two"], build_strategy("threshold"), EngineConfig(gen_length=16, block_length=8)
    )
    assert result.tokens.shape == (2, 16) and (result.tokens != backend.mask_id).all()


# ---- against the upstream modelling code -------------------------------------------------------


@pytest.fixture(autouse=True)
def _forget_upstream_registrations(monkeypatch):
    """The upstream files register "llada" with the Auto classes when imported; undo that after
    each test so later tests still see an unknown, remote-code model type."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING
    from transformers.models.auto.modeling_auto import MODEL_MAPPING

    monkeypatch.setattr(CONFIG_MAPPING, "_extra_content", dict(CONFIG_MAPPING._extra_content))
    monkeypatch.setattr(MODEL_MAPPING, "_extra_content", dict(MODEL_MAPPING._extra_content))


def _upstream_copy(replica: Path, name: str, tmp_path: Path) -> Path:
    import transformers

    if int(transformers.__version__.split(".")[0]) >= 5:
        pytest.skip("the upstream LLaDA/Dream code does not load under transformers 5 (shared/reference/hub-models.md)")
    folder = Path(UPSTREAM or "") / name
    if not UPSTREAM or not all((folder / f).is_file() for f in UPSTREAM_FILES[name]):
        pytest.skip("set DLLM_VIZ_UPSTREAM_CODE to a folder with the upstream modelling files (see module docstring)")
    path = tmp_path / f"{name}-upstream"
    shutil.copytree(replica, path)
    for f in UPSTREAM_FILES[name]:
        shutil.copy(folder / f, path / f)
    return path


@pytest.mark.parametrize("name", ["llada", "dream"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_logits_equal_the_upstream_code(replica_dirs, tmp_path, name, dtype):
    from transformers import AutoModel

    path = _upstream_copy(replica_dirs[name], name, tmp_path)
    reference = AutoModel.from_pretrained(path, trust_remote_code=True, local_files_only=True, dtype=dtype).eval()
    ours = CLASSES[name].from_pretrained(replica_dirs[name], dtype=dtype).eval()
    x = canvas(length=40)
    with torch.no_grad(), torch._dynamo.config.patch(disable=True):  # Fast-dLLM's copy compiles its SDPA call
        expected, got = reference(x).logits.float(), ours(x).logits.float()
    assert (got - expected).abs().max() <= 1e-5


def test_dream_padded_batch_equals_the_upstream_code(replica_dirs, tmp_path):
    """Through the backend, a left-padded Dream batch matches the upstream model given Dream's own
    boolean mask, at every real position."""
    from transformers import AutoModel

    path = _upstream_copy(replica_dirs["dream"], "dream", tmp_path)
    reference = AutoModel.from_pretrained(
        path, trust_remote_code=True, local_files_only=True, dtype=torch.float32
    ).eval()
    backend = load_backend(str(replica_dirs["dream"]))
    x = canvas(length=20)
    mask = torch.ones_like(x)
    mask[0, :4] = 0
    keep = mask.bool()
    both = keep[:, None, :, None] & keep[:, None, None, :]  # what Dream's diffusion_generate builds
    with torch.no_grad():
        expected = reference(x, both, (mask.cumsum(-1) - 1).clamp_min(0)).logits
    got = backend.logits(x, mask)
    expected = torch.cat([expected[:, :1], expected[:, :-1]], 1)  # the backend's shift
    assert torch.allclose(got[0, 5:], expected[0, 5:], atol=1e-4) and torch.allclose(got[1], expected[1], atol=1e-4)
