"""The compute budget (``ui/budget.py``): handlers yield before they take a slot (so Gradio can
close them on any cancel), and slots whose owner is gone are reclaimed. Real generators and
threads; the served side is in ``test_server_load.py``."""

from __future__ import annotations

import gc
import threading
import time

import pytest

from dllm_viz.ui import allowed_models, benchmark, budget, compare, endpoints

HEUR = [0, 0.9, 1.0, 0.01, 1.0, 1.0, None]


@pytest.fixture(autouse=True)
def allowed_model(monkeypatch, tiny_model_dir):
    monkeypatch.setenv(allowed_models.ALLOW_ENV, str(tiny_model_dir))
    assert budget.held() == 0
    yield
    assert budget.held() == 0, "a test left a slot held"


def _handlers(model: str) -> dict:
    long = dict(gen_length=64, block_length=64)
    return {
        "/compare_trace": lambda: endpoints.compare_trace("one plus two", model=model, **long),
        "/branch": lambda: endpoints.branch_api(prompt="one plus two", model=model, **long),
        "/compare": lambda: compare.run_compare(
            model, "one plus two", 64, 64, False, 0.0, 0, "heuristic:confidence", *HEUR, "heuristic:confidence", *HEUR
        ),
        "/benchmark": lambda: benchmark.run_benchmark(
            "", ["heuristic:confidence"], False, ["semi-AR (BL = L/8)"], [1], 5, 64, 1, "1.0", "1.0"
        ),
    }


@pytest.mark.parametrize("endpoint", ["/compare_trace", "/branch", "/compare", "/benchmark"])
def test_handlers_yield_before_taking_a_slot(tiny_model_dir, endpoint, monkeypatch):
    """Gradio registers (and so can close) a generator only after its first yield: until then it
    must hold no slot and start no job, or a cancel in that window leaks them."""
    # a progress item every step: otherwise a fast decode may finish before its first heartbeat
    # and the second yield would come after the slot is released (timing-dependent)
    monkeypatch.setattr(endpoints, "HEARTBEAT_S", 0.0)
    threads = set(threading.enumerate())
    handler = _handlers(str(tiny_model_dir))[endpoint]()
    next(handler)
    assert budget.held() == 0
    # no background job started (a count would also see an earlier test's thread ending meanwhile)
    assert not set(threading.enumerate()) - threads
    next(handler)  # now it computes
    assert budget.held() == 1 or endpoint == "/benchmark"
    handler.close()
    deadline = time.monotonic() + 10
    while budget.held() and time.monotonic() < deadline:
        time.sleep(0.05)  # a benchmark's worker ends at its next forward pass


def _counting():
    yield from range(1000)


def test_a_closed_holder_releases_and_an_unstarted_one_never_takes():
    steps = budget.hold_slot(_counting(), "a test")
    assert budget.held() == 0  # nothing taken before the first next()
    assert next(steps) == 0 and budget.held() == 1
    steps.close()
    assert budget.held() == 0
    budget.hold_slot(_counting(), "a test").close()
    assert budget.held() == 0


def test_an_unreachable_holder_is_reclaimed_by_a_waiter():
    """A generator dropped inside a reference cycle is never closed by refcounting; a waiter's
    garbage collection closes it, and its slot comes back."""
    gc.disable()
    try:
        for _ in range(budget.MODEL_CONCURRENCY):
            cycle = {"steps": budget.hold_slot(_counting(), "a lost run")}
            cycle["self"] = cycle
            next(cycle["steps"])
            del cycle
        assert budget.held() == budget.MODEL_CONCURRENCY
        # without the waiter's collection the slots stay taken past the wait (stale only after 60 s): Busy
        budget.acquire("a waiter", wait_s=30).release()
    finally:
        gc.enable()


def test_a_stale_lease_is_reclaimed_and_its_late_release_is_harmless(monkeypatch):
    monkeypatch.setattr(budget, "STALE_S", 0.2)
    leases = [budget.acquire("a forgotten run") for _ in range(budget.MODEL_CONCURRENCY)]
    time.sleep(0.3)
    fresh = budget.acquire("a waiter", wait_s=2)
    assert budget.held() == 1  # every stale lease went back
    for lease in leases:
        lease.release()  # reclaimed already: must not free the slot the waiter holds
    assert budget.held() == 1
    fresh.release()


def test_a_busy_lease_is_never_stale(monkeypatch):
    monkeypatch.setattr(budget, "STALE_S", 0.1)
    with budget.compute_slot("a long model load"):
        time.sleep(0.2)
        others = [budget.acquire("another") for _ in range(budget.MODEL_CONCURRENCY - 1)]
        for lease in others:
            lease.busy = True
        with pytest.raises(budget.Busy):
            budget.acquire("a waiter", wait_s=0.3)
        for lease in others:
            lease.release()


def test_a_background_job_stops_when_its_handler_stops_polling(monkeypatch):
    """F2: a sweep whose handler vanished without being closed stops by itself."""
    monkeypatch.setattr(budget, "ORPHAN_S", 0.3)

    def sweep(cancel):
        while not cancel.is_set():
            time.sleep(0.01)
        raise budget.Cancelled()

    job = budget.BackgroundJob(sweep)
    assert not job.wait(0.1)  # polled: still running
    job._thread.join(5)  # nobody polls any more
    assert not job._thread.is_alive()
    with pytest.raises(budget.Cancelled):
        job.result()
