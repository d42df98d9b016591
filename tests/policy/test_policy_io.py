"""Policy checkpoints: safetensors + config.json round trip; pickles and impostors refused."""

from __future__ import annotations

import json
import pickle
import struct

import pytest
import torch
from safetensors.torch import save_file

from dllm_viz.policy import DiTConfidencePolicy, PolicyConfig

SMALL = PolicyConfig(hidden_size=16, num_heads=2, ffn_size=32, time_embed_dim=8, time_period=10000.0)


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    policy = DiTConfidencePolicy(SMALL)
    torch.nn.init.normal_(policy.blocks[0].ada_ln.weight, std=0.1)  # make every weight matter
    path = tmp_path / "policy"
    policy.save_pretrained(path)
    return policy, path


def probe(policy):
    g = torch.Generator().manual_seed(1)
    return policy(torch.rand(2, 10, generator=g), torch.rand(2, 10, generator=g) < 0.5, torch.rand(2, generator=g))


def test_round_trip_restores_config_and_outputs(saved):
    policy, path = saved
    assert sorted(p.name for p in path.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert json.loads((path / "config.json").read_text()) == SMALL.to_dict()
    loaded = DiTConfidencePolicy.from_pretrained(path)
    assert loaded.config == SMALL
    assert not loaded.training
    assert torch.equal(probe(loaded), probe(policy))
    loaded.save_pretrained(path / "again")  # a loaded policy saves its dataclass config too
    assert json.loads((path / "again" / "config.json").read_text()) == SMALL.to_dict()


@pytest.mark.parametrize("name", ["pytorch_model.bin", "policy.pt", "weights.pkl"])
def test_directory_with_only_a_pickle_is_refused_by_name(saved, name):
    policy, path = saved
    (path / "model.safetensors").unlink()
    torch.save(policy.state_dict(), path / name)
    with pytest.raises(ValueError, match=rf"refusing to load pickle checkpoint\(s\) \['{name}'\]"):
        DiTConfidencePolicy.from_pretrained(path)


def test_missing_config_assumes_the_default_architecture(saved, tmp_path):
    _, path = saved  # saved with a non-default config
    (path / "config.json").unlink()
    with pytest.raises(
        ValueError, match=r"do not fit PolicyConfig.*\(no config.json, so the default config was assumed\)"
    ):
        DiTConfidencePolicy.from_pretrained(path)
    default = DiTConfidencePolicy(PolicyConfig())
    default.save_pretrained(tmp_path / "default")
    (tmp_path / "default" / "config.json").unlink()
    loaded = DiTConfidencePolicy.from_pretrained(tmp_path / "default")
    assert loaded.config == PolicyConfig() and torch.equal(probe(loaded), probe(default))


def test_missing_weights_or_directory_are_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no model.safetensors"):
        DiTConfidencePolicy.from_pretrained(empty)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        DiTConfidencePolicy.from_pretrained(tmp_path / "nowhere")


@pytest.mark.parametrize("writer", ["torch_zip", "raw_pickle"])
def test_renamed_pickle_is_not_accepted_as_safetensors(saved, writer):
    policy, path = saved
    target = path / "model.safetensors"
    if writer == "torch_zip":
        torch.save(policy.state_dict(), target)
    else:
        target.write_bytes(pickle.dumps({k: v.tolist() for k, v in policy.state_dict().items()}))
    with pytest.raises(ValueError, match="is not a safetensors file"):
        DiTConfidencePolicy.from_pretrained(path)


def test_header_that_is_not_json_is_refused(saved):
    _, path = saved
    (path / "model.safetensors").write_bytes(struct.pack("<Q", 4) + b"\xff\xfe\x00\x01" + b"\x00" * 64)
    with pytest.raises(ValueError, match="header is not a JSON object"):
        DiTConfidencePolicy.from_pretrained(path)


def test_oversized_file_is_refused_before_parsing(saved):
    policy, path = saved
    target = path / "model.safetensors"
    with target.open("r+b") as handle:  # sparse: the size counts, no real disk use
        handle.truncate(policy.weight_budget_bytes() + 1)
    with pytest.raises(ValueError, match="more than the .* this policy config can need"):
        DiTConfidencePolicy.from_pretrained(path)


def test_oversized_config_is_refused(saved):
    _, path = saved
    (path / "config.json").write_text(json.dumps({**SMALL.to_dict()}) + " " * 70_000)
    with pytest.raises(ValueError, match="a policy config is at most"):
        DiTConfidencePolicy.from_pretrained(path)


def test_weights_that_do_not_fit_the_config_are_refused(saved):
    _, path = saved
    other = DiTConfidencePolicy(PolicyConfig(hidden_size=8, num_heads=2, ffn_size=16, time_embed_dim=8))
    save_file(other.state_dict(), str(path / "model.safetensors"))
    with pytest.raises(ValueError, match="do not fit PolicyConfig"):
        DiTConfidencePolicy.from_pretrained(path)


def test_non_finite_weights_and_unknown_config_keys_are_refused(saved):
    policy, path = saved
    state = {k: v.clone() for k, v in policy.state_dict().items()}
    state["head.bias"][0] = float("nan")
    save_file(state, str(path / "model.safetensors"))
    with pytest.raises(ValueError, match="'head.bias' .* NaN or inf"):
        DiTConfidencePolicy.from_pretrained(path)
    (path / "config.json").write_text(json.dumps({**SMALL.to_dict(), "bogus": 1}))
    with pytest.raises(ValueError, match=r"unknown policy config keys \['bogus'\]"):
        DiTConfidencePolicy.from_pretrained(path)


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    """Serve hub downloads from a local folder and record which files were asked for."""
    import huggingface_hub.hub_mixin
    from huggingface_hub.errors import EntryNotFoundError

    import dllm_viz.policy.model

    repo, requested = tmp_path / "hub-repo", []

    def download(repo_id, filename, **kwargs):
        requested.append((repo_id, filename))
        if not (repo / filename).is_file():
            raise EntryNotFoundError(f"{filename} not in {repo_id}")
        return str(repo / filename)

    monkeypatch.setattr(huggingface_hub.hub_mixin, "hf_hub_download", download)
    monkeypatch.setattr(dllm_viz.policy.model, "hf_hub_download", download)
    return repo, requested


def test_hub_repo_loads_safetensors_only(saved, fake_hub):
    policy, path = saved
    repo, requested = fake_hub
    path.rename(repo)
    loaded = DiTConfidencePolicy.from_pretrained("someone/policy")
    assert torch.equal(probe(loaded), probe(policy))
    assert [name for _, name in requested] == ["config.json", "model.safetensors"]


def test_hub_repo_with_only_a_pickle_is_refused(saved, fake_hub):
    policy, path = saved
    repo, requested = fake_hub
    (path / "model.safetensors").unlink()
    torch.save(policy.state_dict(), path / "pytorch_model.bin")
    path.rename(repo)
    with pytest.raises(ValueError, match="has no model.safetensors; pickle checkpoints are refused"):
        DiTConfidencePolicy.from_pretrained("someone/policy")
    assert "pytorch_model.bin" not in [name for _, name in requested]
