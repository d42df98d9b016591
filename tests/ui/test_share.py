"""Compare's share links: every strategy round-trips in both panes, and junk in a query string is
ignored with a sentence saying why, never an exception and never a value ▶ Run would refuse."""

from __future__ import annotations

import warnings
from types import SimpleNamespace
from urllib.parse import parse_qsl

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.datastructures import QueryParams

from dllm_viz.strategies import StrategySpec
from dllm_viz.ui import allowed_models, picker
from dllm_viz.ui.pane import pane_values
from dllm_viz.ui.settings import CONTROLS, MAX_PROMPT_CHARS, PANE_FIELDS, PaneInputs, control_name, engine_config
from dllm_viz.ui.share import (
    PANES,
    SETTINGS,
    SharedRun,
    current_run,
    decode,
    encode,
    shareable_choices,
    strategy_name,
)
from dllm_viz.ui.share_events import open_shared, page_base, share_link

MODELS = {"built-in tiny-dllm", "GSAI-ML/LLaDA-8B-Instruct"}
SETTING_VALUES = dict(
    model="GSAI-ML/LLaDA-8B-Instruct",
    prompt="Tom has 3 apples & buys 4 more. How many? <b>",
    gen_length=96,
    block_length=32,
    full=False,
    temperature=0.35,
    seed=4_000_000_000,
)


def off_default(choice: str) -> StrategySpec:
    """The strategy ``choice`` with each control it uses away from its default (a spec ▶ Run accepts)."""
    spec = picker.strategy_spec(choice)
    params = {}
    for p in spec.info.params:
        if p.advanced:
            continue
        if p.optional:
            params[p.name] = 7
        elif p.high is not None:
            params[p.name] = round((p.low + p.high) / 3, 2)
        else:
            params[p.name] = p.default * 2 + 0.25
    return picker.pane_strategy(spec.key, params)


def roundtrip(run: SharedRun, default_model: str | None = None) -> SharedRun:
    return decode(parse_qsl(encode(run, default_model), keep_blank_values=True), MODELS)


@pytest.mark.parametrize("choice", sorted(shareable_choices()))
def test_every_strategy_round_trips_in_both_panes(choice):
    spec = off_default(choice)
    other = off_default(sorted(shareable_choices())[0])
    for panes in ({"a": spec, "b": other}, {"a": other, "b": spec}):
        run = SharedRun(dict(SETTING_VALUES), panes)
        back = roundtrip(run)
        assert back == run, encode(run)
        assert back.ignored == ()


@pytest.mark.parametrize("choice", sorted(shareable_choices()))
def test_the_page_controls_round_trip(choice):
    """What ⬈ Share reads from the page (pane_values of a spec) opens as the same controls."""
    spec = off_default(choice)
    inputs = PaneInputs.of((*pane_values(spec), None))
    run = current_run(SETTING_VALUES, {"a": inputs, "b": inputs}, MODELS)
    assert run.ignored == ()
    back = roundtrip(run)
    assert all(pane_values(back.panes[p]) == pane_values(spec) for p in PANES)


def test_a_link_is_short_and_readable():
    run = SharedRun(
        {"model": "built-in tiny-dllm", "prompt": "What is 2+2?", "gen_length": 64, "full": True, "block_length": 8},
        {"a": StrategySpec("policy", {"temperature": 0.5}, policy="semi-ar-entropy"), "b": StrategySpec("eb")},
    )
    query = encode(run, default_model="built-in tiny-dllm")
    assert query == (
        "prompt=What%20is%202%2B2%3F&gen_length=64&full=1&strategy_a=policy:semi-ar-entropy&tau_a=0.5&strategy_b=eb"
    )  # the default model and a block length under full diffusion are left out


def test_junk_values_are_ignored_with_a_reason():
    query = [
        ("gen_length", "1e9"),
        ("block_length", "abc"),
        ("full", "maybe"),
        ("temperature", "nan"),
        ("seed", "-1"),
        ("model", "/etc/passwd"),
        ("prompt", "x" * (MAX_PROMPT_CHARS + 1)),
        ("strategy_a", "<script>alert(1)</script>"),
        ("threshold_a", "0.5"),
        ("strategy_b", "threshold"),
        ("threshold_b", "7"),
        ("gamma_b", "0.1"),
        ("utm_source", "mail"),
        ("__theme", "dark"),
    ]
    run = decode(query, MODELS)
    assert run.settings == {} and run.panes == {"b": StrategySpec("threshold")}
    said = "\n".join(run.ignored)
    for key in ("gen_length", "block_length", "full", "temperature", "seed", "model", "prompt", "strategy_a"):
        assert f"{key}:" in said
    assert "threshold_a: ignored without a valid strategy_a" in said
    assert "threshold_b: λ (threshold) (7) must be between 0 and 1" in said
    assert "gamma_b: Fast-dLLM threshold λ has no such parameter" in said
    assert "utm_source" not in said and "__theme" not in said  # not ours: skipped quietly


