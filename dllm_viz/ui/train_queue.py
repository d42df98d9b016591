"""One training at a time per server: a run waits for its turn with its position shown. No Gradio here."""

from __future__ import annotations

import threading


class TrainQueue:
    """One training at a time per server: the first ticket trains, the others wait in order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tickets: list[object] = []

    def join(self) -> object:
        ticket = object()
        with self._lock:
            self._tickets.append(ticket)
        return ticket

    def position(self, ticket: object) -> int:
        """0 when ``ticket`` may train, else how many are ahead of it."""
        with self._lock:
            return self._tickets.index(ticket)

    def leave(self, ticket: object) -> None:
        with self._lock:
            if ticket in self._tickets:
                self._tickets.remove(ticket)

    def __len__(self) -> int:
        with self._lock:
            return len(self._tickets)


QUEUE = TrainQueue()
