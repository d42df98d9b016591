"""The app's model cache makes room before it loads: on a GPU two 8B models never meet, and the
load's memory check sees the evicted model's memory as free."""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict

import pytest

from dllm_viz.models import loading
from dllm_viz.ui import allowed_models, runtime


@pytest.fixture
def two_models(tmp_path, tiny_model_dir, monkeypatch):
    """Two allowed copies of the tiny model (files linked, so two cache keys) and an empty cache."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for f in tiny_model_dir.iterdir():
            (tmp_path / name / f.name).symlink_to(f)
    monkeypatch.setenv(allowed_models.ALLOW_ENV, str(tmp_path))
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
    monkeypatch.setitem(allowed_models.GPU_MODELS, b, 0.5)
    monkeypatch.setattr(loading, "free_bytes", lambda device: need - loading.weight_bytes(net_a) // 2)
    room = runtime._room_for(b, runtime.model_device(a))
    room(runtime._BACKENDS)
    assert a not in runtime._BACKENDS
    runtime._BACKENDS[a] = object()  # no weights to give back: stays
    room(runtime._BACKENDS)
    assert a in runtime._BACKENDS


@pytest.fixture
def slow_load_of(monkeypatch):
    """Hold the next loads of the given model until the returned event is set (then load it for real)."""
    released = threading.Event()
    load = runtime.load_backend
    held: list[str] = []

    def held_back(key, **kwargs):
        if key in held:
            assert released.wait(60), "the test never released the load"
        return load(key, **kwargs)

    monkeypatch.setattr(runtime, "load_backend", held_back)

    def hold(model: str) -> threading.Event:
        held.append(model)
        return released

    yield hold
    released.set()


def _wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_visitor_whose_model_is_loaded_never_waits_for_anothers_load(two_models, slow_load_of):
    a, b = two_models
    backend_a = runtime.get_backend(a)
    release = slow_load_of(b)
    loading_b = threading.Thread(target=runtime.get_backend, args=(b,))
    loading_b.start()
    _wait_for(lambda: runtime.load_status(b) is not None)
    t0 = time.monotonic()
    assert runtime.get_backend(a) is backend_a and time.monotonic() - t0 < 1.0
    assert re.fullmatch(r"loading b… \(\d+ s\)", runtime.load_status(b)), runtime.load_status(b)
    assert runtime.load_status(a) is None  # loaded: nothing to say
    release.set()
    loading_b.join(60)
    assert runtime.load_status(b) is None and b in runtime._BACKENDS


def test_a_model_not_loaded_waits_behind_the_load_in_progress_and_says_so(two_models, slow_load_of, monkeypatch):
    a, b = two_models
    monkeypatch.setattr(runtime, "MAX_BACKENDS", 2)
    release = slow_load_of(a)
    threading.Thread(target=runtime.get_backend, args=(a,), daemon=True).start()
    _wait_for(lambda: runtime.load_status(a) is not None)
    assert re.fullmatch(r"waiting for a to load \(\d+ s; models load one at a time\)", runtime.load_status(b))
    release.set()
    _wait_for(lambda: runtime.load_status(a) is None)


def test_compare_shows_the_load_and_its_seconds_until_the_first_step(two_models, slow_load_of):
    from dllm_viz.ui import compare

    _, b = two_models
    release = slow_load_of(b)
    heur = dict(steps=0, threshold=0.9, factor=1.0, gamma=0.01, tau=1.0, beta=1.0, policy_files=None)
    panes = [[choice] + [heur[f] for f in compare.PANE_FIELDS[1:]] for choice in ("heuristic:confidence",) * 2]
    run = compare.run_compare(b, "one plus two is", 16, 4, False, 0.0, 0, *panes[0], *panes[1], "full speed")
    comp = next(run)["session"]
    frames = []
    worker = threading.Thread(target=lambda: frames.extend(run))
    worker.start()
    _wait_for(lambda: runtime.load_status(b) is not None)
    status = compare.live_frame(comp)["status"]
    assert re.fullmatch(rf"loading b… \(\d+ s\) #{comp.run_id}", status), status
    release.set()
    worker.join(120)
    assert frames[-1]["status"].startswith("done") and "status" not in compare.live_frame(comp)
