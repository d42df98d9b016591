"""The app in a lecture hall: each policy opens at its own validated τ_π and β and says when it runs
outside the setting it was trained for; help texts and a glossary explain the words.

Unit tests on the policy folders and the picker, then the served app (gradio_client, Chromium).
"""

from __future__ import annotations

import json
import re

import pytest

from dllm_viz.assets import shipped_policies
from dllm_viz.strategies import POLICY, StrategySpec
from dllm_viz.strategies.trained_for import TRAINED_FOR_NAME, TrainedFor, read_trained_for
from dllm_viz.ui import picker
from dllm_viz.ui.examples import example_problems
from dllm_viz.ui.stories import default_story
from dllm_viz.views.glossary import GLOSSARY

from conftest import chromium_page, serve_app

EXAMPLE = example_problems()[0].question
HEUR = [0, 0.9, 1.0, 0.01, 1.0, 1.0, None]  # a heuristic pane's controls after the picker


# ---- trained_for.json ------------------------------------------------------------------------------


def test_every_shipped_policy_records_the_setting_its_name_and_card_say():
    policies = shipped_policies()
    assert policies, "no shipped policies"
    for name, folder in policies.items():
        own = read_trained_for(folder)
        assert own is not None, f"{name} has no {TRAINED_FOR_NAME}"
        assert own.gen_length == 64 and own.full_diffusion == name.startswith("full-diffusion"), name
        assert own.full_diffusion or own.block_length == 8, name
    # the knobs docs/results/README.md chose on validation
    assert read_trained_for(policies["semi-ar-entropy"]).knobs == {"temperature": 0.5, "beta": 1.0}
    assert read_trained_for(policies["full-diffusion-entropy"]).knobs == {"temperature": 0.5, "beta": 1.0}
    assert read_trained_for(policies["semi-ar-plus-one"]).knobs == {"temperature": 1.0, "beta": 1.0}
    assert read_trained_for(policies["full-diffusion-top5"]).knobs == {"temperature": 0.5, "beta": 2.0}


def test_trained_for_round_trips_and_refuses_bad_files_by_name(tmp_path):
    own = TrainedFor(64, 8, 0.5, 2.0)
    assert TrainedFor.from_dict(json.loads(json.dumps(own.to_dict()))) == own
    assert read_trained_for(tmp_path) is None  # an old folder: no file, no defaults, no check
    bad = {
        "[1, 2]": "must hold a JSON object",
        '{"gen_length": 64}': "lacks ['block_length']",
        '{"gen_length": 64, "block_length": 8, "tau": 1}': "unknown keys ['tau']",
        '{"gen_length": 64, "block_length": 6}': "`block_length` (6) must divide `gen_length` (64)",
        '{"gen_length": 64, "block_length": 8, "temperature": 0}': "`temperature` (0) must be a number between",
        '{"gen_length": 64, "block_length": 8, "beta": NaN}': "`beta` (nan) must be a number between",
        "{": "is not valid JSON",
    }
    for text, message in bad.items():
        (tmp_path / TRAINED_FOR_NAME).write_text(text)
        with pytest.raises((ValueError, TypeError)) as err:
            read_trained_for(tmp_path)
        assert message in str(err.value), (text, str(err.value))


def test_mismatch_is_the_setting_kind_or_the_block_length_never_l_alone():
    semi, full = TrainedFor(64, 8), TrainedFor(64, 64)
    assert semi.mismatch(64, 8) is None and semi.mismatch(32, 8) is None and semi.mismatch(128, 8) is None
    assert semi.mismatch(64, 64) == "trained for semi-AR (block length 8, L = 64), running in full diffusion (L = 64)"
    assert "running in semi-AR (block length 16, L = 64)" in semi.mismatch(64, 16)
    assert full.mismatch(32, 32) is None and "running in semi-AR" in full.mismatch(64, 8)


