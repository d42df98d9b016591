"""One compute budget for the whole app, and cancellation that really stops the work.

Gradio's queue (``concurrency_id="model"``) limits how many model events it admits, but it frees
a place the moment a client cancels, while a worker thread may still be computing, and it closes
a cancelled generator only if that generator has already yielded once (Gradio registers the
iterator after its first yield). So:

* every compute path holds a :class:`Lease` on one of ``MODEL_CONCURRENCY`` slots while it
  computes; leases are taken and released only here;
* a handler yields once *before* it takes a slot or starts a job, so any cancel closes it;
* a generator holds its slot through :func:`hold_slot`, which marks the lease busy while a step
  runs and touches it after each; work that cannot yield runs in a :class:`BackgroundJob` whose
  backend checks a stop signal before every forward pass;
* a waiter that finds every slot taken reclaims leases whose owner is gone: a job thread that
  died, or a generator nobody has stepped for ``STALE_S`` (abandoned without being closed). It
  also runs the garbage collector once, which closes (and so releases) unreachable generators.

No Gradio here.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast

if TYPE_CHECKING:
    import torch

    from ..backends import DLLM

logger = logging.getLogger(__name__)
Y = TypeVar("Y")
R = TypeVar("R")

MODEL_CONCURRENCY = int(os.environ.get("DLLM_VIZ_CONCURRENCY", "2"))  # compute jobs at once
SLOT_WAIT_S = 120  # a job that waits longer than this for a slot gives up with a message
STALE_S = 60.0  # a generator's lease not stepped for this long (and not mid-step) is abandoned
ORPHAN_S = 30.0  # a background job whose handler stopped polling this long stops itself

_LOCK = threading.Condition()
_LEASES: set[Lease] = set()


class Busy(RuntimeError):
    """No compute slot came free in time; the message says so."""


class Cancelled(Exception):
    """The client cancelled; raised inside the work to unwind it."""


@dataclass(eq=False)
class Lease:
    """One held compute slot.

    Attributes:
        owner: what holds it, for the log. thread: a background job's worker (the lease dies
        with it), else None. busy: a step is running now (a long model load is not staleness).
        touched: ``time.monotonic()`` of the last step.
    """

    owner: str
    thread: threading.Thread | None = None
    busy: bool = False
    touched: float = field(default_factory=time.monotonic)

    def stale(self, now: float) -> bool:
        if self.thread is not None:
            return not self.thread.is_alive()
        return not self.busy and now - self.touched > STALE_S

    def release(self) -> None:
        """Give the slot back; a no-op when it was already released or reclaimed."""
        with _LOCK:
            if self in _LEASES:
                _LEASES.discard(self)
                _LOCK.notify()


def held() -> int:
    """Slots held now (for tests and the log)."""
    with _LOCK:
        return len(_LEASES)


def _reclaim(now: float) -> None:
    for lease in [lease for lease in _LEASES if lease.stale(now)]:
        logger.warning("reclaiming the compute slot of %s: its job is gone", lease.owner)
        _LEASES.discard(lease)


def acquire(
    owner: str,
    thread: threading.Thread | None = None,
    wait_s: float = SLOT_WAIT_S,
    stop: Callable[[], object] | None = None,
) -> Lease:
    """A lease on a free slot, waiting up to ``wait_s`` (then :class:`Busy`); :class:`Cancelled` as soon
    as ``stop()`` is true (a Stop pressed while the run waits)."""
    deadline = time.monotonic() + wait_s
    collect_at = time.monotonic() + 1.0  # a short wait is normal; a longer one may be a leak
    while True:
        if stop is not None and stop():
            raise Cancelled()
        with _LOCK:
            _reclaim(time.monotonic())
            if len(_LEASES) < MODEL_CONCURRENCY:
                lease = Lease(owner, thread)
                _LEASES.add(lease)
                return lease
            left = deadline - time.monotonic()
            if left <= 0:
                raise Busy(f"the server is busy (all {MODEL_CONCURRENCY} compute slots in use); try again in a minute")
            _LOCK.wait(min(left, max(collect_at - time.monotonic(), 0.05), 1.0))
        if time.monotonic() >= collect_at:  # outside the lock: finalizers release leases
            gc.collect()
            collect_at = time.monotonic() + 10.0


@contextmanager
def compute_slot(owner: str = "a computation") -> Iterator[Lease]:
    """Hold a slot for a block of plain (non-generator) code; busy throughout."""
    lease = acquire(owner)
    lease.busy = True
    try:
        yield lease
    finally:
        lease.release()


def hold_slot(
    steps: Generator[Y, Any, R], owner: str, stop: Callable[[], object] | None = None
) -> Generator[Y, None, R]:
    """Iterate the generator ``steps`` while holding a slot, taken at the first ``next()``.

    Closing this generator (Gradio's cancel, a client gone) closes ``steps`` and releases the
    slot; the lease is busy while ``steps`` computes and touched after every step. ``stop``: see
    :func:`acquire` (the caller checks it between steps).
    """
    lease = acquire(owner, stop=stop)
    try:
        while True:
            lease.busy = True
            try:
                item = next(steps)
            except StopIteration as done:
                return done.value
            finally:
                lease.busy, lease.touched = False, time.monotonic()
            yield item
    finally:
        steps.close()
        lease.release()


class StopSignal:
    """Set by :meth:`BackgroundJob.cancel`, or by itself once the handler has not polled for
    ``ORPHAN_S`` (its generator was dropped without being closed). Quacks like an Event."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.polled = time.monotonic()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set() or time.monotonic() - self.polled > ORPHAN_S


class Signal(Protocol):
    """What a stop check needs: :class:`StopSignal`, a ``threading.Event``."""

    def is_set(self) -> bool: ...


class CancellableBackend:
    """A backend that raises :class:`Cancelled` before a forward pass once ``cancel`` is set.

    Sweeps call the engine many times without returning to us; this stops them within one step.
    """

    def __init__(self, backend: DLLM, cancel: Signal) -> None:
        self._backend, self._cancel = backend, cancel

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def logits(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self._cancel.is_set():
            raise Cancelled()
        return self._backend.logits(*args, **kwargs)


class BackgroundJob(Generic[R]):
    """``fn(cancel, *args)`` in a worker thread that holds a compute slot while it runs.

    The handler polls :meth:`wait` and yields between polls; when Gradio closes the handler
    (cancel, disconnect), its ``finally`` calls :meth:`cancel`, and the worker stops at its next
    forward pass; a handler that stops polling without closing stops it too (:class:`StopSignal`).
    """

    def __init__(self, fn: Callable[..., R], *args: Any, owner: str = "a background job", **kwargs: Any) -> None:
        self.cancel_event = StopSignal()
        self._result: R | None = None
        self._error: BaseException | None = None
        self._owner = owner
        self._thread = threading.Thread(target=self._run, args=(fn, args, kwargs), name="compute-job", daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        lease = None
        try:
            lease = acquire(self._owner, thread=threading.current_thread())
            if self.cancel_event.is_set():
                raise Cancelled()
            self._result = fn(self.cancel_event, *args, **kwargs)
        except BaseException as err:  # handed to the caller by result()
            self._error = err
        finally:
            if lease is not None:
                lease.release()

    def wait(self, timeout: float) -> bool:
        """True once the job has ended."""
        self.cancel_event.polled = time.monotonic()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def result(self) -> R:
        """The function's return value, or its exception re-raised."""
        if self._error is not None:
            raise self._error
        return cast(R, self._result)

    def cancel(self) -> None:
        self.cancel_event.set()
