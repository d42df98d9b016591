"""The commit-order map: one row per step, each token drawn in the row of the step that committed it."""

from __future__ import annotations

from PIL import Image

from dllm_viz.trace import Trace, TraceStep
from dllm_viz.views.commit_map import CELL_H, CELL_W, HEAD_H, LABEL_W, PAD, commit_map_image, main, trace_title

VOCAB = {"0": "[MASK]", "1": "[EOS]", "2": "7", "3": "+", "4": "cat"}
LIGHT = (242, 242, 242)


def _trace(L=8):
    def step(i, committed, nfe):
        proposed = [2, 3, 4] + [1] * (L - 3)
        conf = [0.9, 0.5, 0.3] + [0.99] * (L - 3)
        return TraceStep(
            step=i,
            nfe=nfe,
            block=0,
            committed=committed,
            confidence=conf,
            proposed=proposed,
            topk_ids=[[p] for p in proposed],
            topk_probs=[[c] for c in conf],
        )

    # step 1: every trailing EOS (the confident ones) and position 0; step 2: positions 1 and 2 together
    steps = [step(0, [0, *range(3, L)], 1), step(1, [1, 2], 2)]
    return Trace(
        model="handmade",
        prompt="q",
        prompt_ids=[4],
        gen_length=L,
        block_length=L,
        mask_id=0,
        eos_id=1,
        strategy={"name": "threshold", "threshold": 0.5},
        engine={},
        steps=steps,
        vocab=dict(VOCAB),
        text="7 + cat",
    )


def _cell(img: Image.Image, step: int, col: int):
    return img.getpixel((PAD + LABEL_W + col * CELL_W + CELL_W // 2, HEAD_H + step * CELL_H + CELL_H - 4))


def test_each_token_is_drawn_in_the_row_of_its_commit_step_and_trailing_eos_fold():
    img = commit_map_image([("pane", _trace())])
    # columns: positions 0-2, the first EOS (3), then one folded column for EOS 4-7
    assert img.height == HEAD_H + 2 * CELL_H + PAD and img.width == PAD * 2 + LABEL_W + 5 * CELL_W
    assert _cell(img, 0, 0) != LIGHT and _cell(img, 1, 0) == LIGHT  # position 0: step 1 only
    assert _cell(img, 0, 1) == LIGHT and _cell(img, 1, 1) != LIGHT and _cell(img, 1, 2) != LIGHT  # 1, 2: step 2
    assert _cell(img, 0, 4) != LIGHT and _cell(img, 1, 4) == LIGHT  # folded EOS column: step 1


def test_panes_stack_and_the_cli_renders_saved_traces(tmp_path):
    one = commit_map_image([("a", _trace())])
    two = commit_map_image([("a", _trace()), ("b", _trace(L=16))])
    assert two.height == 2 * one.height
    path = tmp_path / "t.json"
    _trace().save(path)
    assert main([str(path), "--out", str(tmp_path / "map.png")]) == 0
    assert Image.open(tmp_path / "map.png").size == one.size
    assert trace_title(_trace()) == "threshold (threshold=0.5) · full diffusion → 7 + cat"
