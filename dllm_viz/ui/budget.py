"""One compute budget for the whole app, and cancellation that really stops the work.

Gradio's queue (``concurrency_id="model"``) limits how many model events it admits, but it frees
a slot the moment a client cancels, while a worker thread may still be computing: a plain
function keeps running to its end, invisibly. So:

* every compute path (the lockstep run, the benchmark sweep, export rendering) also holds a
  :func:`compute_slot` while it computes, released only when the work has really stopped;
* every long handler is a generator that yields at least every few hundred milliseconds
  (Gradio closes a cancelled generator at its next yield), and work that cannot yield runs in a
  :class:`BackgroundJob` whose backend checks a cancel event before every forward pass.

No Gradio here.
"""

from __future__ import annotations

import os
import threading

MODEL_CONCURRENCY = int(os.environ.get("DLLM_VIZ_CONCURRENCY", "2"))  # compute jobs at once
SLOT_WAIT_S = 120  # a job that waits longer than this for a slot gives up with a message

_SLOTS = threading.BoundedSemaphore(MODEL_CONCURRENCY)


class Busy(RuntimeError):
    """No compute slot came free in time; the message says so."""


class Cancelled(Exception):
    """The client cancelled; raised inside the work to unwind it."""


class compute_slot:
    """Hold one of the ``MODEL_CONCURRENCY`` compute slots (a context manager)."""

    def __enter__(self):
        if not _SLOTS.acquire(timeout=SLOT_WAIT_S):
            raise Busy(f"the server is busy (all {MODEL_CONCURRENCY} compute slots in use); try again in a minute")
        return self

    def __exit__(self, *exc) -> None:
        _SLOTS.release()


class CancellableBackend:
    """A backend that raises :class:`Cancelled` before a forward pass once ``cancel`` is set.

    Sweeps call the engine many times without returning to us; this stops them within one step.
    """

    def __init__(self, backend, cancel: threading.Event):
        self._backend, self._cancel = backend, cancel

    def __getattr__(self, name):
        return getattr(self._backend, name)

    def logits(self, *args, **kwargs):
        if self._cancel.is_set():
            raise Cancelled()
        return self._backend.logits(*args, **kwargs)


class BackgroundJob:
    """``fn(cancel, *args)`` in a worker thread that holds a compute slot while it runs.

    The handler polls :meth:`wait` and yields between polls; when Gradio closes the handler
    (cancel), its ``finally`` calls :meth:`cancel`, and the worker stops at its next forward pass.
    """

    def __init__(self, fn, *args, **kwargs):
        self.cancel_event = threading.Event()
        self._result = self._error = None
        self._thread = threading.Thread(target=self._run, args=(fn, args, kwargs), name="compute-job", daemon=True)
        self._thread.start()

    def _run(self, fn, args, kwargs) -> None:
        try:
            with compute_slot():
                if self.cancel_event.is_set():
                    raise Cancelled()
                self._result = fn(self.cancel_event, *args, **kwargs)
        except BaseException as err:  # handed to the caller by result()
            self._error = err

    def wait(self, timeout: float) -> bool:
        """True once the job has ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def result(self):
        """The function's return value, or its exception re-raised."""
        if self._error is not None:
            raise self._error
        return self._result

    def cancel(self) -> None:
        self.cancel_event.set()
