"""The served app end to end: ``python app.py`` on 127.0.0.1, driven by gradio_client and by
Playwright with Debian's chromium (``apt-get install chromium``; never ``playwright install``).

Set ``DLLM_VIZ_SCREENSHOT=1`` to also refresh docs/screenshot.png and docs/screenshots/ (initial
page, finished run and Benchmark tab at 1024 and 1440 px) from the browser tests.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dllm_viz.strategies import REGISTRY
from dllm_viz.trace import Trace
from dllm_viz.ui import picker, runtime
from dllm_viz.ui.examples import example_problems
from dllm_viz.ui.session import FORMAT, MAX_UPLOAD_BYTES, load_comparison
from dllm_viz.ui.stories import default_story

from conftest import chromium_page, serve_app

ROOT = Path(__file__).resolve().parents[2]
PROBLEM = example_problems()[0]  # the first held-out example the app lists
EXAMPLE = PROBLEM.question
HEUR = [0, 0.9, 1.0, 0.01, 1.0, 1.0, None]  # a heuristic pane's controls after the picker (/compare, /explore)


@pytest.fixture(scope="module")
def allowed_models(tmp_path_factory):
    """A folder the served app allows models from (``--allow-model-dir``), for test-made models."""
    return tmp_path_factory.mktemp("allowed-models")


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model_dir, allowed_models):
    """``python app.py`` in a subprocess: ``$DLLM_VIZ_MODEL`` if set, else the built-in model when
    installed, else a tiny random one; models in ``allowed_models`` may be picked too."""
    with serve_app(tmp_path_factory, tiny_model_dir, DLLM_VIZ_ALLOW_MODEL_DIRS=str(allowed_models)) as app:
        yield app.url


# ---- gradio_client ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(server, tmp_path_factory):
    from gradio_client import Client

    return Client(server, verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")))


def test_named_endpoints(client):
    names = set(client.view_api(return_format="dict", print_info=False)["named_endpoints"])
    assert {"/compare", "/compare_trace", "/replay", "/load_trace", "/export", "/benchmark"} <= names


def test_client_compare_trace_returns_valid_traces(client):
    out = client.predict(
        EXAMPLE,
        "heuristic:confidence",
        "heuristic:threshold",
        None,
        {"threshold": 0.7},
        32,
        8,
        0.0,
        1,
        api_name="/compare_trace",
    )
    assert out["format"] == FORMAT and out["expected"] == PROBLEM.expected
    a, b = Trace.from_dict(out["a"]), Trace.from_dict(out["b"])
    for trace in (a, b):
        assert trace.gen_length == 32 and trace.block_length == 8 and trace.engine["seed"] == 1
        assert sorted(p for s in trace.steps for p in s.committed) == list(range(32))
    assert b.strategy == {"name": "threshold", "threshold": 0.7}


def test_client_compare_endpoint_then_export(client):
    heur = [0, 0.9, 1.0, 0.01, 1.0, 1.0, None]
    final = client.predict(
        "",
        EXAMPLE,
        16,
        4,
        False,
        0.0,
        0,
        "heuristic:margin",
        *heur,
        "heuristic:eb",
        *heur,
        "full speed",
        api_name="/compare",
    )
    status = final[7]
    assert status.startswith("done") and re.search(r"#\w{6}$", status)
    json_btn, gif_btn = client.predict(api_name="/export")  # same session: exports that run
    path = json_btn["value"] if isinstance(json_btn, dict) else json_btn
    comp = load_comparison(path)
    assert comp.a.strategy["name"] == "margin" and comp.b.strategy["name"] == "eb"


def test_client_gets_specific_errors(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="block length \\(8\\) must divide gen length \\(20\\)"):
        client.predict(EXAMPLE, gen_length=20, block_length=8, api_name="/compare_trace")
    # and the app keeps serving
    assert client.predict("one plus two", gen_length=8, block_length=8, api_name="/compare_trace")["a"]


def test_shipped_policy_runs_through_the_client(client):
    """F4: a trace's policy source was recorded as "path", which gradio_client took for a file
    and tried to download (403)."""
    comp = client.predict(
        EXAMPLE,
        "policy:semi-ar-alpha1",
        "heuristic:threshold",
        gen_length=16,
        block_length=8,
        api_name="/compare_trace",
    )
    assert comp["a"]["strategy"]["policy_source"] == "semi-ar-alpha1"
    tree = client.predict(
        prompt=EXAMPLE,
        step=1,
        run_strategy="policy:semi-ar-alpha1",
        strategy="policy:semi-ar-alpha1",
        gen_length=16,
        block_length=8,
        api_name="/branch",
    )
    assert [n["trace"]["strategy"]["policy_source"] for n in tree["nodes"]] == ["semi-ar-alpha1"] * 2


def test_no_response_names_a_server_path(client, server):
    """F7: traces, trees, API defaults and the model picker carried the checkout's absolute path."""
    import urllib.request

    outputs = [
        client.view_api(return_format="dict", print_info=False),
        urllib.request.urlopen(server + "config").read().decode(),
        client.predict(EXAMPLE, gen_length=16, block_length=8, api_name="/compare_trace"),
        client.predict(prompt=EXAMPLE, step=1, gen_length=16, block_length=8, api_name="/branch"),
        client.predict(
            "",
            EXAMPLE,
            16,
            8,
            False,
            0.0,
            0,
            "heuristic:confidence",
            *HEUR,
            "heuristic:threshold",
            *HEUR,
            "full speed",
            api_name="/compare",
        ),
        client.predict("", EXAMPLE, 16, 8, False, 0.0, 0, "heuristic:confidence", *HEUR, api_name="/explore"),
        client.predict(
            "", ["heuristic:threshold"], False, ["semi-AR (BL = L/8)"], [1], 2, 16, 1, "1", "1", api_name="/benchmark"
        )[1:3],
    ]
    for out in outputs:
        text = out if isinstance(out, str) else json.dumps(out, default=str)
        assert str(ROOT) not in text, text[max(0, text.find(str(ROOT)) - 200) :][:400]
    assert client.view_api(return_format="dict", print_info=False)  # still serving


