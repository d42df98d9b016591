"""Bounds on what Gradio keeps per event, so memory and per-request CPU stay flat on a server
that runs for weeks, and a new run never streams against a dead run's outputs.

Gradio 6 (6.17) keeps, and never drops:

* every event it ever queued in ``Queue.event_analytics`` (for its monitoring page); after each
  event it also rebuilds a pandas summary over all of them. :class:`RecentEvents` keeps the
  newest finished records only (Gradio's summary, which it recomputes only when the count grows,
  then stops updating; this app does not show it);
* the id of every finished event in ``App.iterators_to_reset``: :class:`RecentIds` keeps the newest;
* every task that ever processed an event in ``Queue._asyncio_tasks`` (kept to cancel them at
  shutdown): :class:`LiveTasks` drops the finished ones as new ones come;
* every event object it ever queued in ``Queue.event_ids_to_events`` (with its request, its data
  and an ``asyncio.Event``; only events still waiting in the queue are ever removed): the newest
  ``ENDED_EVENTS`` ended events stay (a late ``/cancel`` or a closing session may still look one up),
  older ones go once their session's stream has delivered their completion;
* per session, a generator run's last outputs in ``Blocks.pending_diff_streams`` (the base its
  next streamed diff is computed against) and a dict in ``Blocks.pending_streams``, both keyed by
  ``id()`` of the run's iterator. A run that ends normally drops its diff base; one that raises
  after its first yield (every refused input: the handler shows the error in its status line
  first) or is cancelled keeps it forever. Besides the memory (a cancelled run's base holds its
  grids and plots), once that dead iterator's address is reused by a new run's iterator, the new
  run's first item goes out as a diff against the dead run's outputs: gradio_client fails with
  Gradio's generic "upstream … raised an exception" (an ``IndexError`` when the dead run had
  fewer outputs) or cannot apply the diffs, and the browser's client throws, closes the page's
  event stream and leaves the run's status frozen mid-decode. :func:`bound_queue_bookkeeping`
  drops a run's entries when its event ends, however it ends;
* one ``SessionState`` per session that ever ran an event (every page load that clicks, every
  gradio_client ``Client``), each with its own copy of the app's config (~0.4 MB for this app)
  and the session's ``gr.State`` values, up to ``state_session_capacity`` sessions (Gradio's
  default: 10,000, ~4 GB) — :data:`SESSIONS` is passed to ``launch`` instead, the least recently
  used session going first — and a last-used time per session ever seen in
  ``StateHolder.time_last_used``, which nothing removes: pruned here to the sessions still held;
* per session, a copy of a block for every property update: the update replaces the session's
  copy of the block (``SessionState.blocks_config.blocks[id]``) with a new component, and the next
  plain value for it files that component under its own new id as well (7 for each Compare run, 10
  for each Explore run), with its constructor arguments, and keeps a config for it with its last
  value (``SessionState.config_values``: a grid's HTML, a plot's JSON). Nothing looks those ids up again;
  :func:`forget_update_blocks` drops them when the event ends. This was most of the soak's creep
  (~0.045 MB per round, linear over 1,000 rounds in one session).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping, MutableSet
from typing import Any, cast

import gradio as gr
from gradio.blocks import BlockFunction

FINISHED = frozenset({"success", "failed", "cancelled"})  # Gradio's final statuses
MAX_EVENTS = 1000  # finished records kept: enough for the monitoring page's percentiles
ENDED_EVENTS = 100  # ended event objects kept for a late lookup (each holds its request and data)
SESSIONS = 256  # sessions whose state is kept (``launch(state_session_capacity=...)``), least recently used out


class RecentEvents(dict):
    """Gradio's per-event records, keeping at most ``limit`` of them: past that, the oldest finished
    ones go. Records of events still queued or running stay, since Gradio updates them in place."""

    def __init__(self, records: dict | None = None, limit: int = MAX_EVENTS):
        super().__init__(records or {})
        self.limit = limit

    def __setitem__(self, key: str, value: dict[str, Any]) -> None:
        super().__setitem__(key, value)
        if len(self) > self.limit:
            excess = len(self) - self.limit
            finished = [k for k, record in self.items() if record.get("status") in FINISHED]  # oldest first
            for old in finished[:excess]:
                del self[old]


class RecentIds(MutableSet):
    """A set that keeps the ``limit`` ids added last (Gradio consults ``iterators_to_reset`` only
    for an event still being processed, so old ids are never looked at again)."""

    def __init__(self, ids: Iterable[str] = (), limit: int = MAX_EVENTS):
        self.limit = limit
        self._ids: dict[str, None] = {}
        for event_id in ids:
            self.add(event_id)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, event_id: str) -> None:
        self._ids.pop(event_id, None)
        self._ids[event_id] = None
        while len(self._ids) > self.limit:
            del self._ids[next(iter(self._ids))]

    def discard(self, event_id: str) -> None:
        self._ids.pop(event_id, None)


class LiveTasks(list):
    """Gradio's list of event-processing tasks, minus the finished ones (pruned on each append)."""

    def append(self, task: Any) -> None:
        self[:] = [t for t in self if not t.done()]
        super().append(task)


