"""A comparison's settings as a link: Compare's settings and both panes in a URL's query string,
and back, every value checked on the way in.

The query uses the names of the ``/compare`` endpoint's arguments (``gen_length``, ``strategy_a``,
``tau_b`` …), so a link reads like the call it stands for::

    ?prompt=What%20is%202%2B2&gen_length=64&block_length=8&full=0&temperature=0&seed=0
     &strategy_a=policy:semi-ar-entropy&tau_a=0.5&beta_a=2&strategy_b=threshold&threshold_b=0.9

A link is untrusted input: :func:`decode` checks each value with the app's own validators (the
ones ▶ Run uses) and the strategy registry, keeps what passes and says in plain text what it
ignored and why; it never raises. A pane's strategy comes with its parameters, so a pane opens as
the link says whatever the page showed before. No Gradio here: the tab's handlers
(:mod:`.share_events`) add the page and the toasts.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

from ..blocks import check_block_length
from ..strategies import POLICY, StrategySpec
from . import picker
from .errors import shown
from .settings import (
    CONTROLS,
    MAX_GEN_LENGTH,
    MAX_SEED,
    PaneInputs,
    control_name,
    control_value,
    finite_number,
    prompt_text,
    text,
    whole_number,
)

SETTINGS = ("model", "prompt", "gen_length", "block_length", "full", "temperature", "seed")
PANES = ("a", "b")
TEMPERATURE_RANGE = (0.0, 2.0)  # the token temperature slider's range
MAX_QUERY_CHARS = 8000  # longer request lines are refused by some servers and proxies
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class SharedRun:
    """What a link carries, checked.

    Attributes:
        settings: :data:`SETTINGS` names → values the controls take (only those the link set).
        panes: ``"a"``/``"b"`` → the pane's strategy with its parameters (only those the link set).
        ignored: one plain-text sentence per value left out, naming its query key and why.
    """

    settings: dict[str, object] = field(default_factory=dict)
    panes: dict[str, StrategySpec] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()


def shareable_choices() -> set[str]:
    """Picker values a link may name: shipped and allowed Hub policies and every heuristic. An
    upload or a policy trained here lives only in one server's session, so no link can carry it."""
    return {value for _, value in picker.strategy_choices()} - {picker.UPLOADED}


def strategy_name(spec: StrategySpec) -> str:
    """A strategy as a link writes it: ``threshold`` for a heuristic, ``policy:<name>`` for a policy."""
    return spec.key if spec.name == POLICY else spec.name


def _value_text(value: object) -> str | None:
    """A control's value as query text: booleans as 1/0, whole numbers without ``.0``."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return str(value)


def encode(run: SharedRun, default_model: str | None = None) -> str:
    """The query string (no ``?``) of ``run``: every setting it has (the model only when it is not
    ``default_model``; the block length not under full diffusion), then each pane's strategy and
    the parameters it sets."""
    pairs: list[tuple[str, str]] = []
    for name in SETTINGS:
        value = run.settings.get(name)
        if (name == "model" and value == default_model) or (name == "block_length" and run.settings.get("full")):
            continue
        if (shown_value := _value_text(value)) is not None:
            pairs.append((name, shown_value))
    for p in PANES:
        spec = run.panes.get(p)
        if spec is None:
            continue
        pairs.append((f"strategy_{p}", strategy_name(spec)))
        for param in CONTROLS:
            value = _value_text(spec.params.get(param.name))
            if value is not None:
                pairs.append((f"{control_name(param)}_{p}", value))
    return "&".join(f"{k}={quote(v, safe=':')}" for k, v in pairs)


def decode(pairs: Iterable[tuple[str, str]] | Mapping[str, str], models: Collection[str]) -> SharedRun:
    """The settings a query string's ``pairs`` carry, each checked; ``models`` are the model
    picker's values (a link names no other model). Keys that are not ours (``__theme``, ``utm_*``)
    are skipped; each of ours given twice, or with a value that fails its check, is ignored and
    named in :attr:`SharedRun.ignored`. Never raises."""
    items = list(pairs.items() if isinstance(pairs, Mapping) else pairs)
    ours = set(SETTINGS) | {f"{key}_{p}" for p in PANES for key in ("strategy", *map(control_name, CONTROLS))}
    query: dict[str, str] = {}
    ignored: list[str] = []
    seen: set[str] = set()
    for key, value in items:
        if not isinstance(key, str) or key not in ours:
            continue
        if key in seen:
            query.pop(key, None)
            if f"{key}: given more than once" not in ignored:
                ignored.append(f"{key}: given more than once")
            continue
        seen.add(key)
        if isinstance(value, str):
            query[key] = value
        else:
            ignored.append(f"{key}: must be text, not {type(value).__name__}")
    settings = _settings(query, models, ignored)
    panes = {p: spec for p in PANES if (spec := _pane(query, p, ignored)) is not None}
    return SharedRun(settings, panes, tuple(ignored))


def _flag(key: str, value: str) -> bool:
    word = value.strip().lower()
    if word not in _TRUE + _FALSE:
        raise ValueError(f"{key} ({shown(value)}) must be 1 or 0")
    return word in _TRUE


def _setting(key: str, value: str, models: Collection[str]) -> object:
    """One setting's value, checked as ▶ Run checks it (ValueError or TypeError saying why)."""
    if key == "model":
        model = text(key, value, 300)
        if model not in models:
            raise ValueError(f"{shown(model)} is not offered on this server")
        return model
    if key == "prompt":
        return prompt_text(value)
    if key in ("gen_length", "block_length"):
        return whole_number(key, value, 1, MAX_GEN_LENGTH)
    if key == "full":
        return _flag(key, value)
    if key == "temperature":
        return finite_number(key, value, *TEMPERATURE_RANGE)
    return whole_number(key, value, 0, MAX_SEED)


