"""The token grid: one pane's canvas after ``k`` steps, as an HTML string for ``gr.HTML``.

Every token string is HTML-escaped (``gr.HTML`` does not sanitise), including tooltips.
Committed tokens are filled with viridis(confidence at commit); still-masked positions show
the current argmax faintly, with a bar coloured by its current confidence; tokens committed at
the shown step get a vermillion outline; a gap and a rule mark block boundaries.
"""

from __future__ import annotations

import re
from html import escape

from ..trace import Trace
from .frame import Cell, clamp_step, display_text, frame_cells
from .palette import MASK_FILL, NEW_OUTLINE, VIRIDIS, text_colour, viridis_hex

GRID_CSS = f"""
.dv-grid {{ font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px;
  line-height: 1.9; padding: 6px; border: 1px solid #d0d0d0; border-radius: 6px; min-height: 3em;
  max-height: 30em; overflow-y: auto; }}
.dv-head {{ font-family: system-ui, sans-serif; font-size: 12px; color: #444; margin-bottom: 4px; }}
.dv-tok {{ display: inline-block; padding: 0 4px; margin: 1px; border-radius: 3px; white-space: pre;
  border: 2px solid transparent; min-width: 1.2em; text-align: center; cursor: default; }}
.dv-masked {{ background: {MASK_FILL}; color: #8a8a8a; font-style: italic; border-bottom-width: 4px; }}
.dv-blank {{ background: {MASK_FILL}; color: #b0b0b0; }}
.dv-new {{ border-color: {NEW_OUTLINE}; box-shadow: 0 0 0 1px {NEW_OUTLINE}; }}
.dv-eos {{ opacity: 0.75; }}
.dv-bsep {{ display: inline-block; width: 0; height: 1.5em; vertical-align: middle; margin: 0 5px;
  border-left: 2px dashed #777; }}
.dv-legend {{ font-family: system-ui, sans-serif; font-size: 12px; color: #333; display: flex; gap: 14px;
  flex-wrap: wrap; align-items: center; }}
.dv-legend .dv-bar {{ display: inline-block; width: 140px; height: 12px; vertical-align: middle;
  background: linear-gradient(to right, {", ".join(VIRIDIS)}); border: 1px solid #999; }}
.dv-empty {{ color: #777; font-family: system-ui, sans-serif; }}
.dv-text {{ font-family: system-ui, sans-serif; font-size: 13px; line-height: 1.4; margin-top: 4px;
  padding-top: 4px; border-top: 1px solid #e4e4e4; white-space: pre-wrap; word-break: break-word; }}
.dv-text-label {{ font-weight: 500; color: #666; margin-right: 4px; }}
"""

MASK_GLYPH = "▒"
EOS_GLYPH = "∎"  # end of sequence: everything after it is padding, so keep it small


def render_grid(trace: Trace | None, step: int, *, pane: str = "a", title: str = "") -> str:
    """HTML for ``trace`` after ``step`` steps (0 = all masked); ``None`` gives an empty pane.

    The root ``div`` carries ``data-pane``, ``data-step``, ``data-committed``, ``data-masked``
    and ``data-new`` for tests and scripts.
    """
    if trace is None:
        return f'<div class="dv-grid dv-empty" data-pane="{escape(pane)}" data-step="0">No run yet.</div>'
    k = clamp_step(trace, step)
    cells = frame_cells(trace, k)
    committed = sum(c.state == "committed" for c in cells)
    new = sum(c.new for c in cells)
    nfe = trace.steps[k - 1].nfe if k else 0
    head = f"{title} · " if title else ""
    parts = [
        f'<div class="dv-grid" data-pane="{escape(pane)}" data-step="{k}" data-committed="{committed}" '
        f'data-masked="{len(cells) - committed}" data-new="{new}">',
        f'<div class="dv-head">{escape(head)}step {k}/{trace.num_steps} · NFE {nfe} · '
        f"{committed}/{len(cells)} committed · +{new} this step</div>",
    ]
    for cell in cells:
        if cell.pos and trace.block_length < trace.gen_length and cell.pos % trace.block_length == 0:
            parts.append('<span class="dv-bsep" aria-hidden="true"></span>')
        parts.append(_cell_html(cell))
    text = live_text(cells)
    parts.append('<div class="dv-text" title="the answer as it stands at this step; ▢ = still masked">')
    parts.append(f'<span class="dv-text-label">text</span> {escape(text) or "∅"}</div></div>')
    return "".join(parts)


