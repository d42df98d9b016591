"""``policy:<hub id>`` in the picker: offered and loaded only for ids the operator allowed
(``--allow-hub-policy``), through huggingface_hub's own download code, here from a prepared
offline cache (no network)."""

from __future__ import annotations

import shutil

import pytest
import torch
from huggingface_hub import constants

from dllm_viz.assets import shipped_policies
from dllm_viz.strategies.learned import load_policy_network
from dllm_viz.ui import picker, runtime

REPO = "you/tiny-policy"
REVISION = "0" * 40


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """A Hub cache holding REPO (a copy of the shipped default policy) and the Hub offline."""
    snapshot = tmp_path / f"models--{REPO.replace('/', '--')}" / "snapshots" / REVISION
    snapshot.mkdir(parents=True)
    source = shipped_policies()[picker.DEFAULT_POLICY]
    for name in ("config.json", "model.safetensors"):
        shutil.copy(source / name, snapshot / name)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text(REVISION)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return source


def test_an_allowed_hub_policy_is_offered_and_loads(hub_cache, monkeypatch):
    monkeypatch.setenv(picker.HUB_POLICY_ENV, REPO)
    value = f"policy:{REPO}"
    assert value in [v for _, v in picker.strategy_choices()]
    spec = picker.pane_strategy(value, {})
    assert not picker.uploaded(spec) and picker.choice_of(spec) == value
    strategy = spec.build(load_policy=runtime.policy_loader(torch.device("cpu")))
    assert strategy.source == REPO  # what its traces record
    reference = load_policy_network(hub_cache)
    for got, want in zip(strategy.policy.state_dict().values(), reference.state_dict().values(), strict=True):
        assert torch.equal(got, want)


def test_a_hub_policy_the_operator_did_not_allow_is_refused(hub_cache, monkeypatch):
    monkeypatch.delenv(picker.HUB_POLICY_ENV, raising=False)
    with pytest.raises(ValueError, match=r"no shipped policy named 'you/tiny-policy'.*--allow-hub-policy"):
        picker.pane_strategy(f"policy:{REPO}", {})
