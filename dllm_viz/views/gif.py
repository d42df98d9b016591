"""Animated GIF of a comparison: one frame per shown step, panes stacked, drawn with Pillow.

Frames are drawn straight into a fixed 256-colour palette (viridis shades + a few UI colours),
so saving needs no per-frame quantisation; long runs are subsampled to ``max_frames``.
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from ..trace import Trace
from .frame import display_text, frame_cells
from .palette import NEW_OUTLINE, _rgb, text_colour, viridis_rgb

CELL_W, CELL_H, GAP, COLS, HEAD_H, PAD = 44, 18, 2, 16, 18, 6
_SHADES = 200  # palette indices 0..199: viridis(i / 199)
WHITE, BLACK, GREY, LIGHT, OUTLINE, DARK = 200, 201, 202, 203, 204, 205


def _palette() -> list[int]:
    colours = [viridis_rgb(i / (_SHADES - 1)) for i in range(_SHADES)]
    colours += [(255, 255, 255), (0, 0, 0), (138, 138, 138), (238, 238, 238), _rgb(NEW_OUTLINE), (60, 60, 60)]
    colours += [(0, 0, 0)] * (256 - len(colours))
    return [c for rgb in colours for c in rgb]


def _shade(p: float) -> int:
    return round(min(max(p, 0.0), 1.0) * (_SHADES - 1))


def _fit(text: str, font, width: int) -> str:
    while text and font.getlength(text) > width:
        text = text[:-2] + "…" if len(text) > 1 else ""
    return text


def frame_steps(num_steps: int, max_frames: int) -> list[int]:
    """Steps to draw (0 … num_steps), evenly subsampled, always keeping both ends."""
    if num_steps + 1 <= max_frames:
        return list(range(num_steps + 1))
    return sorted({round(i * num_steps / (max_frames - 1)) for i in range(max_frames)})


def render_frames(panes: list[tuple[str, Trace | None]], max_frames: int = 64) -> list[Image.Image]:
    """One palette image per shown step for the given (label, trace) panes."""
    font = ImageFont.load_default(size=11)
    live = [(label, t) for label, t in panes if t is not None]
    if not live:
        raise ValueError("nothing to draw: no pane has a trace")
    L = max(t.gen_length for _, t in live)
    rows = -(-L // COLS)
    pane_h = HEAD_H + rows * (CELL_H + GAP) + PAD
    width, height = PAD * 2 + COLS * (CELL_W + GAP), PAD + pane_h * len(live)
    n = max(t.num_steps for _, t in live)
    palette = _palette()
    frames = []
    for k in frame_steps(n, max_frames):
        img = Image.new("P", (width, height), WHITE)
        img.putpalette(palette)
        draw = ImageDraw.Draw(img)
        for i, (label, trace) in enumerate(live):
            top = PAD + i * pane_h
            kk = min(k, trace.num_steps)
            nfe = trace.steps[kk - 1].nfe if kk else 0
            draw.text((PAD, top), f"{label} · step {kk}/{trace.num_steps} · NFE {nfe}", fill=DARK, font=font)
            for cell in frame_cells(trace, kk):
                r, c = divmod(cell.pos, COLS)
                x0, y0 = PAD + c * (CELL_W + GAP), top + HEAD_H + r * (CELL_H + GAP)
                box = (x0, y0, x0 + CELL_W - 1, y0 + CELL_H - 1)
                if cell.state == "committed":
                    draw.rectangle(box, fill=_shade(cell.prob))
                    ink = BLACK if text_colour(cell.prob) == "#000000" else WHITE
                else:
                    draw.rectangle(box, fill=LIGHT)
                    if cell.state == "masked":
                        draw.rectangle((x0, y0 + CELL_H - 3, x0 + CELL_W - 1, y0 + CELL_H - 1), fill=_shade(cell.prob))
                    ink = GREY
                if cell.new:
                    draw.rectangle(box, outline=OUTLINE, width=2)
                text = display_text(cell.text) if cell.state != "blank" else "▒"
                draw.text((x0 + 3, y0 + 3), _fit(text, font, CELL_W - 6), fill=ink, font=font)
        frames.append(img)
    return frames


def render_gif(panes: list[tuple[str, Trace | None]], path: str | os.PathLike, *, max_frames: int = 64,
               frame_ms: int = 150, hold_ms: int = 1500) -> Path:
    """Write the animated GIF of ``panes`` to ``path`` (the last frame is held ``hold_ms``)."""
    frames = render_frames(panes, max_frames)
    durations = [frame_ms] * (len(frames) - 1) + [hold_ms]
    path = Path(path)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations, loop=0, optimize=False)
    return path
