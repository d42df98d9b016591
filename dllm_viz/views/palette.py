"""Colour-blind-safe colours shared by the token grid, the heatmaps and the GIF.

Confidence uses viridis (perceptually uniform, readable with every common colour-vision
deficiency and in greyscale); the same ten stops as plotly's ``Viridis`` so the grid and
the heatmaps agree. Accents come from the Okabe–Ito palette.
"""

from __future__ import annotations

VIRIDIS = ("#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725")
NEW_OUTLINE = "#D55E00"  # Okabe–Ito vermillion: tokens committed at the shown step
DIVERGENCE = "#CC79A7"  # Okabe–Ito reddish purple: first step where A and B differ
PANE_COLOURS = {"a": "#0072B2", "b": "#E69F00"}  # Okabe–Ito blue / orange for curves
MASK_FILL = "#eeeeee"


def hex_rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


_STOPS = [hex_rgb(c) for c in VIRIDIS]


def viridis_rgb(value: float) -> tuple[int, int, int]:
    """RGB of ``value`` in [0, 1] (clipped; NaN counts as 0), linear between the stops."""
    v = 0.0 if value != value else min(max(float(value), 0.0), 1.0)
    x = v * (len(_STOPS) - 1)
    i = min(int(x), len(_STOPS) - 2)
    t = x - i
    lo, hi = _STOPS[i], _STOPS[i + 1]
    r, g, b = (round(a + (z - a) * t) for a, z in zip(lo, hi, strict=True))
    return r, g, b


def viridis_hex(value: float) -> str:
    r, g, b = viridis_rgb(value)
    return f"#{r:02x}{g:02x}{b:02x}"


def text_colour(value: float) -> str:
    """Black or white, whichever reads better on ``viridis(value)`` (relative luminance)."""
    r, g, b = viridis_rgb(value)
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return "#000000" if luminance > 110 else "#ffffff"


def plotly_colorscale() -> list[list]:
    """The viridis stops as a plotly colorscale."""
    n = len(VIRIDIS) - 1
    return [[i / n, c] for i, c in enumerate(VIRIDIS)]
