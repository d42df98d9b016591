"""Command-line flags generated from config dataclasses, so a default or a help text lives in one place.

Each field becomes ``--field-name`` (or its metadata ``flag``, which keeps an older, shorter name
such as ``--lr`` working); the type comes from the annotation, the default from the field and the
help from its metadata. A nested dataclass field contributes its own fields' flags. A boolean that
defaults to True becomes ``--no-<name>``. Tuples take several values (``nargs``, from metadata or
the annotation's arity), or with metadata ``repeatable`` one value per use (``--policy a --policy b``).
Metadata ``aliases`` gives a flag more names, ``choices`` its allowed values. Metadata ``type``
names a function that reads the field from one value
instead (``"0.6,0.3,0.1"`` → a tuple, ``"confidence,steps=8"`` → a strategy spec).

Every command's flags come from here (``rl``, ``tiny``, ``eval``, the app's maintenance commands),
so it sits outside any of them.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any


def _flag(f: dataclasses.Field, default: Any) -> str:
    name = f.metadata.get("flag", "--" + f.name.replace("_", "-"))
    return "--no-" + name[2:] if default is True else name


def _dest(f: dataclasses.Field, default: Any) -> str:
    return _flag(f, default)[2:].replace("-", "_")


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _nested(f: dataclasses.Field, kind: Any) -> bool:
    """A config dataclass whose fields are flags (one with metadata ``type`` is a single value)."""
    return dataclasses.is_dataclass(kind) and "type" not in f.metadata


def _walk(cls: type) -> typing.Iterator[tuple[dataclasses.Field, Any, Any]]:
    """(field, resolved annotation, default) of every flag-bearing field, nested ones flattened."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        if _nested(f, kind):
            yield from _walk(typing.cast(type, kind))
        else:
            yield f, kind, _default(f)


def add_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """One flag per field of ``cls`` (and of its nested config dataclasses)."""
    for f, kind, default in _walk(cls):
        kwargs: dict[str, Any] = {"dest": _dest(f, default), "help": f.metadata.get("help")}
        if kind is bool:
            parser.add_argument(_flag(f, default), action="store_true", **kwargs)
            continue
        if typing.get_origin(kind) in (typing.Union, types.UnionType):  # X | None
            kind = next(a for a in typing.get_args(kind) if a is not type(None))
        if "type" in f.metadata:
            kind = f.metadata["type"]
        elif typing.get_origin(kind) is tuple:
            args = typing.get_args(kind)
            if f.metadata.get("repeatable"):
                kwargs["action"] = "append"
            else:
                kwargs["nargs"] = f.metadata.get("nargs", "+" if args[-1] is Ellipsis else len(args))
            kind = args[0]
            default = default if default is dataclasses.MISSING else list(default)
        if default is dataclasses.MISSING:
            kwargs["required"] = True
        else:
            kwargs["default"] = default
        if "choices" in f.metadata:
            kwargs["choices"] = f.metadata["choices"]
        parser.add_argument(_flag(f, _default(f)), *f.metadata.get("aliases", ()), type=kind, **kwargs)


def from_args(cls: type, namespace: argparse.Namespace) -> Any:
    """Build ``cls`` from a namespace parsed with :func:`add_arguments`."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if _nested(f, hints[f.name]):
            kwargs[f.name] = from_args(typing.cast(type, hints[f.name]), namespace)
            continue
        default = _default(f)
        value = getattr(namespace, _dest(f, default))
        kwargs[f.name] = (not value if default is True else value) if hints[f.name] is bool else value
    return cls(**kwargs)


def to_args(config: Any) -> dict[str, Any]:
    """``{flag name with underscores: value}``: the flags that rebuild ``config`` (``--no-x`` for False)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if _nested(f, value):
            out.update(to_args(value))
            continue
        default = _default(f)
        out[_dest(f, default)] = (not value if default is True else value) if isinstance(value, bool) else value
    return out
