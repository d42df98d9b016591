"""Static teaching figures for the About tab (inline SVG, no external assets)."""

from __future__ import annotations

from html import escape

from .palette import MASK_FILL, NEW_OUTLINE, viridis_hex

# A toy 8-token answer revealed over 4 steps in 2 blocks of 4 (semi-AR): step → committed positions.
_TOKENS = ["Tom", "has", "7", "apples", ".", "####", "7", "<eos>"]
_STEPS = [[0, 2], [1, 3], [4, 5, 6], [7]]
_CONF = [0.95, 0.7, 0.9, 0.75, 0.85, 0.92, 0.97, 0.99]


def _canvas_rows(x0: int, y0: int) -> list[str]:
    out, cw, ch = [], 54, 24
    done: set[int] = set()
    for r, new in enumerate([[]] + _STEPS):
        done |= set(new)
        y = y0 + r * (ch + 10)
        out.append(f'<text x="{x0 - 8}" y="{y + 16}" text-anchor="end" class="lbl">step {r}</text>')
        for i, tok in enumerate(_TOKENS):
            x = x0 + i * (cw + 4) + (10 if i >= 4 else 0)
            if i in done:
                fill, ink, text = viridis_hex(_CONF[i]), "#000" if _CONF[i] > 0.55 else "#fff", tok
            else:
                fill, ink, text = MASK_FILL, "#999", "[M]"
            stroke = f' stroke="{NEW_OUTLINE}" stroke-width="2.5"' if i in new else ' stroke="#bbb"'
            out.append(f'<rect x="{x}" y="{y}" width="{cw}" height="{ch}" rx="4" fill="{fill}"{stroke}/>')
            out.append(
                f'<text x="{x + cw / 2}" y="{y + 16}" text-anchor="middle" fill="{ink}" class="tok">'
                f"{escape(text)}</text>"
            )
    bx = x0 + 4 * (cw + 4) + 3
    out.append(
        f'<line x1="{bx}" y1="{y0 - 6}" x2="{bx}" y2="{y0 + 5 * (ch + 10) - 6}" stroke="#777" stroke-dasharray="4 3"/>'
    )
    out.append(
        f'<text x="{x0}" y="{y0 - 12}" class="lbl">block 1</text>'
        f'<text x="{bx + 8}" y="{y0 - 12}" class="lbl">block 2 (starts once block 1 is full)</text>'
    )
    return out


def _box(x: int, y: int, w: int, h: int, title: str, sub: str, fill: str) -> str:
    return (
        f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="8" fill="{fill}" stroke="#555"/>'
        f'<text x="{x + w / 2}" y="{y + 20}" text-anchor="middle" class="hd">{escape(title)}</text>'
        f'<text x="{x + w / 2}" y="{y + 38}" text-anchor="middle" class="lbl">{escape(sub)}</text>'
    )


def _arrow(x1: int, y1: int, x2: int, y2: int, label: str = "") -> str:
    mid = f'<text x="{(x1 + x2) / 2}" y="{(y1 + y2) / 2 - 6}" text-anchor="middle" class="lbl">{escape(label)}</text>'
    return (
        f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#333" stroke-width="1.6" marker-end="url(#arr)"/>' + mid
    )


def about_figure() -> str:
    """An SVG with the decoding canvas over steps (left) and the MDP loop (right)."""
    parts = [
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1110 230" width="100%" role="img" '
        'aria-label="Masked diffusion decoding as a sequence of unmasking decisions">',
        '<defs><marker id="arr" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto">'
        '<path d="M0,0 L8,4 L0,8 z" fill="#333"/></marker>'
        "<style>.tok{font:12px ui-monospace,monospace}.lbl{font:11px system-ui,sans-serif;fill:#444}"
        ".hd{font:600 13px system-ui,sans-serif;fill:#222}</style></defs>",
        *_canvas_rows(60, 34),
        _box(580, 20, 200, 50, "state s_t", "prompt + partly masked y_t", "#f4f4f4"),
        _box(900, 20, 200, 50, "frozen dLLM", "one forward pass = 1 NFE", "#e8f1fa"),
        _box(900, 150, 200, 50, "policy π_φ or heuristic", "which positions to unmask", "#fdf0e0"),
        _box(580, 150, 200, 50, "commit", "write the chosen tokens", "#eef7ee"),
        _arrow(780, 45, 898, 45, "scores all"),
        _arrow(1000, 70, 1000, 148, ""),
        '<text x="1008" y="106" class="lbl">confidence</text><text x="1008" y="120" class="lbl">c_t</text>',
        _arrow(898, 175, 782, 175, "action u_t"),
        _arrow(680, 150, 680, 72, ""),
        '<text x="688" y="114" class="lbl">next step</text>',
        '<text x="580" y="222" class="lbl">ends when nothing is masked; then the reward R (see the text below)</text>',
        "</svg>",
    ]
    return "".join(parts)
