"""Commit-order map: which positions each denoising step committed, as a still picture.

Rows are steps (top = first), columns are generated positions; the token committed at a
position is written in the row of the step that committed it, shaded by its probability at
commit (viridis, as in the app). Tokens committed in the same row were drawn independently in
one forward pass — where a parallel decoder's mistakes come from — so the map shows at a glance
*what was decided together*. Trailing end-of-sequence columns are folded into one, so a short
answer in a long buffer stays readable. Drawn with Pillow: no browser, no plotting engine.

    python -m dllm_viz.generate --prompt "..." --strategy threshold --param threshold=0.5 --save-trace a.json
    python -m dllm_viz.views.commit_map a.json b.json --out commit-map.png
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

from ..blocks import setting_label
from ..trace import Trace
from .frame import display_text, frame_cells
from .gif import Font, gif_font
from .palette import text_colour, viridis_rgb

CELL_W, CELL_H, LABEL_W, PAD, HEAD_H = 30, 18, 54, 8, 34
WHITE, GREY, DARK, LIGHT = (255, 255, 255), (150, 150, 150), (40, 40, 40), (242, 242, 242)


def _shown_columns(trace: Trace) -> tuple[int, int]:
    """(number of columns shown, trailing EOS positions folded into the last one)."""
    final = frame_cells(trace, trace.num_steps)
    last = max((c.pos for c in final if not c.eos), default=-1)
    shown = min(trace.gen_length, last + 2)  # the answer and the first EOS after it
    return shown, trace.gen_length - shown


def _pane(trace: Trace, title: str, font: Font, ascii_for: dict[str, str]) -> Image.Image:
    cols, folded = _shown_columns(trace)
    rows = trace.num_steps
    width = PAD * 2 + LABEL_W + (cols + (1 if folded else 0)) * CELL_W
    img = Image.new("RGB", (width, HEAD_H + rows * CELL_H + PAD), WHITE)
    draw = ImageDraw.Draw(img)
    draw.text((PAD, 2), title, fill=DARK, font=font)
    draw.text(
        (PAD, 18),
        f"NFE {trace.steps[-1].nfe if trace.steps else 0} · rows: steps · columns: positions"
        + (f" (+{folded} trailing EOS folded)" if folded else ""),
        fill=GREY,
        font=font,
    )
    final = {c.pos: c for c in frame_cells(trace, trace.num_steps)}
    for step in range(rows):
        y = HEAD_H + step * CELL_H
        draw.text((PAD, y + 3), f"step {step + 1}", fill=GREY, font=font)
        for col in range(cols + (1 if folded else 0)):
            x = PAD + LABEL_W + col * CELL_W
            box = (x, y, x + CELL_W - 2, y + CELL_H - 2)
            positions = [col] if col < cols else list(range(cols, trace.gen_length))
            done_here = [p for p in positions if final[p].commit_step == step + 1]
            if not done_here:
                draw.rectangle(box, fill=LIGHT)
                continue
            cell = final[done_here[0]]
            draw.rectangle(box, fill=viridis_rgb(cell.prob))
            text = "∎" if cell.eos else display_text(cell.text)
            if col >= cols:
                text = f"∎×{len(done_here)}"
            for glyph, stand_in in ascii_for.items():
                text = text.replace(glyph, stand_in)
            ink = (0, 0, 0) if text_colour(cell.prob) == "#000000" else WHITE
            draw.text((x + 2, y + 2), text[:5], fill=ink, font=font)
    return img


def commit_map_image(panes: Sequence[tuple[str, Trace]]) -> Image.Image:
    """The commit-order maps of ``(title, trace)`` panes, stacked top to bottom."""
    if not panes:
        raise ValueError("nothing to draw: no pane given")
    font, ascii_for = gif_font()
    images = [_pane(trace, title, font, ascii_for) for title, trace in panes]
    out = Image.new("RGB", (max(i.width for i in images), sum(i.height for i in images)), WHITE)
    y = 0
    for image in images:
        out.paste(image, (0, y))
        y += image.height
    return out


def save_commit_map(panes: Sequence[tuple[str, Trace]], path: str | os.PathLike) -> Path:
    """Write :func:`commit_map_image` as a PNG."""
    path = Path(path)
    commit_map_image(panes).save(path)
    return path


def trace_title(trace: Trace) -> str:
    """``strategy (params) · setting → text`` for a pane heading."""
    strategy = dict(trace.strategy)
    name = strategy.pop("name", "strategy")
    params = ", ".join(f"{k}={v}" for k, v in strategy.items() if not isinstance(v, (dict, list)))
    setting = setting_label(trace.gen_length, trace.block_length)
    text = trace.text if len(trace.text) <= 90 else trace.text[:89] + "…"
    return f"{name}{f' ({params})' if params else ''} · {setting} → {text}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dllm_viz.views.commit_map", description=__doc__.splitlines()[0])
    parser.add_argument("traces", nargs="+", help="trace JSON files (python -m dllm_viz.generate --save-trace)")
    parser.add_argument("--out", required=True, help="PNG to write")
    args = parser.parse_args(argv)
    try:
        traces = [Trace.load(path) for path in args.traces]
    except (OSError, ValueError) as err:
        parser.exit(2, f"error: {err}\n")
    print(save_commit_map([(trace_title(t), t) for t in traces], args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
