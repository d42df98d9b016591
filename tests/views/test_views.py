"""Pure views on small handmade traces: grid HTML, escaping, heatmaps, curves, stats, GIF."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from dllm_viz.trace import Trace, TraceStep
from dllm_viz.views import (
    Verdict,
    curves_figure,
    divergence_detail,
    first_divergence,
    frame_cells,
    heatmap_figure,
    legend_html,
    pane_numbers,
    render_frames,
    render_gif,
    render_grid,
    stats_html,
)
from dllm_viz.views.diagram import about_figure
from dllm_viz.views.palette import text_colour, viridis_hex

MASK, EOS = 0, 1
VOCAB = {
    "0": "[MASK]",
    "1": "[EOS]",
    "2": "<script>alert(1)</script>",
    "3": 'say "hi" & bye',
    "4": "cat",
    "5": " ",
    "6": "\n",
}


def step(i, committed, proposed, conf, probs=None, nfe=None):
    topk_ids = [[p, 4 if p != 4 else 3] for p in proposed]
    topk_probs = [[c, round(1 - c, 4)] for c in conf]
    return TraceStep(
        step=i,
        nfe=nfe if nfe is not None else i + 1,
        block=0,
        committed=committed,
        confidence=list(conf),
        proposed=list(proposed),
        topk_ids=topk_ids,
        topk_probs=topk_probs,
        probs=probs,
        model_ms=10.0 + i,
        step_ms=12.0 + i,
    )


def make_trace(steps, L=4, BL=2, text="<b>7</b>") -> Trace:
    return Trace(
        model="handmade",
        prompt="q",
        prompt_ids=[5, 6],
        gen_length=L,
        block_length=BL,
        mask_id=MASK,
        eos_id=EOS,
        strategy={"name": "test"},
        engine={},
        steps=steps,
        vocab=dict(VOCAB),
        text=text,
    )


@pytest.fixture
def trace_a():
    # step 1 commits 0 (the <script> token), step 2 commits 1, step 3 commits 2 and 3
    return make_trace(
        [
            step(0, [0], [2, 3, 4, 1], [0.9, 0.4, 0.3, 0.2]),
            step(1, [1], [2, 3, 4, 1], [0.9, 0.8, 0.5, 0.6]),
            step(2, [2, 3], [2, 3, 4, 1], [0.9, 0.8, 0.7, 0.95]),
        ]
    )


@pytest.fixture
def trace_b():
    # same first step as A, then commits both positions of block 0 ... diverges at step 2
    return make_trace(
        [
            step(0, [0], [2, 3, 4, 1], [0.9, 0.4, 0.3, 0.2], probs=[0.8, 0.3, 0.0, 0.0]),
            step(1, [1, 2], [2, 3, 4, 1], [0.9, 0.8, 0.5, 0.6], probs=[0.0, 0.9, 0.6, 0.0]),
            step(2, [3], [2, 3, 4, 1], [0.9, 0.8, 0.7, 0.95], probs=[0.0, 0.0, 0.0, 0.99]),
        ]
    )


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(html: str) -> _Collect:
    p = _Collect()
    p.feed(html)
    return p


def test_trace_fixtures_are_valid(trace_a, trace_b):
    trace_a.validate()
    trace_b.validate()


def test_grid_escapes_token_text_and_tooltips(trace_a):
    html = render_grid(trace_a, 3, title="A <i>policy</i>")
    assert "<script>" not in html and "<i>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    parsed = parse(html)
    assert [t for t, _ in parsed.tags if t not in ("div", "span")] == []  # nothing but our own markup
    assert "<script>alert(1)</script>" in "".join(parsed.text)  # shown as text
    titles = [a["title"] for t, a in parsed.tags if "title" in a]
    assert any("<script>alert(1)</script>" in t for t in titles)  # tooltip text survives, escaped in the attribute
    assert "say &quot;hi&quot; &amp; bye" in html


def test_grid_states_over_steps(trace_a):
    at0, at1, at3 = (parse(render_grid(trace_a, k)) for k in (0, 1, 3))
    root = dict(at0.tags[0][1])
    assert (root["data-step"], root["data-committed"], root["data-masked"]) == ("0", "0", "4")
    assert sum("dv-blank" in a.get("class", "") for _, a in at0.tags) == 4
    # after step 1: position 0 committed and outlined as new, others show faint argmax guesses
    classes1 = [a["class"] for t, a in at1.tags if "dv-tok" in a.get("class", "")]
    assert classes1[0] == "dv-tok dv-committed dv-new"
    assert all("dv-masked" in c for c in classes1[1:])
    root3 = dict(at3.tags[0][1])
    assert (root3["data-step"], root3["data-committed"], root3["data-new"]) == ("3", "4", "2")


def test_grid_block_boundaries_and_clamping(trace_a):
    html = render_grid(trace_a, 99)
    assert 'data-step="3"' in html  # clamped to the last step
    assert html.count("dv-bsep") == 1  # L=4, BL=2: one boundary
    full = make_trace(trace_a.steps, BL=4)
    assert "dv-bsep" not in render_grid(full, 3)


def test_grid_colours_committed_by_probability_at_commit(trace_a):
    cells = frame_cells(trace_a, 3)
    assert cells[0].commit_step == 1 and cells[0].prob == pytest.approx(0.9)
    assert cells[3].commit_step == 3 and cells[3].prob == pytest.approx(0.95) and cells[3].eos
    html = render_grid(trace_a, 3)
    assert f"background:{viridis_hex(0.9)}" in html
    assert ">∎</span>" in html  # EOS shown as a small glyph, its name in the tooltip
    assert "[EOS] = end of sequence" in html


def test_grid_whitespace_tokens_are_visible():
    t = make_trace([step(0, [0, 1, 2, 3], [5, 6, 4, 4], [0.5, 0.5, 0.5, 0.5])])
    text = "".join(parse(render_grid(t, 1)).text)
    assert "␣" in text and "⏎" in text


def test_grid_without_trace():
    assert 'data-step="0"' in render_grid(None, 5, pane="b")


def test_tooltip_lists_top_k_and_commit_step(trace_a):
    titles = [a["title"] for _, a in parse(render_grid(trace_a, 2)).tags if "title" in a]
    assert "committed at step 1 with p = 0.900" in titles[0]
    assert "top-k:" in titles[0] and "0.900" in titles[0]
    assert "still masked" in titles[2]


def test_first_divergence(trace_a, trace_b):
    assert first_divergence(trace_a, trace_b) == 2
    assert first_divergence(trace_a, trace_a) is None
    assert first_divergence(trace_a, None) is None


def test_divergence_detail_names_each_panes_commits_and_stats_show_it_from_that_step(trace_a, trace_b):
    d = divergence_detail(trace_a, trace_b)
    assert d.step == 2
    assert d.a == ((1, 'say "hi" & bye'),) and d.b == ((1, 'say "hi" & bye'), (2, "cat"))
    assert divergence_detail(trace_a, trace_a) is None and divergence_detail(None, trace_b) is None
    assert "dv-diverge" not in stats_html(trace_a, 1, divergence=d)  # not before the replay reaches it
    html = stats_html(trace_a, 2, divergence=d)
    tags = [attrs for tag, attrs in parse(html).tags if attrs.get("class") == "dv-diverge"]
    assert tags == [{"class": "dv-diverge", "data-divergence": "2"}]
    assert "&quot;hi&quot; &amp; bye" in html and "«cat»@2" in html  # escaped, B's extra commit named
    assert "this pane committed «say &quot;hi&quot; &amp; bye»@1; B committed" in html
    assert "A committed «say" in stats_html(trace_b, 3, pane="b", divergence=d)


def test_heatmap_figure_shapes_and_markers(trace_a, trace_b):
    fig = heatmap_figure(trace_a, 2, divergence=2, max_steps=3)
    heat, marks = fig.data[0], fig.data[1]
    z = np.asarray(heat.z)
    assert z.shape == (2, 4) and z.dtype == np.uint8 and z.max() <= 100
    assert list(z[0]) == [90, 40, 30, 20]
    assert list(np.asarray(marks.x)) == [0, 1] and list(np.asarray(marks.y)) == [1, 2]  # commits up to step 2
    assert fig.layout.yaxis.range == (3.5, 0.5)
    assert "layout" not in fig.layout.template.to_plotly_json()  # template="none": no theme
    assert any(s.y0 == 2 for s in fig.layout.shapes)  # divergence line
    assert any("diverge" in a.text for a in fig.layout.annotations)
    # a policy trace gets a second panel with the unmask probabilities
    fig_b = heatmap_figure(trace_b)
    assert len([d for d in fig_b.data if d.type == "heatmap"]) == 2
    assert list(np.asarray(fig_b.data[2].z)[1]) == [0, 90, 60, 0]


def test_empty_figures_are_placeholders_without_axes():
    for fig in (heatmap_figure(None, title="A"), curves_figure({})):
        assert len(fig.data) == 0 and fig.layout.xaxis.visible is False and fig.layout.yaxis.visible is False
        assert "appear here" in fig.layout.annotations[0].text
    assert fig.layout.annotations[0].text != heatmap_figure(None).layout.annotations[0].text


def test_step_axes_are_per_pane_with_whole_ticks(trace_a):
    fig = heatmap_figure(trace_a)
    assert tuple(fig.layout.yaxis.range) == (trace_a.num_steps + 0.5, 0.5)  # its own steps, not the longest pane's
    assert fig.layout.yaxis.dtick == 1 and fig.layout.yaxis.tickformat == "d"
    from dllm_viz.views.figures import step_ticks

    assert step_ticks(2)["dtick"] == 1 and step_ticks(64)["dtick"] == 10 and step_ticks(256)["dtick"] == 50
    assert curves_figure({"A": trace_a}).layout.xaxis.dtick == 1


def test_curves_figure(trace_a, trace_b):
    fig = curves_figure({"A": trace_a, "B": trace_b, "C": None}, step=2, divergence=2)
    assert len(fig.data) == 6
    remaining = [list(np.asarray(d.y)) for d in fig.data if d.xaxis == "x"]
    assert remaining == [[3, 2, 0], [3, 1, 0]]
    assert len(fig.layout.shapes) == 6


def test_stats_numbers_and_verdict(trace_a):
    n = pane_numbers(trace_a, 2)
    assert (n["nfe"], n["new"], n["masks_left"], n["finished"]) == (2, 1, 2, False)
    assert n["model_ms"] == pytest.approx(21.0)
    html = stats_html(trace_a, 3, render_ms=5, verdict=Verdict("<b>7</b>", expected="7", correct=True))
    assert 'data-nfe="3"' in html and 'data-correct="true"' in html
    assert "&lt;b&gt;7&lt;/b&gt;" in html and "<b>7</b>" not in html
    assert "✓ correct" in html
    wrong = stats_html(trace_a, 3, verdict=Verdict("8", expected="7", correct=False))
    assert "expected 7" in wrong
    why = stats_html(trace_a, 3, verdict=Verdict("8", "4 + ?", False, reason="4 + 3 = <8> does not hold"))
    assert "✗ wrong: 4 + 3 = &lt;8&gt; does not hold" in why  # the verifier's words, escaped
    assert "final answer" not in stats_html(trace_a, 2, verdict=Verdict("x"))


def test_gif_frames(tmp_path, trace_a, trace_b):
    frames = render_frames([("A", trace_a), ("B", trace_b)])
    assert len(frames) == 4  # steps 0..3
    assert len({f.tobytes() for f in frames}) == 4
    path = render_gif([("A", trace_a), ("B", None)], tmp_path / "run.gif")
    with Image.open(path) as img:
        assert img.n_frames == 4
    with pytest.raises(ValueError, match="nothing to draw"):
        render_frames([("A", None)])


def test_gif_last_frame_says_the_verdict(tmp_path, trace_a, trace_b):
    """The words the renderer draws (its text layer, not OCR): the heading on every frame, the final
    answer and the verifier's check only once a pane has finished."""
    from dllm_viz.views.gif import pane_captions

    wrong = Verdict("8", "4 + ?", False, reason="4 + 3 = 8 does not hold")
    assert pane_captions("A", trace_a, 0, wrong) == ("A · step 0/3 · NFE 0", "")
    head, foot = pane_captions("A", trace_a, trace_a.num_steps, wrong)
    assert head.startswith("A · step 3/3") and foot == "final answer 8 · ✗ wrong: 4 + 3 = 8 does not hold"
    assert pane_captions("B", trace_b, 99, Verdict("7", "7", True))[1] == "final answer 7 · ✓ correct"
    assert pane_captions("B", trace_b, 99)[1] == ""  # no verdict given: nothing below the grid
    plain = render_frames([("A", trace_a), ("B", trace_b)])
    said = render_frames([("A", trace_a), ("B", trace_b)], verdicts=[wrong, Verdict("7", "7", True)])
    assert len(said) == len(plain) and said[-1].height > plain[-1].height  # a line under each grid
    path = render_gif([("A", trace_a), ("B", trace_b)], tmp_path / "said.gif", verdicts=[wrong, None])
    with Image.open(path) as img:
        assert img.n_frames == 4


