"""Curated stories: each one, re-run through the app's lockstep path, shows what its caption promises."""

from __future__ import annotations

import pytest

from dllm_viz.engine import EngineConfig
from dllm_viz.ui import compare_tab, comparison_views, pane
from dllm_viz.ui.examples import known_answer
from dllm_viz.ui.stories import STORIES, _spec, default_story, run_pair, stories


def test_the_app_has_a_default_story_and_every_story_can_run():
    assert default_story() is not None
    assert stories() == STORIES  # every shipped story's policies are shipped too


@pytest.mark.parametrize("story", STORIES, ids=lambda s: s.title)
def test_story_panes_part_ways_and_a_is_right_where_b_is_wrong(story):
    assert known_answer(story.prompt) is not None, "a story's prompt must be a held-out problem"
    config = EngineConfig(gen_length=story.gen_length, block_length=story.effective_block_length, seed=story.seed)
    comp = run_pair(story.prompt, story.a, story.b, config)
    assert comp.divergence is not None
    assert comp.verdict(comp.a).correct and not comp.verdict(comp.b).correct
    assert comparison_views.consequence(comp).startswith(" → A ✓") and "B ✗" in comparison_views.consequence(comp)
    fewer = comp.b.nfe - comp.a.nfe
    assert comp.in_words() == (
        f"A needed {abs(fewer)} {'fewer' if fewer > 0 else 'more'} forward passes than B, and only A is right"
    )


def test_apply_story_fills_settings_both_panes_and_caption():
    story = default_story()
    values = compare_tab.apply_story(0)
    assert [values[k] for k in ("prompt", "gen_length", "block_length", "full", "seed")] == [
        story.prompt,
        story.gen_length,
        story.effective_block_length,
        story.full_diffusion,
        story.seed,
    ]
    assert values["strategy_a"] == story.a.key and values["strategy_b"] == story.b.key
    assert story.title in values["caption"] and story.caption in values["caption"]
    assert set(values) == set(compare_tab.story_outputs())


def test_pane_values_map_parameters_to_controls():
    spec = _spec("heuristic:threshold,threshold=0.7")
    assert pane.pane_values(spec) == ("heuristic:threshold", 0, 0.7, 1.0, 0.01, 1.0, 1.0)
    policy = _spec(f"policy:{STORIES[0].a.policy},temperature=0.5,beta=2.0")
    assert pane.pane_values(policy) == (policy.key, 0, 0.9, 1.0, 0.01, 0.5, 2.0)
    assert pane.pane_values(_spec("confidence,steps=8"))[:2] == ("heuristic:confidence", 8)


def test_example_picker_sets_a_story_or_a_problem():
    from dllm_viz.ui.examples import example_problems

    values = dict(compare_tab.example_choices())
    assert len(values) == len(stories()) + len(example_problems())
    assert compare_tab.pick_example("story:0") == compare_tab.apply_story(0)
    problem = example_problems()[1]
    assert compare_tab.pick_example("problem:1") == {"prompt": problem.question, "caption": ""}
    assert compare_tab.pick_example(None) == {}
