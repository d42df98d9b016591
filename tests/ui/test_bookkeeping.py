"""Gradio's per-event bookkeeping stays bounded (a record per request, kept forever, was part of the
served app's memory creep), and a run's streaming entries go when its event ends."""

from __future__ import annotations

import socket
import time
from collections import deque

import pytest

from dllm_viz.ui.bookkeeping import SESSIONS, RecentEvents, RecentIds, bound_queue_bookkeeping


def _record(status: str) -> dict:
    return {"time": 0.0, "status": status, "process_time": None, "function": "compare_trace", "session_hash": "s"}


def test_the_oldest_finished_records_go_first():
    events = RecentEvents(limit=3)
    for i, status in enumerate(["success", "failed", "cancelled", "success", "success"]):
        events[f"e{i}"] = _record(status)
    assert list(events) == ["e2", "e3", "e4"]


def test_records_of_queued_or_running_events_are_kept():
    """Gradio writes a running event's status into its record when it ends: dropping it would raise."""
    events = RecentEvents(limit=2)
    events["running"] = _record("processing")
    for i in range(4):  # as Gradio does: a record is made "queued", its status set when the event ends
        events[f"e{i}"] = _record("queued")
        events[f"e{i}"]["status"] = "success"
    assert list(events) == ["running", "e3"]
    events["running"]["status"] = "success"
    events["next"] = _record("queued")
    assert list(events) == ["e3", "next"]


def test_the_app_queue_keeps_its_records_bounded():
    from dllm_viz.ui.app import build_demo

    events = build_demo()._queue.event_analytics
    assert isinstance(events, RecentEvents)
    for i in range(events.limit + 50):
        events[str(i)] = _record("success")
    assert len(events) == events.limit


def test_recent_ids_keep_the_newest():
    ids = RecentIds(["a", "b"], limit=3)
    for event_id in ["c", "d", "b"]:  # an id added again counts as new
        ids.add(event_id)
    assert list(ids) == ["c", "d", "b"] and "a" not in ids
    ids.remove("d")
    assert list(ids) == ["c", "b"]
    with pytest.raises(KeyError):
        ids.remove("d")


@pytest.fixture
def served(request):
    """A small Gradio app with the bookkeeping bound, launched in this process (so its
    dicts can be read): generators that refuse after a first yield, finish, or run until cancelled."""
    import gradio as gr

    def refuse(x):
        yield "checking"
        raise gr.Error(f"refused {x}")

    def finish(x):
        yield "one"
        yield "two"

    def forever(x):
        for i in range(10_000):
            time.sleep(0.02)
            yield str(i)

    def updates(x):
        yield gr.Textbox(visible=True)  # a property update: the session's copy of the block is replaced
        yield f"{x}: two"  # a plain value: Gradio files that copy under its own new id too

    with gr.Blocks() as demo:
        box, out = gr.Textbox(), gr.Textbox()
        for fn in (refuse, finish, forever, updates):
            gr.Button().click(fn, box, out, api_name=fn.__name__)
    demo.queue()
    bound_queue_bookkeeping(demo, limit=4)
    sessions = getattr(request, "param", SESSIONS)
    demo.launch(
        prevent_thread_lock=True,
        server_name="127.0.0.1",
        server_port=_free_port(),
        quiet=True,
        state_session_capacity=sessions,
    )
    try:
        yield demo
    finally:
        demo.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _streams(demo) -> dict:
    return {"diff bases": dict(demo.pending_diff_streams), "streams": dict(demo.pending_streams)}


def _settled(demo, timeout: float = 30.0) -> dict:
    """The streaming entries once the server has finished with the events (a cancel lands a moment later)."""
    deadline = time.monotonic() + timeout
    while any(_streams(demo).values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return _streams(demo)


def test_runs_leave_no_streaming_entries_however_they_end(served):
    """A run refused after its first yield, a finished one and a cancelled one: none keeps a diff
    base (keyed by its iterator's id, which a later run may reuse and then stream against) or a
    stream dict; the ids of finished events stay bounded."""
    from gradio_client import Client
    from gradio_client.exceptions import AppError
    from gradio_client.utils import Status

    client = Client(served.local_url, verbose=False)
    for i in range(3):
        with pytest.raises(AppError, match=f"refused {i}"):
            client.predict(str(i), api_name="/refuse")
        assert _settled(served) == {"diff bases": {}, "streams": {}}
    assert client.predict("x", api_name="/finish") == "two"
    assert _settled(served) == {"diff bases": {}, "streams": {}}
    job = client.submit("x", api_name="/forever")
    while job.status().code != Status.ITERATING:
        time.sleep(0.02)
    assert _streams(served)["diff bases"]  # a running run has its base
    job.cancel()
    assert _settled(served) == {"diff bases": {}, "streams": {}}
    to_reset = served.server_app.iterators_to_reset
    assert isinstance(to_reset, RecentIds) and len(to_reset) == 4
    for i in range(6):  # Gradio would keep every event object it ever queued
        assert client.predict(str(i), api_name="/finish") == "two"
    deadline = time.monotonic() + 10
    while len(served._queue.event_ids_to_events) > 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(served._queue.event_ids_to_events) <= 4
    assert not [t for t in served._queue._asyncio_tasks if t.done()][1:]  # at most the last one, finished


def test_ended_events_go_once_delivered_and_the_newest_stay():
    from types import SimpleNamespace

    from dllm_viz.ui.bookkeeping import forget_events

    queue = SimpleNamespace(event_ids_to_events={k: object() for k in "abcdef"}, pending_event_ids_session={"s": {"b"}})
    finished = deque("abcdef")
    forget_events(queue, finished, limit=2)
    # a and c–d go; b, whose completion is still undelivered, waits; the two newest stay
    assert set(queue.event_ids_to_events) == {"b", "e", "f"} and list(finished) == ["e", "f", "b"]
    queue.pending_event_ids_session = {}
    forget_events(queue, finished, limit=2)
    assert set(queue.event_ids_to_events) == {"f", "b"} and list(finished) == ["f", "b"]


@pytest.mark.parametrize("served", [3], indirect=True)
def test_sessions_are_bounded_and_so_are_their_last_used_times(served):
    """Each client is a session with its own copy of the app's config; Gradio keeps the newest
    ``state_session_capacity`` (the app passes ``SESSIONS``) and our bound prunes the last-used
    times of the ones it dropped."""
    from gradio_client import Client

    for i in range(9):
        assert Client(served.local_url, verbose=False).predict(str(i), api_name="/finish") == "two"
    holder = served.server_app.state_holder
    assert len(holder.session_data) <= 3
    assert len(holder.time_last_used) <= 2 * 3


def test_the_app_launches_with_a_bounded_session_count():
    from dllm_viz.ui.app import launch_kwargs

    assert launch_kwargs()["state_session_capacity"] == SESSIONS <= 1000


def test_components_built_as_updates_leave_the_session_when_the_event_ends(served):
    """A property update replaces the session's copy of a block with a new component, and the next
    plain value files that copy under its own new id as well, for good (Gradio 6.17); after each
    event only the app's own blocks stay in the session's registry."""
    from gradio_client import Client

    client = Client(served.local_url, verbose=False)
    for i in range(5):
        assert client.predict(str(i), api_name="/updates") == f"{i}: two"
    state = served.server_app.state_holder.session_data[client.session_hash]
    deadline = time.monotonic() + 10
    while set(state.blocks_config.blocks) - set(served.blocks) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert set(state.blocks_config.blocks) <= set(served.blocks)
    assert set(state.config_values) <= set(served.blocks)