def forget_run(demo: gr.Blocks, session_hash: str | None, run: int | None, tables: tuple = ()) -> None:
    """Drop a generator run's streaming entries (``run`` is ``id()`` of its iterator; None: none)
    in its session or, when the session is not known, in every session; empty sessions go too.
    ``tables``: Gradio's dicts to clean (default both)."""
    for table in tables or (demo.pending_diff_streams, demo.pending_streams):
        sessions = [session_hash] if session_hash in table else [] if run is None else list(table)
        for session in sessions:
            table[session].pop(run, None)
            if not table[session]:
                del table[session]


def forget_events(queue: Any, finished: deque[str], limit: int) -> None:
    """Drop the oldest ended events from ``queue.event_ids_to_events`` until ``limit`` remain in
    ``finished``; one whose completion its session's stream has not yet delivered (still in
    ``pending_event_ids_session``, where a closing session looks it up) waits for a later pass."""
    pending = set().union(*queue.pending_event_ids_session.values())
    waiting = []
    while len(finished) > limit:
        event_id = finished.popleft()
        if event_id in pending:
            waiting.append(event_id)
        else:
            queue.event_ids_to_events.pop(event_id, None)
    finished.extend(waiting)


def forget_sessions(state_holder: Any) -> None:
    """Drop last-used times of sessions Gradio no longer holds (evicted past its capacity); run
    per ended event, it prunes only once the times outnumber the sessions twice."""
    times, held = state_holder.time_last_used, state_holder.session_data
    if len(times) > 2 * max(len(held), 1):
        for session in [s for s in times if s not in held]:
            del times[session]


def forget_update_blocks(state_holder: Any, session_hash: str | None, layout: Mapping[int, Any]) -> None:
    """Drop from a session's block registry and its configs every id that is not one of the app's
    own blocks (``layout``, id → block): the copies that property updates left under their new ids."""
    state = None if session_hash is None else state_holder.session_data.get(session_hash)
    if state is None:
        return
    for table in (state.blocks_config.blocks, state.config_values):  # the copy, and its config with its value
        for block_id in [b for b in list(table) if b not in layout]:  # list(): handlers may add meanwhile
            table.pop(block_id, None)


def _forget_finished_runs(demo: gr.Blocks, limit: int) -> None:
    """Wrap the two places a run ends: its last item (``handle_streaming_outputs`` with ``final``)
    and the end of its event, however it ended (``Queue.reset_iterators``, which Gradio calls for
    every event, cancelled or not, while the iterator is still registered)."""
    queue = demo._queue
    reset, outputs = queue.reset_iterators, demo.handle_streaming_outputs
    finished: deque[str] = deque()  # ended events still in queue.event_ids_to_events, oldest first

    async def reset_iterators(event_id: str) -> None:
        app = queue.server_app
        iterator = None if app is None else app.iterators.get(event_id)  # held: its id stays unused
        try:
            await reset(event_id)
        finally:
            if app is not None and not isinstance(app.iterators_to_reset, RecentIds):
                app.iterators_to_reset = RecentIds(app.iterators_to_reset, limit)
            record = queue.event_analytics.get(event_id) or {}
            session = cast("str | None", record.get("session_hash"))
            forget_run(demo, session, None if iterator is None else id(iterator))
            finished.append(event_id)
            forget_events(queue, finished, min(limit, ENDED_EVENTS))
            if app is not None:
                forget_update_blocks(app.state_holder, session, demo.blocks)
                forget_sessions(app.state_holder)

    async def handle_streaming_outputs(
        block_fn: BlockFunction,
        data: list,
        session_hash: str | None,
        run: int | None,
        root_path: str | None = None,
        final: bool = False,
    ) -> list:
        data = await outputs(block_fn, data, session_hash=session_hash, run=run, root_path=root_path, final=final)
        if final and session_hash is not None and run is not None:  # Gradio drops the diff base right after
            forget_run(demo, session_hash, run, tables=(demo.pending_streams,))
        return data

    queue.reset_iterators = reset_iterators  # type: ignore[method-assign]  # wraps Gradio's own
    demo.handle_streaming_outputs = handle_streaming_outputs  # type: ignore[method-assign]  # wraps Gradio's own


def bound_queue_bookkeeping(demo: gr.Blocks, limit: int = MAX_EVENTS) -> None:
    """Bound Gradio's per-event records and ids, and drop each run's streaming entries when it ends
    (after ``demo.queue()``, which makes the queue)."""
    queue = demo._queue
    queue.event_analytics = RecentEvents(queue.event_analytics, limit)
    queue._asyncio_tasks = LiveTasks(queue._asyncio_tasks)
    _forget_finished_runs(demo, limit)
