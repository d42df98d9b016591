"""Gradio's per-event records stay bounded (a record per request, kept forever, was part of the
served app's memory creep)."""

from __future__ import annotations

from dllm_viz.ui.bookkeeping import RecentEvents


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
