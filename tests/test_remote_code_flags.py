"""--trust-remote-code exists wherever the load error names it, reaches load_backend, and in the
app covers only the models the operator chose."""

from __future__ import annotations

import importlib

import pytest

from dllm_viz.backends import ModelLoadError
from dllm_viz.ui import allowed_models, runtime


@pytest.mark.parametrize("module", ["dllm_viz.generate", "dllm_viz.eval.__main__", "dllm_viz.rl.train", "app"])
def test_every_cli_has_the_flag_the_hint_names(module, capsys):
    with pytest.raises(SystemExit):
        importlib.import_module(module).main(["--help"])
    assert "--trust-remote-code" in capsys.readouterr().out


@pytest.mark.parametrize(
    "module, loader, argv",
    [
        ("dllm_viz.eval.__main__", "dllm_viz.eval.__main__", ["--n", "1", "--seeds", "0"]),
        ("dllm_viz.rl.train", "dllm_viz.rl.trainer", ["--iterations", "1", "--warmup", "0", "--no-progress"]),
    ],
)
def test_the_flag_reaches_load_backend(module, loader, argv, monkeypatch, tmp_path):
    mod = importlib.import_module(module)
    seen = {}

    def fake_load(model, **kwargs):
        seen.update(kwargs)
        raise ModelLoadError("stop here")

    monkeypatch.setattr(importlib.import_module(loader), "load_backend", fake_load)
    out = ["--out", str(tmp_path / "out")] if "eval" in module else ["--out-dir", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as code:
        mod.main(argv + out + ["--trust-remote-code"])
    assert code.value.code == 2 and seen["trust_remote_code"] is True


def test_app_trust_covers_the_operators_models_only(monkeypatch, tmp_path):
    allowed = tmp_path / "models"
    (allowed / "mine").mkdir(parents=True)
    monkeypatch.setenv(allowed_models.ALLOW_ENV, str(allowed))
    monkeypatch.setenv(allowed_models.MODEL_ENV, "some-org/operators-model")
    folder = allowed_models.canonical_model(str(allowed / "mine"))
    monkeypatch.delenv(allowed_models.TRUST_ENV, raising=False)
    assert not allowed_models.remote_code_trusted(folder)  # no flag: nothing
    monkeypatch.setenv(allowed_models.TRUST_ENV, "1")
    assert allowed_models.remote_code_trusted(folder)
    assert allowed_models.remote_code_trusted("some-org/operators-model")
    with pytest.raises(ModelLoadError, match="not on this server's list"):
        allowed_models.canonical_model("someone-else/any-model")  # refused before trust is even asked
    assert not allowed_models.remote_code_trusted("someone-else/any-model")


def test_base_ids_are_gpu_only_like_instruct(monkeypatch):
    monkeypatch.setattr(runtime.torch.cuda, "is_available", lambda: False)
    for model in (
        "GSAI-ML/LLaDA-8B-Base",
        "GSAI-ML/LLaDA-8B-Instruct",
        "Dream-org/Dream-v0-Base-7B",
        "Dream-org/Dream-v0-Instruct-7B",
    ):
        with pytest.raises(ModelLoadError, match="needs a CUDA GPU"):
            allowed_models.check_model_runnable(model)
