"""The Train tab served (``python app.py``): the ``/train`` endpoint over gradio_client, cancel
included, and the tab in Chromium: a short run's curves and probe grid update, Stop stops, and the
trained policy decodes in Compare's picker."""

from __future__ import annotations

import re
import time

import pytest

from conftest import chromium_page, serve_app

QUICK = "quick look: 6 batches (~40 s)"


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model_dir):
    with serve_app(tmp_path_factory, tiny_model_dir) as app:
        yield app


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server.url, verbose=False)


def test_train_streams_json_then_the_policy_decodes_in_compare(client):
    job = client.submit(preset=QUICK, batches=1, seed=5, api_name="/train")
    end = job.result(timeout=600)
    events = job.outputs()
    assert {e["event"] for e in events} >= {"queued", "batch", "snapshot", "end"}
    assert end["event"] == "end" and end["status"] == "done" and end["batches"] == 1
    assert 0 <= end["selected"]["heldout_reward"] <= 1
    comp = client.predict("What is 2 plus 3?", f"policy:{end['policy']}", api_name="/compare_trace")
    assert comp["a"]["steps"] and end["policy"] in comp["labels"][0]


def test_train_refuses_bad_settings_with_a_message(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match=r"batches \(0\) must be between 1 and 200"):
        client.predict(preset=QUICK, batches=0, api_name="/train")


def test_a_cancelled_train_frees_the_cpu(client, server):
    from test_server_load import assert_idle_after_cancel, wait_busy

    job = client.submit(preset=QUICK, api_name="/train")
    wait_busy(server.pid, job)
    job.cancel()
    assert_idle_after_cancel(server.pid)


@pytest.mark.browser
def test_browser_train_watch_stop_and_hand_over(server):
    from playwright.sync_api import expect

    with chromium_page() as page:
        page.goto(server.url)
        page.get_by_role("tab", name="Train").click()
        status = page.locator("#train-status textarea")
        page.locator("#train-preset input").click()  # a probe snapshot after every batch
        page.get_by_role("option", name=QUICK).click()
        expect(page.locator("#train-batches input[type=number]")).to_have_value("6")  # the preset's values
        page.locator("#train-lr input").fill("0.005")  # large steps: the probe decode changes in a few batches
        page.locator("#train-lr input").press("Tab")
        page.click("#train-start")
        expect(status).to_have_value(re.compile(r"^training · batch [1-9]"), timeout=300_000)
        curves = page.locator("#train-curves .js-plotly-plot")
        expect(curves).to_have_count(1)
        first_grid = page.locator("#train-grid-a .dv-grid").inner_html()
        expect(page.locator("#train-grid-b .dv-grid .dv-tok").first).to_be_visible()  # the heuristic beside it
        deadline = time.monotonic() + 300
        while page.locator("#train-grid-a .dv-grid").inner_html() == first_grid:
            assert time.monotonic() < deadline, "the probe grid never changed between snapshots"
            time.sleep(1)
        page.click("#train-stop")
        expect(status).to_have_value(re.compile(r"^stopped · batch "), timeout=30_000)
        expect(page.locator("#train-handover")).to_contain_text("trained-")
        name = re.search(r"trained-\w+", page.locator("#train-handover").inner_text()).group(0)
        expect(page.locator("#train-resume")).to_be_enabled()
        page.get_by_role("tab", name="Compare").click()
        page.locator("#strategy-a input").click()
        page.locator("#strategy-a").get_by_role("option", name=f"learned policy: {name} (trained here)").click()
        page.click("#run-btn")
        expect(page.locator("#status textarea")).to_have_value(re.compile(r"^done · "), timeout=120_000)
        expect(page.locator("#grid-a .dv-head")).to_contain_text(name)