def test_uploaded_or_server_policies_are_not_shared():
    run = decode([("strategy_a", picker.UPLOADED), ("strategy_b", "policy:/some/server/folder")], MODELS)
    assert run.panes == {} and len(run.ignored) == 2
    uploaded = PaneInputs.of((picker.UPLOADED, *(None for _ in CONTROLS), ["model.safetensors"]))
    trained = PaneInputs.of(("policy:trained-0123abcd", *(None for _ in CONTROLS), None))
    run = current_run({"prompt": "hi"}, {"a": uploaded, "b": trained}, MODELS)
    assert run.panes == {} and run.settings == {"prompt": "hi"}
    assert [n.split(" runs")[0] for n in run.ignored] == ["pane A", "pane B"]
    assert "strategy_a" not in encode(run)


def test_duplicates_and_incompatible_lengths_are_ignored():
    run = decode([("seed", "1"), ("seed", "2"), ("seed", "3"), ("gen_length", "64"), ("block_length", "7")], MODELS)
    assert run.settings == {"gen_length": 64}
    assert run.ignored == (
        "seed: given more than once",
        "block_length (7) must divide gen_length (64); e.g. 2, 4, 8, 16, 32, 64",
    )
    assert decode([("gen_length", "64"), ("block_length", "7"), ("full", "true")], MODELS).settings["block_length"] == 7


def test_parameters_keep_their_types():
    run = decode([("strategy_a", "confidence"), ("steps_a", "0"), ("strategy_b", "random"), ("steps_b", "8.0")], MODELS)
    assert run.panes["a"].params == {"steps": None}  # 0 is the box's "not set"
    assert run.panes["b"].params == {"steps": 8} and isinstance(run.panes["b"].params["steps"], int)
    assert decode([("strategy_a", "random"), ("steps_a", "2.5")], MODELS).panes["a"].params == {}


OUR_KEYS = [*SETTINGS, *(f"{k}_{p}" for p in PANES for k in ("strategy", *map(control_name, CONTROLS)))]
VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["0", "1", "-1", "1e309", "nan", "inf", "0x10", "8", "64", "true", " 3 ", "1_0", "\x00"]),
    st.sampled_from(sorted(shareable_choices()) + [picker.UPLOADED, "heuristic:policy", "policy:", "policy:a/b"]),
    st.floats(allow_nan=True).map(str),
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.one_of(st.sampled_from(OUR_KEYS), st.text(max_size=12)), VALUES), max_size=24))
def test_junk_queries_never_raise_and_yield_only_runnable_values(pairs):
    run = decode(pairs, MODELS)
    assert all(isinstance(note, str) and note for note in run.ignored)
    s = run.settings
    L = s.get("gen_length", s.get("block_length", 64))  # a lone length is checked against the page's other
    engine_config(L, s.get("block_length", L), s.get("full", False), s.get("temperature"), s.get("seed"))
    assert set(run.panes) <= set(PANES)
    assert all(strategy_name(spec) and spec.key in shareable_choices() for spec in run.panes.values())
    again = roundtrip(run)
    assert again.ignored == () and (again.settings, again.panes) == (run.settings, run.panes)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_raw_query_strings_never_raise(raw):
    decode(QueryParams(raw).multi_items(), MODELS)


def test_page_base():
    assert page_base("https://x.hf.space/?prompt=a#frag") == "https://x.hf.space/"
    assert page_base("http://127.0.0.1:7860/app/?__theme=dark") == "http://127.0.0.1:7860/app/"
    for junk in (None, 3, "javascript:alert(1)", "file:///etc/passwd", "https://" + "x" * 3000, "http://[::1"):
        assert page_base(junk) == ""


def test_share_link_and_open_shared_handlers():
    """⬈ Share's link, opened, sets the same controls; HTML in a bad value reaches the toast escaped."""
    spec = off_default("heuristic:eb")
    pane = (*pane_values(spec), None)
    settings_ = [SETTING_VALUES[k] for k in SETTINGS]
    settings_[0] = allowed_models.default_model()
    out = share_link(*settings_, *pane, *pane, "http://127.0.0.1:7860/?old=1")
    url = out["share_url"].value
    assert url.startswith("http://127.0.0.1:7860/?prompt=") and "model=" not in url and "old=" not in url
    request = SimpleNamespace(query_params=QueryParams(url.split("?", 1)[1]))
    opened = open_shared(request)
    assert opened["prompt"] == SETTING_VALUES["prompt"] and opened["seed"] == SETTING_VALUES["seed"]
    assert opened["caption"] == "" and opened["examples"] is None
    assert [opened[f"{f}_b"] for f in PANE_FIELDS[:-1]] == list(pane_values(spec))
    assert open_shared(SimpleNamespace(query_params=QueryParams(""))) == {}
    with warnings.catch_warnings(record=True) as caught:  # gr.Warning outside an event: a Python warning
        warnings.simplefilter("always")
        open_shared(SimpleNamespace(query_params=QueryParams("strategy_a=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")))
    message = " ".join(str(w.message) for w in caught)
    assert "strategy_a" in message and "&lt;img" in message and "<img" not in message