def _settings(query: Mapping[str, str], models: Collection[str], ignored: list[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key in SETTINGS:
        if key in query:
            try:
                out[key] = _setting(key, query[key], models)
            except (ValueError, TypeError) as err:
                ignored.append(f"{key}: {err}")
    L, BL = out.get("gen_length"), out.get("block_length")
    if not out.get("full") and isinstance(L, int) and isinstance(BL, int):
        try:
            check_block_length(L, BL, ("block_length", "gen_length"))
        except ValueError as err:
            ignored.append(str(err))
            del out["block_length"]
    return out


def _pane(query: Mapping[str, str], p: str, ignored: list[str]) -> StrategySpec | None:
    """Pane ``p``'s strategy and the parameters the link sets for it; None when it names none
    (its parameters alone are ignored: they belong to a strategy) or one not offered here."""
    keys = {control_name(c): c for c in CONTROLS}
    given = [k for k in keys if f"{k}_{p}" in query]
    choice = query.get(f"strategy_{p}")
    spec = picker.strategy_spec(choice) if choice is not None and len(choice) <= 100 else None
    if spec is None or spec.key not in shareable_choices():
        if choice is not None:
            ignored.append(f"strategy_{p}: no strategy {shown(choice)} here, so pane {p.upper()} keeps its own")
        ignored += [f"{k}_{p}: ignored without a valid strategy_{p}" for k in given]
        return None
    info, params = spec.info, {}
    used = {param.name for param in info.params}
    for k in given:
        key, param = f"{k}_{p}", keys[k]
        if param.name not in used:
            ignored.append(f"{key}: {info.label} has no such parameter")
            continue
        try:
            value = control_value(info.param(param.name), finite_number(key, query[key]), p.upper())
            params[param.name] = picker.pane_strategy(spec.key, {param.name: value}).params[param.name]
        except (ValueError, TypeError) as err:
            ignored.append(f"{key}: {err}")
    try:
        return picker.pane_strategy(spec.key, params)
    except (ValueError, TypeError) as err:  # the strategy's own rule across parameters
        ignored.append(f"strategy_{p}: {err}")
        return None


def current_run(values: Mapping[str, object], panes: Mapping[str, PaneInputs], models: Collection[str]) -> SharedRun:
    """What a link can carry of the page's current controls: ``values`` by :data:`SETTINGS` name
    and each pane's raw inputs, checked exactly as a link's are (so every link decodes in full);
    what it leaves out (an empty prompt, an uploaded policy) is in :attr:`SharedRun.ignored`."""
    pairs: list[tuple[str, str]] = []
    notes: list[str] = []
    for name in SETTINGS:
        value = _value_text(values.get(name))
        if value is not None:
            pairs.append((name, value))
    for p, inputs in panes.items():
        choice = inputs.choice
        spec = picker.strategy_spec(choice)
        trained = spec is not None and str(spec.policy).startswith(picker.TRAINED_PREFIX)
        if choice == picker.UPLOADED or trained:
            notes.append(f"pane {p.upper()} runs a policy uploaded or trained here, which a link cannot carry")
            continue
        pairs.append((f"strategy_{p}", strategy_name(spec) if spec else str(choice)))
        used = {param.name for param in spec.info.params} if spec else set()
        for param in CONTROLS:
            value = _value_text(inputs.params.get(param.name)) if param.name in used else None
            if value is not None:
                pairs.append((f"{control_name(param)}_{p}", value))
    run = decode(pairs, models)
    return SharedRun(run.settings, run.panes, (*notes, *run.ignored))
