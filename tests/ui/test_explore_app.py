"""The Explore tab served: ``/branch`` through gradio_client, and the browser flow (run, pick a step,
force a position, branch, export and reload the tree) in Debian's chromium via Playwright.
``DLLM_VIZ_SCREENSHOT=1`` also refreshes docs/screenshots/explore-branch-1440.png."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from dllm_viz.branch import state_after
from dllm_viz.strategies import REGISTRY
from dllm_viz.tree import DecodeTree
from dllm_viz.ui.examples import example_problems
from dllm_viz.views.frame import display_text

from conftest import chromium_page, serve_app

EXAMPLE = example_problems()[0].question
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture(scope="module")
def app(tmp_path_factory, tiny_model_dir):
    with serve_app(tmp_path_factory, tiny_model_dir) as app:
        yield app


@pytest.fixture(scope="module")
def server(app):
    return app.url


@pytest.fixture(scope="module")
def client(server, tmp_path_factory):
    from gradio_client import Client

    return Client(server, verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")))


def _eligible(trace, k):
    masked = [p for p, t in enumerate(state_after(trace, k).tokens) if t == trace.mask_id]
    return [p for p in masked if p // trace.block_length == masked[0] // trace.block_length]


# ---- gradio_client -----------------------------------------------------------------------------------


def test_quick_cancels_of_a_long_decode_leave_the_server_serving(client, app):
    """The browser's quick Stops, through the API: a 224-token /explore cancelled 0, 0.2 and 0.5 s
    after it starts processing (before, at and after the handler's first yield); then a 16-token run
    in the same session finishes at once with its own final frame, and nothing is left computing.
    (A cancelled run's streamed outputs once stayed in Gradio, keyed by its iterator's id; a run
    whose iterator reused that id streamed diffs against them, and the browser froze mid-decode.)"""
    from gradio_client.utils import Status

    from dllm_viz.ui.explore import RUN_OUTPUTS

    from test_server_load import HEURISTIC_PANE, assert_idle_after_cancel

    def settings(length: int, block: int) -> list:
        return ["", "What is 2 plus 3?", length, block, False, 0.0, 0, "heuristic:confidence", *HEURISTIC_PANE]

    def timed_run() -> float:
        t0 = time.monotonic()
        out = client.predict(*settings(16, 8), api_name="/explore")
        status = out[RUN_OUTPUTS.index("status")]
        assert re.match(r"^done · node 0: \d+ steps", status), status
        return time.monotonic() - t0

    baseline = timed_run()  # also waits out the model's preload, which a fresh server may still be doing
    for delay in (0.0, 0.2, 0.5):
        job = client.submit(*settings(224, 224), api_name="/explore")
        while job.status().code not in (Status.PROCESSING, Status.ITERATING, Status.PROGRESS) and not job.done():
            time.sleep(0.01)
        time.sleep(delay)
        job.cancel()
    took = timed_run()
    print(f"16-token /explore: {baseline:.1f} s before the cancels, {took:.1f} s after")
    # nothing left over to wait behind: as quick as before the cancels (with slack for a shared machine)
    assert took < max(5.0, 2 * baseline), f"a 16-token run took {took:.1f} s after the cancels, {baseline:.1f} s before"
    assert_idle_after_cancel(app.pid)
    assert "reclaiming the compute slot" not in app.log.read_text()  # closed by Gradio, not the backstop


@pytest.fixture(scope="module")
def first(client):
    """A run (one token per step, L = 16) and a plain continuation of it after step 2, via /branch."""
    return client.predict(
        prompt=EXAMPLE, step=2, run_strategy="heuristic:confidence", gen_length=16, block_length=8, api_name="/branch"
    )


def test_branch_endpoint_is_named_and_continues_a_run(client, first):
    names = set(client.view_api(return_format="dict", print_info=False)["named_endpoints"])
    assert {"/branch", "/explore"} <= names
    tree = DecodeTree.from_dict(first)
    root, child = tree.nodes
    assert first["branch"]["node"] == 1 and first["branch"]["divergence"] is None  # no override: the same decode
    assert [s.proposed for s in child.trace.steps] == [s.proposed for s in root.trace.steps]
    assert first["branch"]["nfe"] == [16, 16]


def test_branch_endpoint_forces_then_branches_the_branch(client, first):
    root = DecodeTree.from_dict(first).nodes[0].trace
    pos = _eligible(root, 2)[1]
    out = client.predict(
        tree=first,
        node=0,
        step=2,
        overrides=[{"position": pos, "action": "force", "token": 5}],
        strategy="heuristic:threshold",
        params={"threshold": 0.6},
        api_name="/branch",
    )
    tree = DecodeTree.from_dict(out)
    child = tree.node(out["branch"]["node"])
    assert child.parent == 0 and child.overrides == [{"position": pos, "action": "force", "token": 5}]
    assert child.trace.steps[2].proposed[pos] == 5 and pos in child.trace.steps[2].committed
    assert child.trace.strategy == {"name": "threshold", "threshold": 0.6} and out["branch"]["divergence"] == 3
    # and a branch of that branch, re-masking the forced position
    again = client.predict(
        tree=out,
        node=child.id,
        step=child.trace.num_steps,
        overrides=[{"position": pos, "action": "remask"}],
        api_name="/branch",
    )
    nested = DecodeTree.from_dict(again).node(again["branch"]["node"])
    assert nested.parent == child.id and nested.trace.steps[child.trace.num_steps].overrides[0]["action"] == "remask"


def test_branch_endpoint_bad_overrides_get_specific_errors(client, first):
    from gradio_client.exceptions import AppError

    root = DecodeTree.from_dict(first).nodes[0].trace
    done = root.steps[0].committed[0]
    token = root.steps[0].proposed[done]
    cases = [
        (
            dict(tree=first, step=2, overrides=[{"position": 99, "action": "force"}]),
            "override 0: position 99 is out of range: the generation has positions 0–15",
        ),
        (
            dict(tree=first, step=2, overrides=[{"position": done, "action": "force", "token": token + 1}]),
            f"position {done} is already committed to",
        ),
        (
            dict(
                tree=first, step=2, overrides=[{"position": _eligible(root, 2)[0], "action": "force", "token": 10**7}]
            ),
            "token id 10000000 is unknown: the model's vocabulary has ids 0–",
        ),
        (dict(tree=first, step=500), "step 500 is past the end of the run: it has 16 steps"),
        (
            dict(prompt=EXAMPLE, step=1, gen_length=16, overrides=[{"position": 16, "action": "hold"}]),
            "position 16 is out of range",
        ),
    ]
    for kwargs, message in cases:
        with pytest.raises(AppError) as err:
            client.predict(api_name="/branch", **kwargs)
        assert message in str(err.value), (kwargs.get("overrides"), str(err.value))
    assert "re-mask it in the same branch" in _message(
        client, dict(tree=first, step=2, overrides=[{"position": done, "action": "force", "token": token + 1}])
    )
    assert client.predict(tree=first, step=1, api_name="/branch")["branch"]["node"] == 2  # still serving


def _message(client, kwargs) -> str:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as err:
        client.predict(api_name="/branch", **kwargs)
    return str(err.value)


# ---- browser -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tab(server):
    with chromium_page() as page:
        page.route(  # nothing leaves the machine
            "**/*",
            lambda route: (
                route.continue_()
                if route.request.url.startswith(("http://127.0.0.1", "data:", "blob:"))
                else route.abort()
            ),
        )
        errors = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server)
        page.get_by_role("tab", name="Explore").click()
        page.wait_for_selector("#ex-run")
        page.errors = errors
        yield page


def _status(page):
    return page.locator("#ex-status textarea")


@pytest.mark.browser
def test_browser_run_force_branch_export_reload(tab, tmp_path):
    from playwright.sync_api import expect

    page = tab
    page.locator("#ex-prompt textarea").fill(EXAMPLE)
    page.locator("#ex-gen-length input").fill("16")
    page.locator("#strategy-r input").click()
    page.locator("#strategy-r").get_by_role("option", name=REGISTRY["confidence"].label, exact=True).click()
    page.click("#ex-run")
    expect(_status(page)).to_have_value(re.compile(r"^done · node 0: 16 steps · run .*#\w{6}$"))
    expect(page.locator("#ex-tree input[type=radio]")).to_have_count(1)

    # pick step 3 and click a masked position of the current block in the run's grid
    number = page.locator("#ex-step input[type=number]")
    number.fill("3")
    number.press("Tab")
    expect(page.locator("#ex-grid-a .dv-grid")).to_have_attribute("data-step", "3")
    cell = page.locator("#ex-grid-a .dv-tok.dv-masked").first
    pos = cell.get_attribute("data-pos")
    cell.click()
    expect(page.locator("#ex-point .ex-point")).to_have_attribute("data-position", pos)
    expect(page.locator("#ex-inspector .ex-inspector")).to_have_attribute("data-step", "3")

    # force it to one of the model's alternatives there (not the EOS glyph, not its first choice)
    page.locator("#ex-token input").click()
    options = page.locator("#ex-token").get_by_role("option")
    expect(options).not_to_have_count(0)
    labels = options.all_inner_texts()
    choice = next(i for i, label in enumerate(labels) if i > 0 and re.match(r"^'[\w+=#.]+' ·", label))
    options.nth(choice).click()
    page.click("#ex-add")
    item = page.locator(f"#ex-pending li[data-position='{pos}']")
    expect(item).to_have_attribute("data-action", "force")
    forced_text = item.get_attribute("data-token-text")

    page.click("#ex-branch")
    expect(_status(page)).to_have_value(
        re.compile(r"^branched · node 1 from node 0 after step 3 · diverge at step 4 .*#\w{6}$")
    )
    forced = page.locator(f"#ex-grid-b .dv-tok[data-pos='{pos}']")
    expect(forced).to_have_class(re.compile(r"\bdv-committed\b"))
    expect(forced).to_have_text(display_text(forced_text))
    expect(page.locator("#ex-stats-b .dv-answer")).to_contain_text("final answer")
    expect(page.locator("#ex-stats-b .dv-diverge")).to_have_attribute("data-divergence", "4")
    expect(page.locator("#ex-tree input[type=radio]")).to_have_count(2)
    if os.environ.get("DLLM_VIZ_SCREENSHOT") == "1":  # the README's Explore picture
        page.set_viewport_size({"width": 1440, "height": 900})
        page.screenshot(path=str(SHOTS / "explore-branch-1440.png"), full_page=True)

    # export the tree, load it back
    expect(page.locator("#ex-dl-tree")).to_be_enabled()
    with page.expect_download() as download:
        page.click("#ex-dl-tree")
    saved = tmp_path / "tree.json"
    download.value.save_as(saved)
    data = json.loads(saved.read_text())
    assert data["format"] == "dllm-viz-tree" and [n["parent"] for n in data["nodes"]] == [None, 0]
    page.locator("#ex-upload input[type=file]").set_input_files(str(saved))
    expect(_status(page)).to_have_value(re.compile(r"^loaded · 2 decode\(s\)"))
    expect(page.locator("#ex-tree input[type=radio]")).to_have_count(2)
    page.locator("#ex-tree label").nth(1).click()  # the branch again, beside its parent
    expect(page.locator(f"#ex-grid-b .dv-tok[data-pos='{pos}']")).to_have_text(display_text(forced_text))
    assert page.errors == [], page.errors

    # labels and token strings from a loaded file stay text
    tree = DecodeTree.load(saved)
    evil = '<img id="evil" src=x onerror="document.title=1">'
    tree.nodes[0].label = evil
    for node in tree.nodes:
        node.trace.vocab = {k: evil for k in node.trace.vocab}
    page.locator("#ex-upload button[aria-label='Clear']").first.click()
    page.locator("#ex-upload input[type=file]").set_input_files(str(tree.save(tmp_path / "evil.json")))
    expect(page.locator("#ex-tree")).to_contain_text('<img id="evil"')
    expect(page.locator("#ex-grid-a")).to_contain_text('<img id="evil"')
    assert page.locator("#evil").count() == 0


@pytest.mark.browser
def test_browser_stop_right_after_run_leaves_the_server_serving(tab, app):
    """■ Stop within the first half-second of ▶ Run, three times over: the last run says where it
    stopped, nothing is left computing, and a short run then finishes. (Gradio's own cancel lost
    a Stop pressed before the page knew its run's event id, and, cancelling every run of the
    session while telling the page about one, left the page waiting forever: its status froze at
    "decoding…" and no further run was sent.)"""
    from playwright.sync_api import expect

    from test_server_load import assert_idle_after_cancel

    page = tab
    page.locator("#ex-prompt textarea").fill("What is 2 plus 3?")
    page.locator("#ex-gen-length input").fill("224")  # ~15 s of compute on the built-in model
    page.locator("#ex-block-length input").fill("224")
    page.locator("#strategy-r input").click()  # one token a step: 224 steps, not done before the Stop
    page.locator("#strategy-r").get_by_role("option", name=REGISTRY["confidence"].label, exact=True).click()
    for delay_ms in (0, 200, 500):
        page.click("#ex-run")
        page.wait_for_timeout(delay_ms)
        page.click("#ex-stop")
    expect(_status(page)).to_have_value(re.compile(r"^stopped at step \d+ #"))
    assert_idle_after_cancel(app.pid)
    page.locator("#ex-gen-length input").fill("16")
    page.locator("#ex-block-length input").fill("8")
    page.click("#ex-run")
    expect(_status(page)).to_have_value(re.compile(r"^done · node 0: \d+ steps"), timeout=60_000)
    assert page.errors == [], page.errors
