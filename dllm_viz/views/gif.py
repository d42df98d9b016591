"""Animated GIF of a comparison: one frame per shown step, panes stacked, drawn with Pillow.

Frames are drawn straight into a fixed 256-colour palette (viridis shades + a few UI colours),
so saving needs no per-frame quantisation; long runs are subsampled to ``max_frames``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from ..trace import Trace
from .frame import display_text, frame_cells
from .palette import NEW_OUTLINE, hex_rgb, text_colour, viridis_rgb
from .stats import Verdict, verdict_words

CELL_W, CELL_H, GAP, COLS, HEAD_H, PAD, FONT_PX = 56, 22, 2, 16, 22, 8, 14  # readable when shown small
LEGEND_H = 26
LEGEND = "fill = confidence at commit (dark: low, yellow: high) · grey = still masked · outlined = committed this step"
_SHADES = 200  # palette indices 0..199: viridis(i / 199)
WHITE, BLACK, GREY, LIGHT, OUTLINE, DARK = 200, 201, 202, 203, 204, 205
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont  # DejaVu, or Pillow's bundled fallback


FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
)  # Debian fonts-dejavu-core


def gif_font() -> tuple[Font, dict[str, str]]:
    """DejaVu when installed (it has ∎ ▒ ␣ ⏎), else Pillow's bundled font with ASCII stand-ins."""
    for path in FONT_CANDIDATES:
        if os.path.exists(path):
            return ImageFont.truetype(path, FONT_PX), {}
    return ImageFont.load_default(size=FONT_PX), {
        "∎": "eos", "▒": "[M]", "␣": "_", "⏎": "\\n", "⇥": "\\t", "∅": "''", "✓": "OK", "✗": "X",
    }  # fmt: skip


def _palette() -> list[int]:
    colours = [viridis_rgb(i / (_SHADES - 1)) for i in range(_SHADES)]
    colours += [(255, 255, 255), (0, 0, 0), (138, 138, 138), (238, 238, 238), hex_rgb(NEW_OUTLINE), (60, 60, 60)]
    colours += [(0, 0, 0)] * (256 - len(colours))
    return [c for rgb in colours for c in rgb]


def _shade(p: float) -> int:
    return round(min(max(p, 0.0), 1.0) * (_SHADES - 1))


def _fit(text: str, font: Font, width: int) -> str:
    while text and font.getlength(text) > width:
        text = text[:-2] + "…" if len(text) > 1 else ""
    return text


def frame_steps(num_steps: int, max_frames: int) -> list[int]:
    """Steps to draw (0 … num_steps), evenly subsampled, always keeping both ends."""
    if num_steps + 1 <= max_frames:
        return list(range(num_steps + 1))
    return sorted({round(i * num_steps / (max_frames - 1)) for i in range(max_frames)})


class _TextStamps:
    """Antialiased text masks rendered once per distinct string (FreeType rendering dominates
    otherwise: a 64-step, two-pane GIF draws ~8k cell labels)."""

    def __init__(self, font: Font, width: int):
        self.font, self.width = font, width
        self._masks: dict[str, Image.Image] = {}

    def mask(self, text: str) -> Image.Image:
        m = self._masks.get(text)
        if m is None:
            fitted = _fit(text, self.font, self.width)
            m = Image.new("L", (self.width, CELL_H))
            ImageDraw.Draw(m).text((0, 3), fitted, fill=255, font=self.font)
            self._masks[text] = m
        return m


def pane_captions(label: str, trace: Trace, k: int, verdict: Verdict | None = None) -> tuple[str, str]:
    """The words drawn above and below a pane's grid at step ``k``: its heading, and once the run
    has finished, the final answer and its check (the words of the app's stats line)."""
    kk = min(k, trace.num_steps)
    nfe = trace.steps[kk - 1].nfe if kk else 0
    foot = ""
    if verdict is not None and kk == trace.num_steps:
        foot = f"final answer {verdict.answer or '∅'} · {verdict_words(verdict)[1]}"
    return f"{label} · step {kk}/{trace.num_steps} · NFE {nfe}", foot


