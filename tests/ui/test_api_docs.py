"""The served app's API docs (``client.view_api()``) name every parameter and result of every named
endpoint: no ``param_<n>`` / ``value_<id>`` placeholders, no ``gr.api`` ordinals ("1st")."""

from __future__ import annotations

import re

import pytest

from conftest import serve_app

PLACEHOLDER = re.compile(r"^(param_\d+|value_\d+|parameter_\d+|\d+(st|nd|rd|th))$")
# A gr.Timer takes no label, so Gradio names it value_<id>: /compare's first frame starts the live
# timer that pulls the panes (the page's plumbing; a timer started apart from the run raced it).
UNLABELLABLE = {"Timer"}


@pytest.fixture(scope="module")
def api(tmp_path_factory, tiny_model_dir):
    from gradio_client import Client

    with serve_app(tmp_path_factory, tiny_model_dir) as app:
        client = Client(app.url, verbose=False)
        yield (
            client.view_api(return_format="dict", print_info=False),
            client.view_api(return_format="str", print_info=False),
        )


def test_every_named_endpoint_names_its_parameters_and_results(api):
    info, _ = api
    endpoints = info["named_endpoints"]
    assert {"/compare", "/explore", "/branch", "/train", "/benchmark", "/compare_trace"} <= set(endpoints)
    unnamed = [
        f"{name} {kind} {label!r}"
        for name, endpoint in endpoints.items()
        for kind, label in [("parameter", p["parameter_name"]) for p in endpoint["parameters"]]
        + [("result", r["label"]) for r in endpoint["returns"] if r["component"] not in UNLABELLABLE]
        if not label or PLACEHOLDER.match(label)
    ]
    assert not unnamed, unnamed


def test_the_printed_api_docs_read_as_names(api):
    info, text = api
    unlabellable = {
        r["label"] for e in info["named_endpoints"].values() for r in e["returns"] if r["component"] in UNLABELLABLE
    }
    named = re.sub("|".join(map(re.escape, unlabellable)) or "$^", "", text)
    assert not re.search(r"\b(param|value)_\d+\b", named), text
    # /compare's signature as a client prints it: the panes' results by name
    assert "a_token_grid" in text and "-> comparison" in text
    assert text.count("\n - predict(") == len(info["named_endpoints"])  # each endpoint printed
