"""The served app end to end: ``python app.py`` on 127.0.0.1, driven by gradio_client and by
Playwright with Debian's chromium (``apt-get install chromium``; never ``playwright install``).

Set ``DLLM_VIZ_SCREENSHOT=1`` to also refresh docs/screenshot.png from the browser test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from dllm_viz.trace import Trace
from dllm_viz.ui import runtime
from dllm_viz.ui.examples import example_problems
from dllm_viz.ui.session import FORMAT, MAX_UPLOAD_BYTES, load_comparison

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("DLLM_VIZ_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
PROBLEM = example_problems()[0]  # the first held-out example the app lists
EXAMPLE = PROBLEM.question


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model_dir):
    """``python app.py`` in a subprocess: ``$DLLM_VIZ_MODEL`` if set, else the built-in model when
    installed, else a tiny random one."""
    port = _free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1",
               GRADIO_TEMP_DIR=str(tmp_path_factory.mktemp("gradio-tmp")), PYTHONUNBUFFERED="1")
    if not runtime.builtin_model_installed() and not os.environ.get(runtime.MODEL_ENV):
        env[runtime.MODEL_ENV] = str(tiny_model_dir)  # an explicit $DLLM_VIZ_MODEL wins
    log = tmp_path_factory.mktemp("server") / "app.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT,
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"app did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


# ---- gradio_client ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def client(server, tmp_path_factory):
    from gradio_client import Client

    return Client(server, verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")))


def test_named_endpoints(client):
    names = set(client.view_api(return_format="dict", print_info=False)["named_endpoints"])
    assert {"/compare", "/compare_trace", "/replay", "/load_trace", "/export", "/benchmark"} <= names


def test_client_compare_trace_returns_valid_traces(client):
    out = client.predict(EXAMPLE, "heuristic:confidence", "heuristic:threshold", None, {"threshold": 0.7}, 32, 8,
                         0.0, 1, api_name="/compare_trace")
    assert out["format"] == FORMAT and out["expected"] == PROBLEM.answer
    a, b = Trace.from_dict(out["a"]), Trace.from_dict(out["b"])
    for trace in (a, b):
        assert trace.gen_length == 32 and trace.block_length == 8 and trace.engine["seed"] == 1
        assert sorted(p for s in trace.steps for p in s.committed) == list(range(32))
    assert b.strategy == {"name": "threshold", "threshold": 0.7}


def test_client_compare_endpoint_then_export(client):
    heur = [0, 0.9, 1.0, 0.01, 1.0, 1.0, None]
    final = client.predict("", EXAMPLE, 16, 4, False, 0.0, 0, "heuristic:margin", *heur, "heuristic:eb", *heur, "full speed",
                           api_name="/compare")
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


# ---- browser ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def page(server):
    if not CHROMIUM:
        message = "chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("DLLM_VIZ_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=60_000)  # 2 shared cores: generous, tests only wait for final states
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(server)  # never wait for "networkidle": the SSE stream keeps the network busy
        page.wait_for_selector("#run-btn")
        yield page
        browser.close()


def _status(page):
    return page.locator("#status textarea")


def _run_and_wait(page, expect):
    before = _status(page).input_value()
    page.click("#run-btn")
    expect(_status(page)).not_to_have_value(before)
    expect(_status(page)).to_have_value(re.compile(r"^done · .* #\w{6}$"))


def test_browser_compare_replay_download(page, tmp_path):
    from playwright.sync_api import expect

    page.get_by_text(EXAMPLE[:40]).first.click()
    expect(page.locator("#prompt textarea")).to_have_value(EXAMPLE)
    _run_and_wait(page, expect)
    # a learned-policy pane adds the unmask-probability heatmap under the confidence one
    layers = {"a": 2 if runtime.default_strategies()[0].startswith("policy:") else 1, "b": 1}
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
    page.wait_for_timeout(1000)  # let the heatmaps repaint before the picture
    page.screenshot(path=str(tmp_path / "screenshot.png"), full_page=True)
    if os.environ.get("DLLM_VIZ_SCREENSHOT") == "1":
        page.screenshot(path=str(ROOT / "docs" / "screenshot.png"), full_page=True)

    # replay an uploaded trace without running anything
    _upload(page, saved)
    expect(_status(page)).to_have_value(re.compile(r"^loaded trace"))
    expect(page.locator("#grid-a .dv-grid")).to_have_attribute("data-masked", "0")


def _upload(page, path):
    clear = page.locator("#trace-upload button[aria-label='Clear']")
    if clear.count():
        clear.click()
    page.locator("#trace-upload input[type=file]").set_input_files(str(path))


def _toast(page, text):
    from playwright.sync_api import expect

    toast = page.locator('[data-testid="toast-body"]').filter(has_text=text)
    expect(toast.first).to_be_visible()
    page.locator('[data-testid="toast-close"]').first.click()


def test_browser_bad_input_shows_message_and_app_keeps_serving(page, tmp_path):
    from playwright.sync_api import expect

    page.locator("#prompt textarea").fill("   ")
    page.click("#run-btn")
    _toast(page, "the prompt is empty")

    page.locator("#prompt textarea").fill(EXAMPLE)
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
