"""The app's model cache makes room before it loads: on a GPU two 8B models never meet, and the
load's memory check sees the evicted model's memory as free."""

from __future__ import annotations

from collections import OrderedDict

import pytest

from dllm_viz.models import loading
from dllm_viz.ui import runtime


@pytest.fixture
def two_models(tmp_path, tiny_model_dir, monkeypatch):
    """Two allowed copies of the tiny model (files linked, so two cache keys) and an empty cache."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for f in tiny_model_dir.iterdir():
            (tmp_path / name / f.name).symlink_to(f)
    monkeypatch.setenv(runtime.ALLOW_ENV, str(tmp_path))
    monkeypatch.setattr(runtime, "_BACKENDS", OrderedDict())
    return str((tmp_path / "a").resolve()), str((tmp_path / "b").resolve())


def test_the_least_recently_used_model_goes_before_the_next_loads(two_models, monkeypatch):
    a, b = two_models
    monkeypatch.setattr(runtime, "MAX_BACKENDS", 1)
    cached_during_load = []
    load = runtime.load_backend

    def spy(key, **kwargs):
        cached_during_load.append(list(runtime._BACKENDS))
        return load(key, **kwargs)

    monkeypatch.setattr(runtime, "load_backend", spy)
    runtime.get_backend(a)
    assert runtime.get_backend(b).device.type == "cpu"
    assert cached_during_load == [[], []]  # a was gone before b's load began
    assert list(runtime._BACKENDS) == [b]


def test_the_memory_check_does_not_count_a_model_about_to_be_evicted(two_models, monkeypatch):
    """b (a known size) needs more than is free, but not more than is free once a is gone: a goes first.
    The device's free memory is set here; the tiny model's 16 MB would vanish in the host's noise."""
    a, b = two_models
    net_a = runtime.get_backend(a).model
    need = loading.required_bytes(int(0.5e9))
    monkeypatch.setitem(runtime.GPU_MODELS, b, 0.5)
    monkeypatch.setattr(loading, "free_bytes", lambda device: need - loading.weight_bytes(net_a) // 2)
    room = runtime._room_for(b, runtime.model_device(a))
    room(runtime._BACKENDS)
    assert a not in runtime._BACKENDS
    runtime._BACKENDS[a] = object()  # no weights to give back: stays
    room(runtime._BACKENDS)
    assert a in runtime._BACKENDS
