"""How a generation splits into blocks: the one rule for a block length, the semi-AR default and the
setting's name. Plain Python (no torch), so traces and views check and name settings without the engine.
"""

from __future__ import annotations

import reprlib

BLOCKS_PER_SEMI_AR = 8  # the paper's semi-AR setting: BL = L/8 (32 of 256)


def default_block_length(gen_length: int) -> int:
    """The semi-AR block length for L: L/8 when 8 divides L, else the largest divisor of L not above L/8."""
    target = max(1, gen_length // BLOCKS_PER_SEMI_AR)
    return next(b for b in range(target, 0, -1) if gen_length % b == 0)


def check_block_length(
    gen_length: int, block_length: object, names: tuple[str, str] = ("block_length", "gen_length")
) -> None:
    """The one rule for a block length: an integer in [1, L] that divides L.

    Every place that takes a block length (the engine config, the app's settings, the experts of
    expert steering, a loaded trace) checks it here, naming it as ``names`` = (BL's name, L's name)
    in the ValueError; a non-divisor gets the largest valid ones as a hint.
    """
    bl, gl = names
    if isinstance(block_length, bool) or not isinstance(block_length, int) or not 1 <= block_length <= gen_length:
        raise ValueError(f"{bl} ({reprlib.repr(block_length)}) must be an integer in [1, {gl}={gen_length}]")
    if gen_length % block_length:
        divisors = [d for d in range(1, gen_length + 1) if gen_length % d == 0][-6:]
        raise ValueError(f"{bl} ({block_length}) must divide {gl} ({gen_length}); e.g. {', '.join(map(str, divisors))}")


def setting_label(gen_length: int, block_length: int) -> str:
    """``"full diffusion"`` when BL = L, else ``"semi-AR BL=<BL>"``."""
    return "full diffusion" if block_length == gen_length else f"semi-AR BL={block_length}"
