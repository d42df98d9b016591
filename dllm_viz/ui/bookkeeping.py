"""Bounds on what Gradio's queue keeps per event, so memory and per-request CPU stay flat on a
server that runs for weeks.

Gradio 6 records every event it ever queued in ``Queue.event_analytics`` (for its monitoring
page) and never drops one; after each event it also rebuilds a pandas summary over all of them,
so both the memory and the time that bookkeeping takes grow with every request served.
:class:`RecentEvents` keeps the newest finished records only (Gradio's summary, which it
recomputes only when the count grows, then stops updating; this app does not show it).
"""

from __future__ import annotations

import gradio as gr

FINISHED = frozenset({"success", "failed", "cancelled"})  # Gradio's final statuses
MAX_EVENTS = 1000  # finished records kept: enough for the monitoring page's percentiles


class RecentEvents(dict):
    """Gradio's per-event records, keeping at most ``limit`` of them: past that, the oldest finished
    ones go. Records of events still queued or running stay, since Gradio updates them in place."""

    def __init__(self, records: dict | None = None, limit: int = MAX_EVENTS):
        super().__init__(records or {})
        self.limit = limit

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)
        if len(self) > self.limit:
            excess = len(self) - self.limit
            finished = [k for k, record in self.items() if record.get("status") in FINISHED]  # oldest first
            for old in finished[:excess]:
                del self[old]


def bound_queue_bookkeeping(demo: gr.Blocks, limit: int = MAX_EVENTS) -> None:
    """Swap the queue's event records for :class:`RecentEvents` (after ``demo.queue()``, which makes the queue)."""
    queue = demo._queue
    queue.event_analytics = RecentEvents(queue.event_analytics, limit)
