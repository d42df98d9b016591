"""What a learned policy was trained for and the test-time knobs validated for it: ``trained_for.json``.

A policy learns a decoding setting (semi-AR blocks of 8, or full diffusion over all L positions):
run in the other one it decides badly without any error (a semi-AR policy in full diffusion
commits most of the answer at once). The file sits beside ``config.json`` and
``model.safetensors``; it is separate from :class:`~.config.PolicyConfig`, which describes the
network, so old policy folders (and old readers) keep working. A folder without it gets the
strategy's own defaults and no setting check.

Example ``trained_for.json``::

    {"gen_length": 64, "block_length": 8, "temperature": 0.5, "beta": 1.0}
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

TRAINED_FOR_NAME = "trained_for.json"
MAX_BYTES = 4096  # four numbers; anything larger is not this file
MAX_LENGTH = 1 << 16
KNOB_RANGES = {"temperature": (0.05, 5.0), "beta": (0.05, 10.0)}  # the learned strategy's own ranges


@dataclass(frozen=True)
class TrainedFor:
    """The setting a policy was trained in, and its τ_π and β chosen on validation.

    Attributes:
        gen_length: L, the answer length it was trained at.
        block_length: its block length; equal to ``gen_length`` for full diffusion.
        temperature: τ_π chosen on the validation split (the learned strategy's ``temperature``).
        beta: β chosen on the validation split.
    """

    gen_length: int
    block_length: int
    temperature: float = 1.0
    beta: float = 1.0

    def __post_init__(self) -> None:
        for name in ("gen_length", "block_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LENGTH:
                raise ValueError(f"`{name}` ({value!r:.40}) must be a whole number between 1 and {MAX_LENGTH}")
        if self.gen_length % self.block_length:
            raise ValueError(f"`block_length` ({self.block_length}) must divide `gen_length` ({self.gen_length})")
        for name, (low, high) in KNOB_RANGES.items():
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if not ok or not low <= value <= high:
                raise ValueError(f"`{name}` ({value!r:.40}) must be a number between {low:g} and {high:g}")

    @property
    def full_diffusion(self) -> bool:
        return self.block_length == self.gen_length

    @property
    def setting(self) -> str:
        """The setting in words: "semi-AR (block length 8, L = 64)" or "full diffusion (L = 64)"."""
        return describe_setting(self.gen_length, self.block_length)

    @property
    def knobs(self) -> dict[str, float]:
        """The learned strategy's parameters it sets: ``{"temperature": τ_π, "beta": β}``."""
        return {"temperature": self.temperature, "beta": self.beta}

    def mismatch(self, gen_length: int, block_length: int) -> str | None:
        """None when a run at (``gen_length``, ``block_length``) is in the trained setting, else a
        sentence saying how it differs. The setting is semi-AR with this block length, or full
        diffusion; another L alone is not a mismatch (blocks of 8 read the same at L = 32 or 128)."""
        full = block_length == gen_length
        if full == self.full_diffusion and (full or block_length == self.block_length):
            return None
        return f"trained for {self.setting}, running in {describe_setting(gen_length, block_length)}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> TrainedFor:
        """Inverse of :meth:`to_dict`; unknown or missing keys raise, naming them."""
        if not isinstance(data, dict):
            raise TypeError(f"{TRAINED_FOR_NAME} must hold a JSON object, not {type(data).__name__}")
        known = [f.name for f in fields(cls)]
        unknown = sorted(str(k)[:40] for k in data if k not in known)
        if unknown:
            raise ValueError(f"unknown keys {unknown[:5]} in {TRAINED_FOR_NAME}; known: {known}")
        missing = [k for k in ("gen_length", "block_length") if k not in data]
        if missing:
            raise ValueError(f"{TRAINED_FOR_NAME} lacks {missing}")
        return cls(**data)


def describe_setting(gen_length: int, block_length: int) -> str:
    """A decoding setting in words, as the app and the cards say it."""
    if block_length == gen_length:
        return f"full diffusion (L = {gen_length})"
    return f"semi-AR (block length {block_length}, L = {gen_length})"


def read_trained_for(folder: str | os.PathLike) -> TrainedFor | None:
    """The folder's :class:`TrainedFor`, or None when it has no ``trained_for.json``.

    Raises:
        ValueError / TypeError: the file exists but is too large, not JSON, or out of range.
    """
    path = Path(folder) / TRAINED_FOR_NAME
    if not path.is_file():
        return None
    if path.stat().st_size > MAX_BYTES:
        raise ValueError(f"{TRAINED_FOR_NAME} is {path.stat().st_size} bytes; it is at most {MAX_BYTES}")
    try:
        data = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{TRAINED_FOR_NAME} is not valid JSON ({err})") from None
    return TrainedFor.from_dict(data)


def write_trained_for(folder: str | os.PathLike, trained_for: TrainedFor) -> Path:
    """Write ``trained_for.json`` into ``folder``; returns its path."""
    path = Path(folder) / TRAINED_FOR_NAME
    path.write_text(json.dumps(trained_for.to_dict(), indent=2) + "\n")
    return path
