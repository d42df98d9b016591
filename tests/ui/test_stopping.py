"""■ Stop through the page's run keys: which runs a Stop or a newer run ends, a Stop while a run
waits for a compute slot, and an Explore run that a Stop ends between steps."""

from __future__ import annotations

import threading
import time

import pytest

from dllm_viz.ui import budget
from dllm_viz.ui.stopping import RunBoard


def test_a_stop_ends_the_runs_its_page_started_before_it_and_no_later_one():
    board = RunBoard()
    first = board.start("page-a:1")
    other_page = board.start("page-b:1")
    assert first() is None
    board.stop("page-a:2")
    assert first() == "stopped" and other_page() is None
    after = board.start("page-a:3")
    assert after() is None and first() == "superseded"  # a newer run outranks the Stop


def test_a_newer_run_from_the_page_supersedes_the_older_one():
    board = RunBoard()
    first = board.start("p:1")
    board.stop("p:2")
    second = board.start("p:3")  # Run, Stop, Run: the first is superseded, which outranks its Stop
    assert first() == "superseded" and second() is None


def test_a_stop_that_arrives_before_its_run_still_ends_it():
    """The page numbers the keys at the click; the Stop's request may reach the server first."""
    board = RunBoard()
    board.stop("p:2")
    assert board.start("p:1")() == "stopped"


@pytest.mark.parametrize("key", [None, "", "p", "p:", ":3", "p:-1", "p:1.5", "a b:1", "p:1:2", 7, "x" * 65 + ":1"])
def test_calls_without_a_page_key_are_never_stopped_by_it(key):
    board = RunBoard()
    ending = board.start(key)
    board.stop(key)
    assert ending() is None and len(board._pages) == 0


def test_the_board_forgets_the_pages_heard_from_least_recently():
    board = RunBoard(limit=3)
    for page in "abcd":
        board.start(f"{page}:1")
    board.start("b:2")
    board.start("e:1")
    assert list(board._pages) == ["d", "b", "e"]


def test_a_stop_ends_the_wait_for_a_compute_slot(monkeypatch):
    monkeypatch.setattr(budget, "MODEL_CONCURRENCY", 1)
    held = budget.acquire("the run before")
    stopped = threading.Event()
    t0 = time.monotonic()
    threading.Timer(0.2, stopped.set).start()
    try:
        with pytest.raises(budget.Cancelled):
            budget.acquire("a stopped run", wait_s=30, stop=stopped.is_set)
    finally:
        held.release()
    assert time.monotonic() - t0 < 3.0  # checked at least once a second
    assert budget.held() == 0


def _explore_settings(gen_length: int) -> list:
    from test_server_load import HEURISTIC_PANE

    return ["", "What is 2 plus 3?", gen_length, gen_length, False, 0.0, 0, "heuristic:confidence", *HEURISTIC_PANE]


def test_a_stop_ends_an_explore_run_between_steps(tiny_model_dir, monkeypatch):
    """In process: a run with a page key stops after the Stop, says at which step, and frees its slot;
    one step of a run superseded by a newer one ends it with no status of its own."""
    from dllm_viz.ui import allowed_models, explore
    from dllm_viz.ui.stopping import BOARD

    monkeypatch.setenv(allowed_models.MODEL_ENV, str(tiny_model_dir))
    run = explore.run_explore(*_explore_settings(64), "test-page:1")
    statuses = [next(run)["status"]]
    while not statuses[-1].startswith("decoding · step"):
        statuses.append(next(run)["status"])
    BOARD.stop("test-page:2")
    rest = [update.get("status") for update in run]
    assert rest and rest[-1].startswith("stopped at step "), rest
    assert int(rest[-1].split()[3]) < 64
    assert budget.held() == 0

    older = explore.run_explore(*_explore_settings(64), "test-page:3")
    assert next(older)["status"].startswith("decoding…")
    BOARD.start("test-page:4")  # the page ran again
    assert [update for update in older if "stopped" in str(update.get("status"))] == []
    assert budget.held() == 0