def render_frames(
    panes: list[tuple[str, Trace | None]], max_frames: int = 64, verdicts: Sequence[Verdict | None] = ()
) -> list[Image.Image]:
    """One palette image per shown step for the given (label, trace) panes; with ``verdicts`` (one
    per pane), each pane's last frame says its final answer and whether it is right."""
    font, ascii_for = gif_font()
    checks = list(verdicts) + [None] * (len(panes) - len(verdicts))
    live = [(label, t, v) for (label, t), v in zip(panes, checks, strict=True) if t is not None]
    if not live:
        raise ValueError("nothing to draw: no pane has a trace")
    L = max(t.gen_length for _, t, _ in live)
    rows = -(-L // COLS)
    foot_h = HEAD_H if any(v is not None for *_, v in live) else 0
    pane_h = HEAD_H + rows * (CELL_H + GAP) + foot_h + PAD
    width, height = PAD * 2 + COLS * (CELL_W + GAP), PAD + pane_h * len(live) + LEGEND_H
    n = max(t.num_steps for _, t, _ in live)
    palette_img = Image.new("P", (1, 1))
    palette_img.putpalette(_palette())
    colours = [tuple(_palette()[3 * i : 3 * i + 3]) for i in range(256)]
    stamps = _TextStamps(font, CELL_W - 6)
    frames = []
    for k in frame_steps(n, max_frames):
        img = Image.new("RGB", (width, height), colours[WHITE])
        draw = ImageDraw.Draw(img)
        for i, (label, trace, verdict) in enumerate(live):
            top = PAD + i * pane_h
            kk = min(k, trace.num_steps)
            head, foot = (_ascii(t, ascii_for) for t in pane_captions(label, trace, k, verdict))
            draw.text((PAD, top), head, fill=colours[DARK], font=font)
            if foot:
                foot_top = top + HEAD_H + rows * (CELL_H + GAP) + 2
                draw.text((PAD, foot_top), _fit(foot, font, width - 2 * PAD), fill=colours[DARK], font=font)
            for cell in frame_cells(trace, kk):
                r, c = divmod(cell.pos, COLS)
                x0, y0 = PAD + c * (CELL_W + GAP), top + HEAD_H + r * (CELL_H + GAP)
                box = (x0, y0, x0 + CELL_W - 1, y0 + CELL_H - 1)
                if cell.state == "committed":
                    draw.rectangle(box, fill=colours[_shade(cell.prob)])
                    ink = BLACK if text_colour(cell.prob) == "#000000" else WHITE
                else:
                    draw.rectangle(box, fill=colours[LIGHT])
                    if cell.state == "masked":
                        draw.rectangle(
                            (x0, y0 + CELL_H - 3, x0 + CELL_W - 1, y0 + CELL_H - 1), fill=colours[_shade(cell.prob)]
                        )
                    ink = GREY
                if cell.new:
                    draw.rectangle(box, outline=colours[OUTLINE], width=2)
                text = "▒" if cell.state == "blank" else "∎" if cell.eos else display_text(cell.text)
                img.paste(colours[ink], (x0 + 3, y0), stamps.mask(_ascii(text, ascii_for)))
        _legend(draw, font, colours, height - LEGEND_H, width)
        # a fixed palette without dithering: the same colour always maps to the same index
        frames.append(img.quantize(palette=palette_img, dither=Image.Dither.NONE))
    return frames


def _ascii(text: str, stand_ins: dict[str, str]) -> str:
    """``text`` with the glyphs the fallback font lacks replaced (nothing to do with DejaVu)."""
    for glyph, stand_in in stand_ins.items():
        text = text.replace(glyph, stand_in)
    return text


def _legend(draw: ImageDraw.ImageDraw, font: Font, colours: Sequence[tuple[int, ...]], top: int, width: int) -> None:
    """A colour bar and the key to the cell styles, on every frame."""
    bar_w = 120
    for i in range(bar_w):
        draw.line((PAD + i, top + 6, PAD + i, top + 18), fill=colours[_shade(i / (bar_w - 1))])
    draw.text((PAD + bar_w + 8, top + 5), _fit(LEGEND, font, width - bar_w - 3 * PAD), fill=colours[DARK], font=font)


def render_gif(
    panes: list[tuple[str, Trace | None]],
    path: str | os.PathLike,
    *,
    max_frames: int = 64,
    frame_ms: int = 150,
    hold_ms: int = 1500,
    verdicts: Sequence[Verdict | None] = (),
) -> Path:
    """Write the animated GIF of ``panes`` to ``path`` (the last frame is held ``hold_ms``)."""
    frames = render_frames(panes, max_frames, verdicts)
    durations = [frame_ms] * (len(frames) - 1) + [hold_ms]
    path = Path(path)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations, loop=0, optimize=False)
    return path