def test_gif_subsamples_long_runs(trace_a):
    from dllm_viz.views.gif import frame_steps

    assert frame_steps(3, 64) == [0, 1, 2, 3]
    steps = frame_steps(200, 64)
    assert len(steps) == 64 and steps[0] == 0 and steps[-1] == 200


def test_palette_contrast():
    assert text_colour(0.0) == "#ffffff" and text_colour(1.0) == "#000000"
    assert viridis_hex(0) == "#440154" and viridis_hex(1) == "#fde725"
    assert viridis_hex(float("nan")) == "#440154"


def test_legend_and_about_figure_are_static_markup():
    assert "viridis" in legend_html()
    svg = about_figure()
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert re.search(r"&lt;eos&gt;", svg)


def test_grid_text_line_is_the_answer_so_far_with_masks_as_boxes_escaped(trace_a):
    import dataclasses

    from dllm_viz.views.frame import frame_cells
    from dllm_viz.views.grid import live_text

    texts = [parse(render_grid(trace_a, k)) for k in (0, 1, 3)]
    lines = ["".join(p.text).split("text ", 1)[-1] for p in texts]  # the text line ends the grid
    assert lines[0] == "▢ ▢ ▢ ▢"
    assert lines[1] == "<script>alert(1)</script> ▢ ▢ ▢"  # shown as text …
    assert "&lt;script&gt;" in render_grid(trace_a, 1).split('class="dv-text"')[1]  # … escaped in the HTML
    # the committed end of sequence (position 3) ends the text; Metaspace's ▁ is a space
    cells = frame_cells(trace_a, 3)
    assert live_text(cells) == "<script>alert(1)</script> " + " ".join(c.text for c in cells[1:3])
    # word-level tokens (the built-in model's): spaces between words, none inside a number or before "."
    words = [dataclasses.replace(cells[0], text=t) for t in ("Tom", "has", "1", "5", "pens", ".")]
    assert live_text(words) == "Tom has 15 pens."
    # subword tokens carry their spaces: Metaspace's ▁ is a space, a mask is " ▢"
    sub = [dataclasses.replace(cells[0], text=t) for t in ("▁Tom", "▁has", "1")] + [frame_cells(trace_a, 0)[0]]
    assert live_text(sub) == "Tom has1 ▢"