XSS = "<img src=x onerror=alert(1)>"
_odd = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 10**6), st.floats(allow_nan=True), st.text(max_size=12), st.just(XSS)
)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(
    families=st.one_of(
        st.lists(st.sampled_from(["heuristic:threshold", "heuristic:confidence", XSS, "policy:../x"]), max_size=600),
        _odd,
    ),
    settings_=st.one_of(st.lists(st.sampled_from(["semi-AR (BL = L/8)", XSS]), max_size=3), _odd),
    levels=st.one_of(st.lists(st.sampled_from([1, 2, 3, 7, "1", XSS]), max_size=1000), _odd),
    n=st.one_of(st.integers(-2, 3), _odd),
    gen_length=st.one_of(st.sampled_from([8, 16, 12, 10**9]), _odd),
    seeds=st.one_of(st.integers(0, 6), _odd),
    taus=st.one_of(st.sampled_from(["1.0", "0.5, 0.5", "1e30", "x", ""]), _odd),
    grid=st.one_of(st.booleans(), _odd),
)
def test_benchmark_arguments_get_only_our_own_escaped_errors(
    client, families, settings_, levels, n, gen_length, seeds, taus, grid
):
    """F3, F5, F6: any value either runs (only small runs can be valid here) or fails with our
    own message, escaped; never Gradio's unescaped choice error or its generic one."""
    from gradio_client.exceptions import AppError

    args = [families, grid, settings_, levels, n, gen_length, seeds, taus, "1.0"]
    try:
        client.predict("", *args, api_name="/benchmark")
    except AppError as err:
        message = str(err)
        assert "Cannot run the benchmark" in message, message
        assert "<" not in message and ">" not in message, message


# A JSON body cannot carry NaN or ±Infinity: a client sends them as text
_odd_number = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["nan", "inf", "-1e309", "", "12abc", XSS]),
    st.lists(st.integers(0, 9), max_size=2),
    st.dictionaries(st.just("value"), st.integers(0, 9), max_size=1),
)
# /compare: the settings row (model, prompt, L, BL, full, token temperature, seed), pane A, pane B, speed
_COMPARE = [
    "",
    EXAMPLE,
    16,
    8,
    False,
    0.0,
    0,
    "heuristic:threshold",
    *HEUR,
    "heuristic:confidence",
    *HEUR,
    "full speed",
]


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(
    endpoint=st.sampled_from(["/compare", "/explore"]),
    index=st.sampled_from([2, 3, 4, 5, 6, *range(8, 14)]),
    value=_odd_number,
)
def test_compare_and_explore_numbers_get_only_our_own_escaped_errors(client, endpoint, index, value):
    """Every number of /compare and /explore (settings and a pane's controls) either runs or fails
    with our own message, escaped and bounded; never Gradio's generic "upstream" error or its
    "Value … is less than minimum value" (which names no argument). Refused runs once left their
    streamed outputs behind in Gradio, keyed by a dead iterator's id: a later run reusing the id
    streamed against them (an IndexError, reported as the generic error, or diffs the client could
    not apply)."""
    from gradio_client.exceptions import AppError

    args = list(_COMPARE if endpoint == "/compare" else _COMPARE[:15])
    args[index] = value
    try:
        client.predict(*args, api_name=endpoint)
    except AppError as err:
        _assert_ours(str(err), "Cannot start the", "The comparison failed", "The decode failed")