def test_a_policy_without_its_knobs_takes_them_from_its_folder_and_a_caller_s_win():
    spec = picker.pane_strategy("policy:semi-ar-plus-one", {})
    assert spec.params == {"temperature": 1.0, "beta": 1.0}
    assert picker.pane_strategy("policy:semi-ar-alpha3", {"temperature": 2.0}).params == {
        "temperature": 2.0,
        "beta": 1.0,
    }
    assert picker.pane_strategy("heuristic:threshold", {}).params == {}
    # only folders the server offers: a client's path reads nothing
    assert picker.policy_trained_for(StrategySpec(POLICY, policy=str(shipped_policies()["semi-ar-alpha1"]))) is None


def test_setting_warnings_name_the_pane_policy_and_both_settings():
    specs = [StrategySpec(POLICY, policy="semi-ar-alpha3"), StrategySpec("threshold")]
    assert picker.setting_warnings(specs, 64, 8) == []
    (note,) = picker.setting_warnings(specs, 64, 64)
    assert note.startswith("Pane A: policy semi-ar-alpha3 was trained for semi-AR (block length 8, L = 64)")
    assert "running in full diffusion (L = 64)" in note


def test_benchmark_runs_each_policy_at_its_own_knobs_when_the_boxes_are_empty():
    from dllm_viz.ui.sweep_plan import benchmark_specs

    families = [StrategySpec(POLICY, policy="semi-ar-plus-one").key, StrategySpec(POLICY, policy="semi-ar-alpha1").key]
    specs = benchmark_specs(families, False, 64, 8, [], [], "semi-AR (BL = L/8)")
    assert [(s.params["temperature"], s.params["beta"]) for s in specs] == [(1.0, 1.0), (0.5, 1.0)]
    specs = benchmark_specs(families[:1], False, 64, 8, [0.7, 2.0], [], "semi-AR (BL = L/8)")
    assert [(s.params["temperature"], s.params["beta"]) for s in specs] == [(0.7, 1.0), (2.0, 1.0)]


def test_stories_run_their_policies_at_the_policies_own_knobs():
    from dllm_viz.ui.stories import STORIES

    for story in STORIES:
        if story.a.name == POLICY:
            own = read_trained_for(shipped_policies()[story.a.policy])
            assert picker.with_policy_defaults(story.a).params == own.knobs


def test_the_glossary_covers_the_jargon_and_about_states_the_reward_once():
    from dllm_viz.ui.about import ABOUT_MD
    from dllm_viz.views.diagram import about_figure

    assert {"NFE", "engine", "recorded vs recomputed", "semi-AR vs full diffusion", "block length BL"} <= set(GLOSSARY)
    assert any(t.startswith("τ_π") for t in GLOSSARY) and any(t.startswith("β") for t in GLOSSARY)
    about = ABOUT_MD + about_figure()
    assert about.count("NFE + 1)/L)^α") == 1 and "(1 − NFE/L)^α" not in about


# ---- the served app ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model_dir):
    with serve_app(tmp_path_factory, tiny_model_dir) as app:
        yield app.url


def test_client_compare_trace_runs_an_unset_policy_at_its_own_tau(server):
    from gradio_client import Client

    client = Client(server, verbose=False)
    out = client.predict(
        EXAMPLE,
        "policy:semi-ar-plus-one",
        "policy:semi-ar-entropy",
        None,
        None,
        32,
        8,
        0.0,
        0,
        api_name="/compare_trace",
    )
    assert out["a"]["strategy"]["temperature"] == 1.0 and out["b"]["strategy"]["temperature"] == 0.5

    # a semi-AR policy in full diffusion runs (warned, not refused) and its status says why
    job = client.submit(
        "", EXAMPLE, 16, 16, True, 0.0, 0, "policy:semi-ar-alpha3", *HEUR, "heuristic:threshold", *HEUR, "full speed",
        api_name="/compare",
    )  # fmt: skip
    job.result(timeout=300)
    texts = [v for frame in job.outputs() for v in (frame if isinstance(frame, (list, tuple)) else [frame])]
    notes = [t for t in texts if isinstance(t, str) and "trained for semi-AR" in t]
    assert notes and "policy semi-ar-alpha3 was trained for semi-AR (block length 8, L = 64)" in notes[0]
    assert any(isinstance(t, str) and t.startswith("done") for t in texts)


