"""Handlers return updates keyed by name; a tab's :class:`Components` maps the names to its
components once, where the events are wired.

A handler returns ``{"status": "done", "slider": gr.Slider(value=3)}``; an output it leaves out
stays as it is (Gradio's ``gr.skip()``). Adding a plot is then one component registered under a
name and one key in the handlers that draw it, not an edit of every positional tuple. Handlers
stay plain functions of plain values, callable and testable without building the UI.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import gradio as gr

Updates = dict[str, Any]  # output name → value or gr.update(...)
C = TypeVar("C", bound=gr.components.Component)


class Components:
    """A tab's components by name, and events wired to handlers that return :data:`Updates`."""

    def __init__(self) -> None:
        self._by_name: dict[str, gr.components.Component] = {}

    def add(self, **components: gr.components.Component) -> None:
        """Register components under names (each name once)."""
        for name, component in components.items():
            if name in self._by_name:
                raise ValueError(f"component name {name!r} is registered twice")
            self._by_name[name] = component

    def __getitem__(self, name: str) -> gr.components.Component:
        return self._by_name[name]

    def get(self, name: str, kind: type[C]) -> C:
        """The component registered as ``name``, which must be a ``kind`` (for its events)."""
        component = self._by_name[name]
        if not isinstance(component, kind):
            raise TypeError(f"component {name!r} is a {type(component).__name__}, not a {kind.__name__}")
        return component

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def outputs(self, names: Iterable[str]) -> list[gr.components.Component]:
        return [self._by_name[n] for n in names]

    def keyed(self, fn: Callable, names: Iterable[str]) -> Callable:
        """``fn`` returning (or yielding) updates by name, as Gradio takes them: by component.

        The result keeps ``fn``'s signature (Gradio reads it for the API), is a generator function
        when ``fn`` is one, and closes ``fn``'s generator when it is closed (a cancel)."""
        names = tuple(names)
        allowed = set(names)
        by_name = self._by_name

        def convert(updates: Mapping[str, Any]) -> Any:
            unknown = sorted(set(updates) - allowed)
            if unknown:
                what = getattr(fn, "__name__", repr(fn))
                raise KeyError(f"{what} set {unknown}, which are not among its outputs {list(names)}")
            return {by_name[n]: v for n, v in updates.items()} or gr.skip()

        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def stream(*args: Any) -> Any:
                inner = fn(*args)
                try:
                    for updates in inner:
                        yield convert(updates)
                finally:
                    inner.close()

            return stream

        @functools.wraps(fn)
        def call(*args: Any) -> Any:
            return convert(fn(*args))

        return call

    def on(self, trigger: Callable, fn: Callable, inputs: Any, names: Iterable[str], **kwargs: Any) -> Any:
        """Wire ``trigger`` (``button.click``, ``timer.tick`` …) to ``fn`` with the outputs ``names``."""
        names = tuple(names)
        return trigger(self.keyed(fn, names), inputs, self.outputs(names), **kwargs)


def name_api_returns(demo: gr.Blocks, names: Mapping[str, str]) -> None:
    """Label the result of each ``gr.api`` endpoint in ``names`` (api_name → label): ``gr.api``
    numbers results ("1st"), which is all ``client.view_api()`` would show of them."""
    for fn in demo.fns.values():
        if isinstance(fn.api_name, str) and fn.api_name in names:
            for output in fn.outputs:
                if isinstance(output, gr.components.Component):
                    output.label = names[fn.api_name]