def _assert_ours(message: str, *prefixes: str) -> None:
    assert message.startswith(prefixes), message
    assert "<" not in message and ">" not in message and len(message) <= 400, message


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(value=_odd_number)
def test_replay_steps_get_only_our_own_escaped_errors(client, value):
    """/replay's step (after a run in this session): shown, or our message; never Gradio's slider
    checks (generic for a non-number, "Value -5 is less than minimum value 0" otherwise)."""
    from gradio_client.exceptions import AppError

    try:
        client.predict(value, api_name="/replay")
    except AppError as err:
        _assert_ours(str(err), "Cannot show that step: step")


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(value=st.one_of(_odd_number, st.text(max_size=20), st.just({"path": "assets/tiny-dllm/config.json"})))
def test_load_trace_arguments_get_only_our_own_escaped_errors(client, value):
    """/load_trace with anything but an uploaded file: our message naming the upload (Gradio's data
    model check runs before any handler and answered with its generic error)."""
    from gradio_client.exceptions import AppError

    try:
        client.predict(value, api_name="/load_trace")
    except AppError as err:
        _assert_ours(str(err), "Replay a trace file (no model needed): send an uploaded file", "Cannot load")


def test_benchmark_refuses_duplicates_and_oversized_sweeps(client):
    from gradio_client.exceptions import AppError

    many = ["heuristic:threshold"] * 500
    with pytest.raises(AppError, match="the limit is 1,000,000"):
        client.predict(
            "",
            ["heuristic:confidence"],
            True,
            ["semi-AR (BL = L/8)"],
            [1, 2, 3],
            200,
            512,
            5,
            "1",
            "1",
            api_name="/benchmark",
        )
    # duplicates count once: 500 × the same strategy at 1000 × the same level is one small sweep
    plot, table, md, csv = client.predict(
        "", many, False, ["semi-AR (BL = L/8)"], [1] * 1000, 2, 16, 1, "1", "1", api_name="/benchmark"
    )
    assert len(table["data"]) == 1 and table["data"][0][4] == 2


# ---- browser ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def page(server):
    with chromium_page() as page:
        page.goto(server)  # never wait for "networkidle": the SSE stream keeps the network busy
        page.wait_for_selector("#run-btn")
        yield page


def _status(page):
    return page.locator("#status textarea")


def _use_example(page, question):
    """Pick a held-out problem in the Compare tab's example picker."""
    page.locator("#examples input").click()
    page.locator("#examples").get_by_role("option", name=question, exact=True).click()


def _open_settings(page):
    """Open Compare's settings box (model, L, BL, full diffusion, seed, live speed) if it is closed."""
    if not page.locator("#gen-length").is_visible():
        page.locator("#settings .label-wrap").first.click()
        page.locator("#gen-length").wait_for(state="visible")


def _run_and_wait(page, expect):
    before = _status(page).input_value()
    page.click("#run-btn")
    expect(_status(page)).not_to_have_value(before)
    expect(_status(page)).to_have_value(re.compile(r"^done · .* #\w{6}$"))


