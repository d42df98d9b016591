"""Handlers return updates by name; Components turns them into Gradio's updates by component."""

from __future__ import annotations

import inspect

import gradio as gr
import pytest

from dllm_viz.ui.updates import Components


@pytest.fixture
def ui():
    with gr.Blocks():
        ui = Components()
        ui.add(status=gr.Textbox(), slider=gr.Slider(), other=gr.Number())
    return ui


def test_updates_by_name_become_updates_by_component(ui):
    def handler(k):
        """Doc."""
        return {"status": f"step {k}"}

    keyed = ui.keyed(handler, ("status", "slider"))
    assert keyed(3) == {ui["status"]: "step 3"}  # the slider, left out, stays as it is
    assert inspect.signature(keyed) == inspect.signature(handler) and keyed.__doc__ == "Doc."
    assert ui.keyed(lambda: {}, ("status", "slider"))() == gr.skip()
    with pytest.raises(KeyError, match="other"):
        ui.keyed(lambda: {"other": 1}, ("status",))()
    with pytest.raises(ValueError, match="twice"):
        ui.add(status=gr.Textbox())


def test_get_returns_a_component_as_its_class(ui):
    assert ui.get("slider", gr.Slider) is ui["slider"]
    with pytest.raises(TypeError, match="'slider' is a Slider, not a Button"):
        ui.get("slider", gr.Button)


def test_a_streaming_handler_stays_a_generator_and_is_closed_with_it(ui):
    closed = []

    def stream():
        try:
            yield {"status": "a"}
            yield {"status": "b"}
        finally:
            closed.append(True)

    keyed = ui.keyed(stream, ("status",))
    assert inspect.isgeneratorfunction(keyed)
    gen = keyed()
    assert next(gen) == {ui["status"]: "a"}
    gen.close()  # a cancel
    assert closed == [True]
