"""Strategy parameters declared once, on the dataclass field: type, default, range and help.

``field(default=0.9, metadata=param("λ …", low=0, high=1))`` on a strategy's field is read by
:func:`schema` into :class:`Param` records; the registry, the app's controls and the CLI's flags
are built from them, so no table elsewhere repeats a strategy's parameters.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from typing import Any


def param(
    help: str,
    *,
    low: float | None = None,
    high: float | None = None,
    choices: tuple[str, ...] | None = None,
    advanced: bool = False,
    symbol: str = "",
) -> dict[str, Any]:
    """Metadata for a strategy's dataclass field: ``x: float = field(default=…, metadata=param(…))``.

    ``low``/``high`` bound what controls offer (each strategy's ``validate`` keeps the exact rule,
    e.g. an open interval); ``advanced`` parameters get a CLI flag but no
    app control; ``symbol`` is the paper's name (λ, γ, τ_π) for labels.
    """
    return {
        "param": {"help": help, "low": low, "high": high, "choices": choices, "advanced": advanced, "symbol": symbol}
    }


@dataclass(frozen=True)
class Param:
    """One strategy parameter: what a control or a flag needs to offer it and check it."""

    name: str
    type: type
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] | None = None
    optional: bool = False  # None is a value (``steps=None``: one token per step)
    advanced: bool = False
    symbol: str = ""

    def coerce(self, value: Any) -> Any:
        """``value`` as this parameter's type, from JSON, a CLI string or a UI number (ValueError naming it).

        Only the type is checked here: each strategy's ``validate`` (or config) owns the exact rule
        for ranges and choices, with its own message. Integral floats become ints (UI numbers arrive
        as floats); ints stay ints for float parameters, so a spec written by hand reads back as written.
        """
        if value is None:
            if self.optional:
                return None
            raise ValueError(f"{self.name} must be given (no default of None)")
        if isinstance(value, bool):
            raise ValueError(f"{self.name} ({value!r}) must be {self.type.__name__}, not a boolean")
        if isinstance(value, str) and self.type is not str:
            try:
                value = float(value)
            except ValueError:
                raise ValueError(f"{self.name} ({value!r}) must be a number") from None
        if self.type is int:
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value != int(value):
                raise ValueError(f"{self.name} ({value!r}) must be an integer")
            value = int(value)
        elif self.type is float:
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{self.name} ({value!r}) must be a finite number")
        elif not isinstance(value, str):
            raise ValueError(f"{self.name} ({value!r}) must be text")
        return value


def schema(cls: type) -> tuple[Param, ...]:
    """The :class:`Param` records of a dataclass's fields declared with :func:`param`, in field order."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        meta = f.metadata.get("param")
        if meta is None:
            continue
        hint, optional = hints[f.name], False
        if isinstance(hint, types.UnionType):  # ``int | None``
            args = [a for a in typing.get_args(hint) if a is not type(None)]
            hint, optional = args[0], len(args) < len(typing.get_args(hint))
        out.append(Param(f.name, hint, f.default, optional=optional, **meta))
    return tuple(out)