@pytest.mark.browser
def test_browser_compare_replay_download(page, tmp_path):
    from playwright.sync_api import expect

    _use_example(page, EXAMPLE)
    expect(page.locator("#prompt textarea")).to_have_value(EXAMPLE)
    _run_and_wait(page, expect)
    # a learned-policy pane adds the unmask-probability heatmap under the confidence one
    story = default_story()  # the panes open on the first curated story, else on the default strategies
    pane_a, pane_b = (story.a, story.b) if story else picker.default_strategies()
    layers = {"a": 2 if pane_a.name == "policy" else 1, "b": 2 if pane_b.name == "policy" else 1}
    for p in ("a", "b"):
        grid = page.locator(f"#grid-{p} .dv-grid")
        expect(grid).to_have_attribute("data-masked", "0")
        assert int(grid.get_attribute("data-committed")) > 0
        assert grid.locator(".dv-committed").count() == int(grid.get_attribute("data-committed"))
        nfe = page.locator(f"#stats-{p} .dv-stats")
        assert int(nfe.get_attribute("data-nfe")) >= 1
        expect(page.locator(f"#stats-{p}")).to_contain_text("NFE")
        expect(page.locator(f"#heat-{p} .js-plotly-plot")).to_be_visible()
        expect(page.locator(f"#heat-{p} .heatmaplayer")).to_have_count(layers[p])
    last = page.locator("#grid-a .dv-grid").get_attribute("data-step")
    assert int(last) >= 1

    # scrub: keyboard on the range fires .input → replay (Home = step 0, then one step right)
    slider = page.locator("#step-slider input[type=range]")
    slider.focus()
    slider.press("Home")
    expect(page.locator("#grid-a .dv-grid")).to_have_attribute("data-step", "0")
    expect(page.locator("#grid-b .dv-grid")).to_have_attribute("data-step", "0")
    assert page.locator("#grid-a .dv-blank").count() > 0
    slider.press("ArrowRight")
    expect(page.locator("#grid-a .dv-grid")).to_have_attribute("data-step", "1")
    expect(page.locator("#grid-a .dv-new")).not_to_have_count(0)

    # downloads: enabled once the export after the run is written
    expect(page.locator("#dl-json")).to_be_enabled()
    with page.expect_download() as download:
        page.click("#dl-json")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    data = json.loads(saved.read_text())
    assert data["format"] == FORMAT and Trace.from_dict(data["a"]).num_steps >= 1
    expect(page.locator("#dl-gif")).to_be_enabled()
    with page.expect_download() as download:
        page.click("#dl-gif")
    gif = tmp_path / "run.gif"
    download.value.save_as(gif)
    from PIL import Image

    with Image.open(gif) as img:
        assert img.n_frames >= 2

    slider.press("End")
    expect(page.locator("#grid-a .dv-grid")).to_have_attribute("data-step", last)
    # the picture shows a step in the middle: committed, new and still-masked tokens at once
    middle = str(max(1, int(last) // 3))
    number = page.locator("#step-slider input[type=number]")
    number.fill(middle)
    number.press("Tab")  # blur fires .release → replay
    expect(page.locator("#grid-a .dv-grid")).to_have_attribute("data-step", middle)
    # step-through: the buttons and the arrow keys (outside any input) move one step
    page.click("#next-step")
    expect(page.locator("#grid-a .dv-grid")).to_have_attribute("data-step", str(int(middle) + 1))
    page.locator("h1").first.click()
    page.keyboard.press("ArrowLeft")
    expect(page.locator("#grid-a .dv-grid")).to_have_attribute("data-step", middle)
    expect(page.locator("#step-slider input[type=number]")).to_have_value(middle)
    page.wait_for_timeout(1000)  # let the heatmaps repaint before the picture
    page.screenshot(path=str(tmp_path / "screenshot.png"), full_page=True)
    if os.environ.get("DLLM_VIZ_SCREENSHOT") == "1":
        page.screenshot(path=str(ROOT / "docs" / "screenshot.png"), full_page=True)

    # replay an uploaded trace without running anything: it brings back its prompt and strategies
    pickers = {p: page.locator(f"#strategy-{p} input").input_value() for p in "ab"}
    page.locator("#prompt textarea").fill("something else")
    _pick(page, "b", "Random-K")
    _upload(page, saved)
    expect(_status(page)).to_have_value(re.compile(r"^loaded trace"))
    expect(page.locator("#grid-a .dv-grid")).to_have_attribute("data-masked", "0")
    expect(page.locator("#prompt textarea")).to_have_value(EXAMPLE)
    for p, value in pickers.items():
        expect(page.locator(f"#strategy-{p} input")).to_have_value(value)


def _upload(page, path, elem="trace-upload"):
    """Clear what the upload box holds (an earlier file), then upload ``path`` (one or a list)."""
    clear = page.locator(f"#{elem} button[aria-label='Clear']")
    if clear.count():
        clear.first.click()
    page.locator(f"#{elem} input[type=file]").set_input_files(
        [str(p) for p in path] if isinstance(path, list) else str(path)
    )


def _toast(page, text):
    from playwright.sync_api import expect

    toast = page.locator('[data-testid="toast-body"]').filter(has_text=text)
    expect(toast.first).to_be_visible()
    page.locator('[data-testid="toast-close"]').first.click()


@pytest.mark.browser
def test_browser_bad_input_shows_message_and_app_keeps_serving(page, tmp_path):
    from playwright.sync_api import expect

    page.locator("#prompt textarea").fill("   ")
    page.click("#run-btn")
    _toast(page, "the prompt is empty")

    page.locator("#prompt textarea").fill(EXAMPLE)
    _open_settings(page)
    if page.locator("#full-diffusion input").is_checked():  # the default story may open in full diffusion
        page.locator("#full-diffusion input").uncheck()
    page.locator("#block-length input").fill("8")
    page.locator("#gen-length input").fill("60")
    page.click("#run-btn")
    _toast(page, "block length (8) must divide gen length (60)")
    page.locator("#gen-length input").fill("32")

    bad = tmp_path / "broken.json"
    bad.write_text('{"version": 1, "steps": ')
    _upload(page, bad)
    _toast(page, "not valid JSON")

    huge = tmp_path / "huge.json"
    with open(huge, "wb") as fh:
        fh.truncate(MAX_UPLOAD_BYTES + 1)
    _upload(page, huge)
    _toast(page, "exceed the maximum allowed size")

    # a policy "checkpoint" that is not safetensors, uploaded for pane A
    page.locator("#strategy-a input").click()
    page.get_by_role("option", name="learned policy: upload your own").click()
    fake = tmp_path / "model.safetensors"
    fake.write_bytes(b"\x80\x04\x95 a pickle, not safetensors" * 8)
    page.locator("#policy-a input[type=file]").set_input_files(str(fake))
    _toast(page, "not a safetensors file")
    page.locator("#strategy-a input").click()
    page.get_by_role("option", name="High-Confidence-K (LLaDA low_confidence)").click()

    _run_and_wait(page, expect)  # still serving
    expect(page.locator("#grid-a .dv-grid")).to_have_attribute("data-masked", "0")


@pytest.mark.browser
def test_browser_toast_shows_html_in_a_trace_as_text(page, tmp_path):
    """Issue 11 D2: a trace's ``version`` once rendered a live link, form and password field."""
    from playwright.sync_api import expect

    payload = (
        '<a id="evil" href="https://evil.example/">Session expired - click to sign in</a>'
        '<form id="evil-form"><input name="pw" type="password"></form>'
    )
    bad = tmp_path / "evil.json"
    bad.write_text(json.dumps({"version": payload, "steps": []}))
    _upload(page, bad)
    toast = page.locator('[data-testid="toast-body"]').filter(has_text="unsupported trace schema version")
    expect(toast.first).to_contain_text('<a id="evil"')  # shown as text
    assert page.locator("#evil, #evil-form, input[type=password]").count() == 0
    page.locator('[data-testid="toast-close"]').first.click()


# ---- every control, a clean console, streaming, screenshots ---------------------------------------

SHOTS = ROOT / "docs" / "screenshots"
WIDTHS = (1024, 1440)


def _pick(page, pane, label):
    page.locator(f"#strategy-{pane} input").click()
    page.locator(f"#strategy-{pane}").get_by_role("option", name=label, exact=True).click()


def _fill(page, selector, value):
    box = page.locator(selector)
    box.fill(str(value))
    box.press("Tab")  # blur commits a gr.Number / gr.Slider number box


# control → (selector of its input, a non-default value, how the value shows in the pane label)
_CONTROLS = {
    "steps": ("input", 4, "steps=4"),
    "threshold": ("input[type=number]", 0.55, "threshold=0.55"),
    "factor": ("input", 2.5, "factor=2.5"),
    "gamma": ("input", 0.3, "gamma=0.3"),
    "tau": ("input[type=number]", 0.7, "temperature=0.7"),
    "beta": ("input[type=number]", 1.5, "beta=1.5"),
}


def _controls_of(choice):
    from dllm_viz.ui.pane import shown_params

    names = ["steps", "threshold", "factor", "gamma", "tau", "beta", "policy"]
    return [n for n, shown in zip(names, shown_params(choice), strict=True) if shown is True]


def _console_errors(page):
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


@pytest.fixture(scope="module")
def errors(page):
    return _console_errors(page)


@pytest.mark.browser
def test_browser_every_strategy_shows_its_controls_and_they_change_the_run(page, errors, tmp_path):
    """Each strategy in each pane, picked after another one: its controls show and reach the run."""
    from playwright.sync_api import expect

    choices = picker.strategy_choices()
    policy = runtime.policy_dir() / picker.DEFAULT_POLICY
    page.locator("#prompt textarea").fill(EXAMPLE)
    _open_settings(page)
    page.get_by_label("full diffusion").uncheck()  # the page may open on a full-diffusion story (BL = L, locked)
    page.locator("#gen-length input").fill("16")
    page.locator("#block-length input").fill("8")
    page.get_by_label("full speed").check()
    n = len(choices)
    for i in range(n):
        expected = {}
        for pane, (label, choice) in (("a", choices[i]), ("b", choices[(i + n // 2) % n])):
            _pick(page, pane, next(other for other, c in choices if c != choice))
            _pick(page, pane, label)
            shown = _controls_of(choice)
            for name in ("steps", "threshold", "factor", "gamma", "tau", "beta", "policy"):
                box = expect(page.locator(f"#{name}-{pane}"))
                box.to_be_visible() if name in shown else box.to_be_hidden()
            if "policy" in shown:  # the upload takes a file after a strategy change
                _upload(page, [policy / "model.safetensors", policy / "config.json"], f"policy-{pane}")
                _toast(page, f"Pane {pane.upper()}: policy loaded")
            for name in shown:
                if name in _CONTROLS:
                    sel, value, _ = _CONTROLS[name]
                    _fill(page, f"#{name}-{pane} {sel}", value)
            expected[pane] = [_CONTROLS[c][2] for c in shown if c in _CONTROLS]
        _run_and_wait(page, expect)
        for pane, marks in expected.items():
            head = page.locator(f"#grid-{pane} .dv-head")
            for mark in marks:
                expect(head).to_contain_text(mark)
            if "steps=4" in marks:
                expect(page.locator(f"#stats-{pane} .dv-stats")).to_have_attribute("data-nfe", "4")
    assert errors == [], errors


@pytest.fixture
def fresh_page(page):
    """A new tab of the module's browser (its own Gradio session and console), offline: any request
    beyond loopback is refused."""
    tab = page.context.new_page()
    tab.set_default_timeout(60_000)
    tab.route(
        "**/*",
        lambda route: (
            route.continue_() if route.request.url.startswith(("http://127.0.0.1", "data:", "blob:")) else route.abort()
        ),
    )
    yield tab
    tab.close()


def _open(tab, server, width):
    tab.set_viewport_size({"width": width, "height": 900})
    errors = _console_errors(tab)
    tab.goto(server)
    tab.wait_for_selector("#run-btn")
    tab.wait_for_timeout(1500)  # let the lazy components (plots, examples) mount
    return errors


def _fits(tab) -> bool:
    """No horizontal scrolling: the layout holds at this width."""
    return tab.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


@pytest.mark.browser
def test_browser_clean_console_layout_and_screenshots(server, fresh_page, tmp_path):
    """No JS errors on load or on a run; the page fits 1024, 1440 and 1920 px; screenshots of the
    first page, a finished run and the Benchmark tab (refreshed in docs/ with DLLM_VIZ_SCREENSHOT=1)."""
    from playwright.sync_api import expect

    keep = os.environ.get("DLLM_VIZ_SCREENSHOT") == "1"
    out = SHOTS if keep else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    tab = fresh_page
    for width in (*WIDTHS, 1920):
        errors = _open(tab, server, width)
        assert errors == [], f"console errors on load at {width}px: {errors}"
        assert _fits(tab), f"horizontal scroll at {width}px"
        expect(tab.locator("#heat-a")).to_contain_text("appear here")  # a placeholder, not empty axes
        if width == 1920:
            break
        tab.screenshot(path=str(out / f"initial-{width}.png"), full_page=True)
        _use_example(tab, EXAMPLE)
        _open_settings(tab)
        tab.get_by_label("full speed").check()
        _run_and_wait(tab, expect)
        expect(tab.locator("#dl-json")).to_be_enabled()
        tab.wait_for_timeout(800)
        assert errors == [], f"console errors on a run at {width}px: {errors}"
        assert _fits(tab)
        tab.screenshot(path=str(out / f"run-{width}.png"), full_page=True)
        if width == WIDTHS[0]:  # plotly's toolbar exports a PNG offline (the figure is drawn in the page)
            tab.locator("#heat-a .js-plotly-plot").hover()
            with tab.expect_download() as download:
                tab.locator("#heat-a").get_by_role("button", name="Download plot as a PNG").click()
            download.value.save_as(tmp_path / "heat.png")
            assert (tmp_path / "heat.png").read_bytes()[:4] == b"\x89PNG"
        if width == WIDTHS[-1] and keep:
            tab.screenshot(path=str(ROOT / "docs" / "screenshot.png"), full_page=True)
        tab.get_by_role("tab", name="Benchmark").click()
        tab.locator("#bench-n input").fill("2")
        tab.locator("#bench-gen-length input").fill("16")
        expect(tab.locator("#bench-cost")).to_contain_text("decodes of 16 tokens")  # the cost, before the run
        tab.click("#bench-run")
        expect(tab.locator("#bench-plot .js-plotly-plot")).to_be_visible(timeout=180_000)
        expect(tab.locator("#bench-table")).to_contain_text("threshold")
        expect(tab.locator("#bench-cost")).to_contain_text("at this server's last pace")  # measured by the run
        plot_w = tab.locator("#bench-plot .main-svg").first.bounding_box()["width"]
        assert plot_w > 0.8 * tab.locator("#bench-plot").bounding_box()["width"]  # fills its row
        assert _fits(tab)
        tab.wait_for_timeout(500)
        tab.screenshot(path=str(out / f"benchmark-{width}.png"), full_page=True)
        assert errors == [], errors


def _in_first_screen(page, selector: str, height: int, whole: bool = True) -> bool:
    """Whether ``selector``'s box (or its top 20 px) lies inside the unscrolled viewport."""
    box = page.locator(selector).first.bounding_box()
    bottom = box["y"] + (box["height"] if whole else 20)
    return box["y"] >= 0 and bottom <= height and page.evaluate("window.scrollY") == 0


@pytest.mark.browser
def test_browser_compare_fits_a_projector_screen(server, fresh_page, tmp_path):
    """At 1024×768 (a projector) the prompt, the example picker, both strategy pickers, ▶ Run and
    the status line (with the timing), and after a run both grids' headings (step, NFE) and first
    tokens, lie in the first screen: a class sees the controls and the decode together."""
    from playwright.sync_api import expect

    width, height = 1024, 768
    tab = fresh_page
    tab.set_viewport_size({"width": width, "height": height})
    errors = _console_errors(tab)
    tab.goto(server)
    tab.wait_for_selector("#run-btn")
    tab.wait_for_timeout(1500)
    for selector in ("#prompt", "#examples", "#settings", "#strategy-a", "#strategy-b", "#run-btn", "#status"):
        assert _in_first_screen(tab, selector, height), f"{selector} is below the fold at {width}×{height}"
    _run_and_wait(tab, expect)
    for p in "ab":
        assert _in_first_screen(tab, f"#grid-{p} .dv-head", height), f"pane {p}'s heading (step, NFE) is below the fold"
        expect(tab.locator(f"#grid-{p} .dv-head")).to_contain_text("NFE")
        assert _in_first_screen(tab, f"#grid-{p} .dv-tok", height, whole=False), f"grid {p} starts below the fold"
    assert _fits(tab) and errors == [], errors
    keep = os.environ.get("DLLM_VIZ_SCREENSHOT") == "1"
    tab.screenshot(path=str((SHOTS if keep else tmp_path) / f"compare-{width}x{height}.png"))


@pytest.mark.browser
def test_browser_share_link_opens_compare_filled_in(server, fresh_page):
    """⬈ Share after changing the prompt, both strategies, a parameter and the seed; the link,
    opened in a new page, shows them all, runs nothing, and a junk link gets an escaped warning."""
    from playwright.sync_api import expect

    errors = _open(fresh_page, server, 1400)
    prompt = "Shared: what is <b>2 + 2</b> & why?"
    fresh_page.locator("#prompt textarea").fill(prompt)
    labels = dict((value, label) for label, value in picker.strategy_choices())
    _pick(fresh_page, "a", labels["heuristic:threshold"])
    _fill(fresh_page, "#threshold-a input[type=number]", 0.42)
    _pick(fresh_page, "b", labels["heuristic:eb"])
    _fill(fresh_page, "#gamma-b input", 0.3)
    _open_settings(fresh_page)
    _fill(fresh_page, "#seed input", 7)
    fresh_page.click("#share-btn")
    link = fresh_page.locator("#share-url textarea, #share-url input").first
    expect(link).to_have_value(re.compile(re.escape(server) + r"\?prompt=.*strategy_a=threshold&threshold_a=0.42"))
    url = link.input_value()

    opened = fresh_page.context.new_page()
    opened_errors = _open(opened, url, 1400)
    expect(opened.locator("#prompt textarea")).to_have_value(prompt)
    expect(opened.locator("#strategy-a input")).to_have_value(labels["heuristic:threshold"])
    expect(opened.locator("#threshold-a input[type=number]")).to_have_value("0.42")
    expect(opened.locator("#strategy-b input")).to_have_value(labels["heuristic:eb"])
    expect(opened.locator("#gamma-b input")).to_have_value("0.3")
    expect(opened.locator("#story-caption")).to_have_text("")
    _open_settings(opened)
    expect(opened.locator("#seed input")).to_have_value("7")
    expect(_status(opened)).to_have_value("idle")  # filled in, not run

    opened.goto(server + "?strategy_a=%3Cimg%20id%3Devil%20src%3Dx%3E&seed=-1&gen_length=64")
    toast = opened.locator('[data-testid="toast-body"]').filter(has_text="partly ignored")
    expect(toast.first).to_contain_text("<img id=evil")  # shown as text
    assert opened.locator("#evil").count() == 0
    opened.close()
    assert errors == [] and opened_errors == [], errors + opened_errors


@pytest.mark.browser
def test_browser_default_story_panes_commit_differently(server, fresh_page):
    """The app opens on a curated story; Run shows the panes parting ways: at the divergence step
    named in the stats the two grids' new commits differ, and the status says what it led to."""
    from playwright.sync_api import expect

    story = default_story()
    assert story is not None, "no curated story can run in this build (see dllm_viz/ui/stories.py)"
    _open(fresh_page, server, 1400)
    expect(fresh_page.locator("#prompt textarea")).to_have_value(story.prompt)
    expect(fresh_page.locator("#story-caption")).to_contain_text(story.title)
    _open_settings(fresh_page)
    fresh_page.locator("#live-speed").get_by_text("full speed").click()
    _run_and_wait(fresh_page, expect)
    expect(_status(fresh_page)).to_have_value(re.compile(r"diverge at step \d+ → A ✓ NFE \d+ · B ✗ NFE \d+"))
    marker = fresh_page.locator("#stats-a .dv-diverge")
    expect(marker).to_have_count(1)
    step = marker.get_attribute("data-divergence")
    number = fresh_page.locator("#step-slider input[type=number]")
    number.fill(step)
    number.press("Tab")
    new = {}
    for p in ("a", "b"):
        expect(fresh_page.locator(f"#grid-{p} .dv-grid")).to_have_attribute("data-step", step)
        new[p] = {cell.get_attribute("data-pos") for cell in fresh_page.locator(f"#grid-{p} .dv-new").all()}
    assert new["a"] != new["b"], f"the panes committed the same positions at their divergence step {step}"
    expect(fresh_page.locator("#stats-b .dv-diverge")).to_have_attribute("data-divergence", step)


@pytest.fixture(scope="module")
def long_context_model(allowed_models):
    """A tiny random model with a 512-token context, so L = 256 fits after the prompt (in the
    folder the server allows)."""
    from conftest import save_tiny_masked_lm

    return save_tiny_masked_lm(allowed_models / "tiny-512", max_positions=512)


_FRAME_LOG = """() => { window.__frames = []; const tick = () => {
    const g = document.querySelector('#grid-a .dv-grid'); const s = g && g.getAttribute('data-step');
    const f = window.__frames; if (s && (!f.length || f[f.length - 1][1] !== s)) f.push([performance.now(), s]);
    requestAnimationFrame(tick); }; tick(); }"""


@pytest.mark.browser
def test_browser_streaming_long_run_never_backlogs(server, fresh_page, long_context_model):
    """L = 256, one token per step at full speed: painted steps ≤ 1 s apart (two may be late, not
    backlogged: ≤ 2.5 s), Stop effective < 2 s."""
    from playwright.sync_api import expect

    tab = fresh_page
    errors = _open(tab, server, 1440)
    _open_settings(tab)
    tab.locator("#model input").fill(str(long_context_model))
    tab.locator("#model input").press("Enter")
    tab.locator("#prompt textarea").fill("one plus two is")
    tab.locator("#gen-length input").fill("256")
    tab.get_by_label("full diffusion").check()
    for pane in "ab":
        _pick(tab, pane, REGISTRY["confidence"].label)
        _fill(tab, f"#steps-{pane} input", 0)
    tab.get_by_label("full speed").check()
    for attempt in range(2):
        # A second attempt only when the first painted no intermediate step at all: seen once in
        # ~5 full-suite runs on a loaded 2-core machine, never when the test runs alone.
        tab.evaluate(_FRAME_LOG)
        t_click = tab.evaluate("performance.now()")
        _run_and_wait(tab, expect)
        frames = [(t, int(s)) for t, s in tab.evaluate("window.__frames") if int(s) > 0]
        if len(frames) >= 3:
            break
        print(f"\nattempt {attempt + 1}: {len(frames)} painted frame(s); running again")
    assert frames[-1][1] == 256 and len(frames) >= 3, frames
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(frames)]
    print(
        f"\nL=256: {len(frames)} painted frames, first {(frames[0][0] - t_click) / 1e3:.2f} s after the click, "
        f"max gap {max(gaps) / 1e3:.2f} s ({sum(g > 1000 for g in gaps)} over 1 s), "
        f"whole run {(frames[-1][0] - t_click) / 1e3:.1f} s"
    )
    # A backlog delays every frame after it; one late frame on a busy 2-core machine (a training or
    # another test on the other core: seen at 1.5 s) is the scheduler, so two may take up to 2.5 s.
    late = [g for g in gaps if g > 1000]
    assert len(late) <= 2 and max(gaps) <= 2500, gaps

    # again, stopped part-way: the Stop click registers at once (no frame backlog in the page)
    tab.evaluate(_FRAME_LOG)
    tab.click("#run-btn")
    tab.wait_for_function("window.__frames.length >= 3 && +window.__frames[window.__frames.length - 1][1] > 20")
    t_stop = time.monotonic()
    tab.click("#stop-btn")
    expect(_status(tab)).to_have_value(re.compile(r"^stopped at step \d+"))
    latency = time.monotonic() - t_stop
    stopped_at = int(re.search(r"stopped at step (\d+)", _status(tab).input_value()).group(1))
    print(f"Stop: effective {latency:.2f} s after the click, at step {stopped_at}/256")
    assert latency <= 2.0 and stopped_at < 256
    assert errors == [], errors


@pytest.mark.browser
def test_browser_run_stop_run_in_quick_succession(server, fresh_page):
    """A hurried visitor: ▶ Run then ■ Stop within the first half-second (before the run has sent
    its session), three times over; the last run says where it stopped, and a short run then
    finishes. Stop reaches a run through the page's run key, whenever it is pressed."""
    from playwright.sync_api import expect

    tab = fresh_page
    errors = _open(tab, server, 1400)
    _open_settings(tab)
    if tab.locator("#full-diffusion input").is_checked():
        tab.locator("#full-diffusion input").uncheck()
    for pane in "ab":  # one token a step: 224 steps, not done before the Stop
        _pick(tab, pane, REGISTRY["confidence"].label)
    tab.locator("#gen-length input").fill("224")
    tab.locator("#block-length input").fill("224")
    for delay_ms in (0, 200, 500):
        tab.click("#run-btn")
        tab.wait_for_timeout(delay_ms)
        tab.click("#stop-btn")
    expect(_status(tab)).to_have_value(re.compile(r"^stopped at step \d+"))
    tab.locator("#gen-length input").fill("16")
    tab.locator("#block-length input").fill("8")
    tab.click("#run-btn")
    expect(_status(tab)).to_have_value(re.compile(r"^done · .* #\w{6}$"))
    assert errors == [], errors