@pytest.mark.browser
def test_browser_a_pick_sets_the_policy_s_tau_and_a_run_out_of_its_setting_warns(server):
    from playwright.sync_api import expect

    with chromium_page() as page:
        page.set_viewport_size({"width": 1024, "height": 768})
        page.goto(server)
        page.wait_for_selector("#run-btn")
        story = default_story()
        if story:  # the page opens on the first story, and the example picker names it
            expect(page.locator("#examples input")).to_have_value(f"★ {story.title}")
        tau = page.locator("#tau-a input[type=number]")
        for name, value in (("semi-ar-plus-one", "1"), ("semi-ar-alpha3", "0.5")):
            page.locator("#strategy-a input").click()
            page.locator("#strategy-a").get_by_role("option", name=f"{_policy_label()}: {name}", exact=True).click()
            expect(tau).to_have_value(value)
        # the help under the controls
        expect(page.locator("#tau-a")).to_contain_text("policy temperature: below 1 sharpens")
        if not page.locator("#full-diffusion").is_visible():  # the settings box opens closed
            page.locator("#settings .label-wrap").first.click()
        expect(page.locator("#block-length")).to_contain_text("BL = L is full diffusion")
        page.locator("#full-diffusion input").check()
        page.click("#run-btn")
        note = page.locator("#setting-note")
        expect(note).to_contain_text("policy semi-ar-alpha3 was trained for semi-AR (block length 8, L = 64)")
        toast = page.locator('[data-testid="toast-body"]').filter(has_text="trained for semi-AR")
        expect(toast.first).to_be_visible()
        expect(page.locator("#status textarea")).to_have_value(_done())  # warned, and it still ran
        # the text line under each grid: the answer so far, ▢ for masks, following the slider
        for p in "ab":
            expect(page.locator(f"#grid-{p} .dv-text")).not_to_contain_text("▢")
            answer = page.locator(f"#stats-{p} .dv-answer").inner_text().removeprefix("final answer").strip()
            text = page.locator(f"#grid-{p} .dv-text").inner_text().removeprefix("text").strip()
            assert answer.startswith(text), (text, answer)  # the tokenizer's own spacing; then the verdict
        slider = page.locator("#step-slider input[type=range]")
        slider.focus()
        slider.press("Home")
        expect(page.locator("#grid-a .dv-text")).to_have_text(re.compile(r"^text ▢( ▢)+$"))
        slider.press("ArrowRight")
        expect(page.locator("#grid-a .dv-grid")).to_have_attribute("data-step", "1")
        slider.press("End")
        nfe = page.locator("#stats-a .dv-stat").filter(has_text="NFE").first
        assert nfe.get_attribute("title").startswith("NFE: forward passes of the model")

        # Explore warns the same way (its default setting is semi-AR)
        page.get_by_role("tab", name="Explore").click()
        page.locator("#strategy-r input").click()
        page.locator("#strategy-r").get_by_role("option", name=f"{_policy_label()}: full-diffusion", exact=True).click()
        expect(page.locator("#tau-r input[type=number]")).to_have_value("0.5")
        page.click("#ex-run")
        expect(page.locator("#ex-setting-note")).to_contain_text(
            "policy full-diffusion was trained for full diffusion (L = 64), running in semi-AR (block length 8"
        )
        expect(page.locator("#ex-status textarea")).to_have_value(re.compile(r"done"))

        page.get_by_role("tab", name="About").click()
        glossary = page.locator("#about-glossary")
        for term in ("NFE", "τ_π", "β", "block length", "semi-AR vs full diffusion", "recorded vs recomputed"):
            expect(glossary).to_contain_text(term)


def _policy_label() -> str:
    from dllm_viz.strategies import REGISTRY

    return REGISTRY[POLICY].label


def _done():
    return re.compile(r"^done · .* #\w{6}$")
