"""■ Stop that reaches a run whenever it is pressed, without Gradio's cancel.

Gradio's cancel, driven by the page, fails two ways a hurried visitor hits (Run, Stop, Run):

* a Stop pressed before the page has heard its run's event id goes out with no id and is refused,
  so the run goes on, drawing into the page;
* a cancel stops *every* running event of that kind in the session, but tells the page that only
  the one it named has ended; the page then waits on the others forever and sends no more runs.

So the page numbers its runs itself. ▶ Run and ↳ Branch send a key ``"<page>:<n>"`` (:data:`RUN_JS`
counts ``n`` up in the browser, so the key is fixed at the click, before any round trip); ■ Stop
sends the next number (:data:`STOP_JS`). A run checks between steps, and while it waits for a
compute slot, whether its page has sent a later number since: a Stop ends it with a "stopped"
status; a newer Run or Branch ends it quietly (the newer one owns the status line now). Either way
the run ends as any run does, so Gradio's bookkeeping and the page agree. API callers send no key
and are stopped by gradio_client's cancel, as before.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import closing
from typing import Literal

MAX_PAGES = 10_000  # pages remembered (least recently heard from go first)
KEY = re.compile(r"^([A-Za-z0-9-]{1,64}):(\d{1,15})$")

# The page's id and counter live on ``window`` (one per tab); the counter only goes up.
_NEXT = (
    "window.dvPage = window.dvPage || (crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2)); "
    "window.dvRuns = (window.dvRuns || 0) + 1; const key = window.dvPage + ':' + window.dvRuns;"
)
RUN_JS = f"(...args) => {{ {_NEXT} args[args.length - 1] = key; return args; }}"  # the key is the last input
STOP_JS = f"(ignored) => {{ {_NEXT} return key; }}"  # for a Stop whose only input is the key

Ending = Literal["stopped", "superseded"] | None


class RunBoard:
    """The newest run and stop number each page has sent (bounded)."""

    def __init__(self, limit: int = MAX_PAGES):
        self.limit = limit
        self._pages: OrderedDict[str, tuple[int, int]] = OrderedDict()  # page -> (newest run, newest stop)
        self._lock = threading.Lock()

    def _note(self, key: object, stop: bool) -> tuple[str, int] | None:
        match = KEY.match(key) if isinstance(key, str) else None
        if match is None:  # no key (an API call) or not one the page makes: nothing to track
            return None
        page, number = match.group(1), int(match.group(2))
        with self._lock:
            run, stopped = self._pages.pop(page, (0, 0))
            self._pages[page] = (run, max(stopped, number)) if stop else (max(run, number), stopped)
            while len(self._pages) > self.limit:
                self._pages.popitem(last=False)
        return page, number

    def stop(self, key: object) -> None:
        """■ Stop: every run its page started before this ends."""
        self._note(key, stop=True)

    def start(self, key: object) -> Callable[[], Ending]:
        """A run starts: returns a check, ``None`` while it should go on, else why it should end."""
        noted = self._note(key, stop=False)
        if noted is None:
            return lambda: None
        page, number = noted

        def ending() -> Ending:
            run, stopped = self._pages.get(page, (number, 0))
            if run > number:
                return "superseded"
            return "stopped" if stopped > number else None

        return ending


BOARD = RunBoard()


def stop(key: object) -> None:
    """The ■ Stop handler (``js=STOP_JS`` supplies the key)."""
    BOARD.stop(key)


def current_only(updates: Iterator[dict], ending: Callable[[], Ending]) -> Iterator[dict]:
    """A run's updates until a newer run from its page has started: from then on its frames (even
    a first "decoding…" held up by a model load) would overwrite the newer run's, so it ends."""
    with closing(updates):  # type: ignore[type-var]  # generators have close()
        for update in updates:
            if ending() == "superseded":
                yield {}
                return
            yield update