SPACE_MARKS = str.maketrans({"▁": " ", "Ġ": " ", "Ċ": "\n"})  # SentencePiece/Metaspace and byte-level BPE
TEXT_MASK = "▢"
NO_SPACE_BEFORE = tuple(".,;:!?%)")


def live_text(cells: list[Cell]) -> str:
    """The answer as it stands: committed tokens' text, each masked position as ▢, up to the
    first committed end of sequence (what follows is padding).

    Subword tokens carry their own spaces (▁, Ġ, a leading blank); word-level tokens (the built-in
    model's) carry none, so they are joined by spaces, except digits of one number and before
    punctuation, as its tokenizer's decoder does.
    """
    pieces = []
    for cell in cells:
        if cell.state == "committed" and cell.eos:
            break
        pieces.append(cell.text if cell.state == "committed" else None)
    subword = any(p and p[0] in " ▁Ġ" for p in pieces)
    out: list[str] = []
    previous: str | None = None
    for piece in pieces:
        if subword:
            out.append(f" {TEXT_MASK}" if piece is None else piece.translate(SPACE_MARKS))
        else:
            word = TEXT_MASK if piece is None else piece
            glued = previous is not None and (
                (previous[-1:].isdigit() and word[:1].isdigit()) or word.startswith(NO_SPACE_BEFORE)
            )
            out.append(word if glued or not out else f" {word}")
            previous = word
    return re.sub(" {2,}", " ", "".join(out)).strip()


def _cell_html(cell: Cell) -> str:
    tip = escape(tooltip(cell), quote=True)
    if cell.state == "blank":
        return f'<span class="dv-tok dv-blank" data-pos="{cell.pos}" title="{tip}">{MASK_GLYPH}</span>'
    text = EOS_GLYPH if cell.eos else escape(display_text(cell.text))
    colour = viridis_hex(cell.prob)
    classes = ["dv-tok", f"dv-{cell.state}"] + (["dv-new"] if cell.new else []) + (["dv-eos"] if cell.eos else [])
    if cell.state == "committed":
        style = f"background:{colour};color:{text_colour(cell.prob)}"
    else:
        style = f"border-bottom-color:{colour}"
    return (
        f'<span class="{" ".join(classes)}" data-pos="{cell.pos}" data-p="{cell.prob:.3f}" '
        f'style="{style}" title="{tip}">{text}</span>'
    )


def tooltip(cell: Cell) -> str:
    """Plain-text tooltip: position, block, commit step and probability, top-k alternatives."""
    lines = [f"position {cell.pos} · block {cell.block}" + (f" · {cell.text} = end of sequence" if cell.eos else "")]
    bound = "≤ " if cell.approx else ""
    if cell.state == "committed":
        lines.append(f"committed at step {cell.commit_step} with p = {bound}{cell.prob:.3f}")
    elif cell.state == "masked":
        lines.append(f"still masked; current argmax p = {cell.prob:.3f}")
    else:
        lines.append("masked; no forward pass yet")
    if cell.topk:
        lines.append("top-k: " + " · ".join(f"{display_text(t)!r} {p:.3f}" for t, p in cell.topk))
    return "\n".join(lines)


def legend_html() -> str:
    """Legend for the grid colours (static)."""
    return (
        '<div class="dv-legend">'
        '<span>confidence 0 <span class="dv-bar"></span> 1 (viridis, colour-blind safe)</span>'
        '<span><span class="dv-tok" style="background:#35b779">tok</span> committed, filled by p at commit</span>'
        '<span><span class="dv-tok dv-masked" style="border-bottom-color:#31688e">tok</span> still masked: '
        "current argmax, bar = its p</span>"
        f'<span><span class="dv-tok dv-new" style="background:#b5de2b">tok</span> committed this step</span>'
        f'<span><span class="dv-tok dv-committed" style="background:#fde725">{EOS_GLYPH}</span> end of sequence</span>'
        '<span><span class="dv-bsep"></span> block boundary</span>'
        "<span>hover a token for top-k alternatives</span>"
        "</div>"
    )
