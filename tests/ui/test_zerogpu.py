"""ZeroGPU, simulated: the served app with a ``spaces`` module that has the real decorator's
semantics (``spaces.GPU(duration=callable)`` asks the callable for the reservation with the
call's arguments; arguments and yielded items cross a process boundary, so they are pickled)
and, as on a ZeroGPU Space, reports CUDA available in the main process. No GPU is needed."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from dllm_viz.ui import zerogpu
from dllm_viz.ui.settings import PANE_FIELDS

from conftest import serve_app

ROOT = Path(__file__).resolve().parents[2]
LLADA_GB = 16.0  # LLaDA-8B's bf16 weights

SPACES_STUB = '''
"""A stand-in for Hugging Face's ``spaces`` package on a ZeroGPU Space (tests only)."""
import functools, inspect, json, os, pickle
import torch

torch.cuda.is_available = lambda: True  # what spaces.zero does in a ZeroGPU Space's main process
LOG = os.environ["ZEROGPU_LOG"]


def _record(**event):
    with open(LOG, "a") as f:
        f.write(json.dumps(event) + "\\n")


_record(event="import", cuda=torch.cuda.is_available())


def gradio_auto_wrap(fn):
    return fn


def GPU(fn=None, duration=60):
    def wrap(fn):
        def reserve(args, kwargs):
            seconds = duration(*args, **kwargs) if callable(duration) else duration
            _record(event="gpu", fn=fn.__name__, duration=seconds)
            return pickle.loads(pickle.dumps((args, kwargs)))

        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def stream(*args, **kwargs):
                args, kwargs = reserve(args, kwargs)
                for item in fn(*args, **kwargs):
                    yield pickle.loads(pickle.dumps(item))
            return stream

        @functools.wraps(fn)
        def call(*args, **kwargs):
            args, kwargs = reserve(args, kwargs)
            return pickle.loads(pickle.dumps(fn(*args, **kwargs)))
        return call

    return wrap if fn is None else wrap(fn)
'''


def test_reservations_fit_a_visitors_quota_and_grow_with_the_work():
    """Compare on LLaDA-8B reserves well under the 2-minute quota even at L = 512, more than at L = 64."""
    short = zerogpu.gpu_seconds(LLADA_GB, 2 * 64, 64 + 64)
    longest = zerogpu.gpu_seconds(LLADA_GB, 2 * 512, 512 + 256)
    assert zerogpu.FIXED_S < short < longest <= zerogpu.MAX_GPU_S
    assert zerogpu.gpu_seconds(0.016, 2 * 512, 512 + 256) < short  # a tiny model costs next to nothing


def test_a_sweep_beyond_the_quota_is_refused_with_the_numbers():
    with pytest.raises(ValueError, match=r"about \d+ s of GPU time.*at most 120 s.*built-in model"):
        zerogpu.gpu_seconds(LLADA_GB, 600 * 5 * 64, 64 + 64)  # 600 problems × 5 decodes on LLaDA-8B


@pytest.fixture(scope="module")
def zero_app(tmp_path_factory, tiny_model_dir):
    stub = tmp_path_factory.mktemp("spaces-stub")
    (stub / "spaces").mkdir()
    (stub / "spaces" / "__init__.py").write_text(textwrap.dedent(SPACES_STUB))
    log = stub / "zerogpu.jsonl"
    path = os.pathsep.join([str(stub), str(ROOT), os.environ.get("PYTHONPATH", "")])
    with serve_app(
        tmp_path_factory, tiny_model_dir, PYTHONPATH=path, SPACES_ZERO_GPU="true", ZEROGPU_LOG=str(log)
    ) as app:
        yield app, log


def test_the_tiny_model_runs_on_the_cpu_without_a_gpu_reservation(zero_app, tmp_path):
    """On ZeroGPU the built-in model (or the test's tiny one) loads on the CPU in fp32 and its runs
    never enter ``spaces.GPU``: no queue for a GPU, no quota spent."""
    from gradio_client import Client

    app, log = zero_app
    client = Client(app.url, verbose=False, download_files=str(tmp_path))
    out = client.predict("Tom has 3 apples.", gen_length=16, block_length=8, api_name="/compare_trace")
    assert len(out["a"]["steps"]) >= 1
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert {"event": "import", "cuda": True} in events  # the simulation reported CUDA as ZeroGPU does
    assert [e for e in events if e["event"] == "gpu"] == []
    assert "ready on cpu" in app.log.read_text()


@pytest.fixture(scope="module")
def zero_demo():
    from dllm_viz.ui.app import build_demo

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPACES_ZERO_GPU", "true")
        yield build_demo()


def test_the_queue_admits_more_than_one_event_on_zerogpu(zero_demo):
    """Gradio turns an unset queue size into 1 on ZeroGPU, which one streaming run fills."""
    from dllm_viz.ui.app import QUEUE_SIZE

    assert zero_demo._queue.max_size == QUEUE_SIZE > 1


def test_every_endpoint_names_its_arguments(zero_demo):
    """gradio_client users read ``strategy``, ``tau`` …, never ``param_7``."""
    endpoints = zero_demo.get_api_info()["named_endpoints"]
    names = {ep: [p["parameter_name"] for p in info["parameters"]] for ep, info in endpoints.items()}
    assert not [(ep, n) for ep, ns in names.items() for n in ns if n.startswith("param_")]
    assert names["/explore"][7:] == [*PANE_FIELDS, "run_key"]
    assert names["/compare"][-2:] == ["speed", "run_key"] and "strategy_b" in names["/compare"]
