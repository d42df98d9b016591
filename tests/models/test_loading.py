"""Low-memory loading of the native models (dllm_viz/models/loading.py): the same weights as
transformers' from_pretrained, host memory bounded by one shard, and a clear refusal when the
weights cannot fit the device."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from replicas import llada_config, llada_weights, save_sharded

from dllm_viz.backends import ModelLoadError, load_backend
from dllm_viz.models import DreamForMaskedDiffusion, LLaDAConfig, LLaDAForMaskedDiffusion, loading

CPU = torch.device("cpu")
CLASSES = {"llada": LLaDAForMaskedDiffusion, "dream": DreamForMaskedDiffusion}


@pytest.mark.parametrize("name", ["llada", "dream"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_sharded_replica_loads_the_same_weights_as_from_pretrained(replica_dirs, name, dtype):
    reference = CLASSES[name].from_pretrained(replica_dirs[name], dtype=dtype)
    backend = load_backend(str(replica_dirs[name]), device="cpu", dtype=dtype)
    ours, theirs = backend.model.state_dict(), reference.state_dict()
    assert list(ours) == list(theirs)
    for key, value in theirs.items():
        assert ours[key].dtype == dtype
        assert torch.equal(ours[key], value), key
    x = torch.tensor([backend.encode_prompt("one plus two")])
    assert torch.equal(backend.model(x).logits, reference(x).logits)


def test_the_estimate_is_the_checkpoint_size(replica_dirs):
    """Weights in fp32 on disk: the meta model's size equals the tensors' bytes in the shards."""
    path = replica_dirs["llada"]
    config = LLaDAConfig.from_pretrained(path)
    estimate = loading.weight_bytes(loading.empty_model(LLaDAForMaskedDiffusion, config, torch.float32))
    index = json.loads((path / "model.safetensors.index.json").read_text())
    assert estimate == index["metadata"]["total_size"]
    half = loading.weight_bytes(loading.empty_model(LLaDAForMaskedDiffusion, config, torch.bfloat16))
    assert half * 2 == estimate


def test_a_model_that_does_not_fit_is_refused_before_loading(replica_dirs, monkeypatch):
    monkeypatch.setattr(loading, "free_bytes", lambda device: 100 * 10**6)  # 100 MB free

    def never(*args, **kwargs):
        raise AssertionError("no weight may be read when the model cannot fit")

    monkeypatch.setattr(loading, "load_into", never)
    # the replica's weights are ~33 MB; with the 512 MiB headroom they need ~0.57 GB
    message = r"needs 0\.03 GB of weights in float32 .* on cpu, which has 0\.10 GB free"
    with pytest.raises(ModelLoadError, match=message):
        load_backend(str(replica_dirs["llada"]), device="cpu")


def test_free_memory_is_read_for_the_host():
    free = loading.free_bytes(torch.device("cpu"))
    assert free is None or free > 0
    assert loading.free_bytes(torch.device("meta")) is None


def test_a_missing_or_misshaped_tensor_is_named(replica_dirs, tmp_path):
    config = LLaDAConfig.from_pretrained(replica_dirs["llada"])
    weights = llada_weights(llada_config())
    del weights["model.transformer.blocks.1.up_proj.weight"]
    save_sharded(weights, tmp_path)
    files = loading.checkpoint_files(tmp_path)
    with pytest.raises(ValueError, match=r"missing \['model.transformer.blocks.1.up_proj.weight'\]"):
        loading.load_into(loading.empty_model(LLaDAForMaskedDiffusion, config, torch.float32), files, CPU)
    weights = llada_weights(llada_config())
    weights["model.transformer.ln_f.weight"] = torch.ones(7)
    save_sharded(weights, tmp_path)
    with pytest.raises(ValueError, match=r"ln_f.weight has shape \(7,\), the model expects \(32,\)"):
        loading.load_into(loading.empty_model(LLaDAForMaskedDiffusion, config, torch.float32), files, CPU)


# Peak host memory, measured in a fresh process by the kernel: writing 5 to /proc/self/clear_refs
# resets the resident set's high-water mark (VmHWM) to the current size just before the load, so no
# allocation can slip between samples and the imports' own peak does not count (tracemalloc does not
# see torch's buffers).
PEAK_SCRIPT = textwrap.dedent(
    """
    import json, re, sys
    from pathlib import Path
    import torch
    from dllm_viz.models import LLaDAConfig, LLaDAForMaskedDiffusion, loading

    def status(field):
        return int(re.search(field + r":\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024

    path, how = Path(sys.argv[1]), sys.argv[2]
    config = LLaDAConfig.from_pretrained(path)
    skeleton = loading.empty_model(LLaDAForMaskedDiffusion, config, torch.float32)
    Path("/proc/self/clear_refs").write_text("5")
    before = status("VmRSS")
    if how == "shard-by-shard":
        model = loading.load_into(skeleton, loading.checkpoint_files(path), torch.device("cpu"))
    else:  # every shard read into memory first, then copied into the model: what the loader avoids
        from safetensors.torch import load_file
        state = {}
        for file in loading.checkpoint_files(path):
            state |= load_file(file)
        model = skeleton.to_empty(device="cpu")
        model.load_state_dict(state)
        del state
    print(json.dumps({"before": before, "peak": status("VmHWM"), "model": loading.weight_bytes(model)}))
    """
)


def can_reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def eight_shard_checkpoint(tmp_path_factory):
    """A LLaDA-layout checkpoint of ~100 MB in 8 shards of ~12 MB (vocabulary shrunk so no single
    tensor dominates)."""
    path = tmp_path_factory.mktemp("llada-8-shards")
    config = llada_config(d=256, heads=4, kv_heads=4, layers=8, hidden=2560)
    config |= {"vocab_size": 512, "embedding_size": 512}
    (path / "config.json").write_text(json.dumps(config))
    save_sharded(llada_weights(config), path, shards=8)
    return path


def peak_above_start(path: Path, how: str) -> tuple[int, int]:
    out = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, str(path), how], capture_output=True, text=True, check=True, timeout=300
    )
    numbers = json.loads(out.stdout)
    return numbers["peak"] - numbers["before"], numbers["model"]


@pytest.mark.skipif(not can_reset_peak(), reason="needs Linux's /proc/self/clear_refs to measure the peak")
def test_host_memory_during_a_load_stays_within_one_shard_of_the_model(eight_shard_checkpoint):
    """On the CPU the model itself lives in host memory; beyond it, the load may hold one shard
    (its mapped pages) plus allocator slack, never the whole checkpoint a second time."""
    shard = max(f.stat().st_size for f in loading.checkpoint_files(eight_shard_checkpoint))
    growth, model = peak_above_start(eight_shard_checkpoint, "shard-by-shard")
    slack = 24 * 2**20
    assert model > 6 * shard  # the bound below tells the two loaders apart
    assert growth <= model + shard + slack, (growth / 2**20, model / 2**20, shard / 2**20)
    # The measurement can fail: reading the whole checkpoint first exceeds the same bound.
    naive, _ = peak_above_start(eight_shard_checkpoint, "whole-checkpoint")
    assert naive > model + shard + slack, (naive / 2**20, model / 2**20, shard / 2**20)
