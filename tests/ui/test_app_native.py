"""``python app.py --model <folder>`` serves a comparison through gradio_client for a LLaDA replica on
the native path, and with ``--trust-remote-code`` for a LLaDA-typed folder only its own code can run."""

from __future__ import annotations

import pytest
from remote_code import save_remote_code_model

from dllm_viz.backends import ModelLoadError, load_backend
from dllm_viz.trace import Trace

from conftest import serve_app


def _compare(url, tmp_path):
    from gradio_client import Client

    client = Client(url, verbose=False, download_files=str(tmp_path))
    return client.predict(
        "one plus two",
        "heuristic:confidence",
        "heuristic:threshold",
        None,
        {"threshold": 0.7},
        16,
        8,
        0.0,
        1,
        api_name="/compare_trace",
    )


def test_native_llada_replica_compares_through_the_client(tmp_path_factory, tiny_model_dir, replica_dirs, tmp_path):
    folder = str(replica_dirs["llada"])
    with serve_app(tmp_path_factory, tiny_model_dir, "--model", folder) as app:
        out = _compare(app.url, tmp_path)
    a, b = Trace.from_dict(out["a"]), Trace.from_dict(out["b"])
    assert a.mask_id == 126336 and a.model.endswith("llada-instruct")
    assert sorted(p for s in b.steps for p in s.committed) == list(range(16))


def test_trust_remote_code_runs_a_folders_own_code(tmp_path_factory, tiny_model_dir, tmp_path):
    # model_type "llada" but not LLaDA's configuration: the native class refuses it, its own code runs it.
    folder = save_remote_code_model(
        tmp_path_factory.mktemp("remote") / "llada-like", "llada", config_extra={"mask_token_id": 2}
    )
    with pytest.raises(
        ModelLoadError, match=r"could not be loaded natively: .*block_type='llama' only.*trust_remote_code"
    ):
        load_backend(str(folder))  # without trust: refused, saying why and what would run it
    with serve_app(tmp_path_factory, tiny_model_dir, "--model", str(folder), "--trust-remote-code") as app:
        out = _compare(app.url, tmp_path)
    assert Trace.from_dict(out["a"]).mask_id == 2
