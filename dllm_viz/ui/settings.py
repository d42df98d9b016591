"""The validation layer at the app's boundary: raw UI and API values → engine settings, pane
strategy specs and checked uploads, with messages that name the setting.

Every value from a browser or a client is checked here for type, range and size before anything
is built or allocated (a list where a number belongs, ±Infinity, a seed past 64 bits, a 5,000
character model name, a lone surrogate). No Gradio here: the handlers call these inside
:func:`~.errors.user_errors`, which also escapes and caps the echoed values.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..blocks import check_block_length
from ..engine import EngineConfig
from ..strategies import POLICY, Param, StrategySpec, control_params
from ..strategies.learned import POLICY_TEMPERATURE, policy_config_bytes, policy_temperature_as_field
from . import allowed_models, picker, runtime
from .errors import shown
from .files import content_folder, digest_of, file_digest

MAX_GEN_LENGTH = 512  # longer runs make grids and heatmaps unreadable; the CLI has no such limit
MAX_PROMPT_CHARS = 4000
MAX_SEED = 2**32 - 1  # torch and numpy both take it; larger seeds overflow ("unpacking long long")
MAX_PARAMS = 8  # entries in an API params dict
N = TypeVar("N", int, float)


def _number(name: str, value: object) -> float:
    """A finite real number from a number or a numeric string; never a bool, list or dict."""
    if value is None or value == "":
        raise ValueError(f"{name} is empty")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise ValueError(f"{name} ({shown(value)}) must be a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} ({shown(value)}) must be a finite number")
    return number


def whole_number(name: str, value: object, lo: int | None = None, hi: int | None = None) -> int:
    """``value`` as an int in [``lo``, ``hi``]; ValueError naming ``name`` otherwise (a bool is refused)."""
    number = _number(name, value)
    if number != int(number):
        raise ValueError(f"{name} ({shown(value)}) must be a whole number")
    return _in_range(name, int(number), lo, hi)


def finite_number(name: str, value: object, lo: float | None = None, hi: float | None = None) -> float:
    """``value`` as a finite number in [``lo``, ``hi``]; ValueError naming ``name`` otherwise."""
    return _in_range(name, _number(name, value), lo, hi)


def _in_range(name: str, number: N, lo: float | None, hi: float | None) -> N:
    if (lo is not None and number < lo) or (hi is not None and number > hi):
        bound = f"at most {hi}" if lo is None else f"at least {lo}" if hi is None else f"between {lo} and {hi}"
        raise ValueError(f"{name} ({shown(number, 24)}) must be {bound}")  # 1e300 as an int: 301 digits
    return number


def flag(name: str, value: object) -> bool:
    """A checkbox's value: true, false or empty (false); never a string or number that merely looks true."""
    if value is not None and not isinstance(value, bool):
        raise TypeError(f"{name} must be true or false, not {type(value).__name__}")
    return bool(value)


def text(name: str, value: object, max_chars: int) -> str:
    """A string of at most ``max_chars`` that encodes as UTF-8 (no lone surrogates)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be text, not {type(value).__name__}")
    if len(value) > max_chars:
        raise ValueError(f"{name} is {len(value):,} characters long; the limit is {max_chars:,}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(f"{name} contains an invalid character at position {err.start} (a lone surrogate)") from None
    return value


def prompt_text(prompt: object) -> str:
    """The prompt, stripped; refuses empty, overlong or unencodable text."""
    prompt = text("the prompt", "" if prompt is None else prompt, MAX_PROMPT_CHARS).strip()
    if not prompt:
        raise ValueError("the prompt is empty; type a question or pick an example")
    return prompt


def runnable_model(model: object) -> str:
    """The picked model (empty: the default) as a canonical name, refused before loading when it
    is not text or cannot run here (see :func:`~.allowed_models.check_model_runnable`)."""
    return allowed_models.check_model_runnable(text("the model", model or allowed_models.default_model(), 300))


def api_params(pane: str, params: object) -> dict[str, float | None]:
    """An API client's strategy parameters: a small dict of names → finite numbers (or null)."""
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise TypeError(f"params {pane} must be a JSON object, not {type(params).__name__}")
    if len(params) > MAX_PARAMS:
        raise ValueError(f"params {pane} has {len(params)} entries; a strategy takes at most {MAX_PARAMS}")
    out: dict[str, float | None] = {}
    for key, value in params.items():
        key = text(f"a params {pane} name", key, 32)
        out[key] = None if value is None else finite_number(f"params {pane} {key!r}", value)
    return out


def engine_config(
    gen_length: object, block_length: object, full_diffusion: object, temperature: object, seed: object
) -> EngineConfig:
    """The engine settings from the UI (ValueError naming the setting when invalid)."""
    L = whole_number("gen length", gen_length, 1, MAX_GEN_LENGTH)
    tau = finite_number("temperature", temperature or 0.0, 0.0, 10.0)
    seed_ = whole_number("seed", seed if seed is not None else 0, 0, MAX_SEED)
    if flag("full diffusion", full_diffusion):
        return EngineConfig.full(L, temperature=tau, seed=seed_)
    BL = whole_number("block length", block_length)
    try:
        check_block_length(L, BL, ("block length", "gen length"))
    except ValueError as err:
        raise ValueError(f"{err} (or tick full diffusion)") from None
    return EngineConfig(gen_length=L, block_length=BL, temperature=tau, seed=seed_)


CONTROLS = control_params()  # one control per parameter in a pane, after the strategy picker
# Names that predate the registry, in elem ids (``tau-a``) and ``/compare`` arguments (``tau_a``):
# browser tests and users' scripts use them.
_CONTROL_NAMES = {"temperature": "tau"}
_PUBLIC_NAMES = {"temperature": POLICY_TEMPERATURE}  # `temperature` alone is the token temperature


def public_name(param: Param) -> str:
    """A parameter's name as users read and type it (the policy's τ_π is ``policy_temperature``)."""
    return _PUBLIC_NAMES.get(param.name, param.name)


def control_name(param: Param) -> str:
    """A control's name in elem ids, :data:`PANE_FIELDS` and ``/compare`` arguments."""
    return _CONTROL_NAMES.get(param.name, param.name)


PANE_FIELDS = ("strategy", *map(control_name, CONTROLS), "policy_files")  # a pane's controls, in order


def pane_signature(
    fn: Callable, suffixes: tuple[str, ...], tail: tuple[inspect.Parameter, ...] = ()
) -> inspect.Signature:
    """The signature of ``fn(settings…, *panes)`` with every pane control named (``strategy_a``,
    ``tau_a``, … for suffix ``"_a"``), then ``tail``: Gradio reads ``fn.__signature__`` for the
    endpoint's argument names, which gradio_client users see instead of ``param_7``."""
    settings = [p for p in inspect.signature(fn).parameters.values() if p.kind != p.VAR_POSITIONAL]
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    panes = [inspect.Parameter(f"{field}{suffix}", kind) for suffix in suffixes for field in PANE_FIELDS]
    return inspect.Signature([*settings, *panes, *tail])


@dataclass(frozen=True)
class PaneInputs:
    """The raw values of one pane's controls, in :data:`PANE_FIELDS` order.

    Attributes:
        choice: the picker's value (see :func:`~.picker.strategy_choices`).
        params: each of :data:`CONTROLS` by name, as the browser sent it.
        policy_files: the upload, for :data:`~.picker.UPLOADED`.
    """

    choice: str
    params: dict
    policy_files: list[str] | None

    @classmethod
    def of(cls, values: Iterable[Any]) -> PaneInputs:
        """From the controls' values in :data:`PANE_FIELDS` order (how a handler receives them)."""
        values = tuple(values)
        if len(values) != len(PANE_FIELDS):
            raise TypeError(f"a pane has {len(PANE_FIELDS)} controls ({', '.join(PANE_FIELDS)}), not {len(values)}")
        choice, *params, files = values
        return cls(choice, dict(zip((p.name for p in CONTROLS), params, strict=True)), files)


def control_value(param: Param, value: object, pane: str) -> object:
    """One control's value as the parameter's type; an optional parameter's box shows 0 for None."""
    if param.optional and value in (None, "", 0):
        return None
    name = f"pane {pane} {param.name}"
    try:
        return param.coerce(_number(name, value))
    except ValueError as err:
        raise ValueError(f"pane {pane} {err}") from None


def pane_spec(values: PaneInputs, pane: str) -> StrategySpec:
    """The :class:`StrategySpec` of a pane's controls: the picked strategy with the values of the
    controls it uses (ValueError naming the pane when invalid)."""
    if not values.choice:
        raise ValueError(f"pane {pane}: pick a strategy")
    choice = text(f"pane {pane} strategy", values.choice, 100)
    info = picker.strategy_info(choice)
    if info is None:
        raise ValueError(f"pane {pane}: unknown strategy {shown(choice)}")
    used = {p.name for p in info.params}
    params = {
        p.name: control_value(info.param(p.name), values.params[p.name], pane) for p in CONTROLS if p.name in used
    }
    upload = prepare_uploaded_policy(values.policy_files, pane) if choice == picker.UPLOADED else None
    try:
        return picker.pane_strategy(choice, params, upload)
    except ValueError as err:
        raise ValueError(f"pane {pane}: {err}") from None


def api_spec(name: str, choice: object, params: Mapping[str, object]) -> StrategySpec:
    """An API client's strategy (``"heuristic:<name>"`` or ``"policy:<shipped name>"``) with its
    parameters (from :func:`api_params`); ``name`` says which argument, for messages."""
    choice = text(name, choice, 100)
    info = None if choice == picker.UPLOADED else picker.strategy_info(choice)
    if info is None:
        raise ValueError(f"{name} ({choice!r}) must be 'heuristic:<name>' or 'policy:<shipped name>'")
    if info.name == POLICY:
        params = policy_temperature_as_field(params, name)
    return picker.pane_strategy(choice, params)


def prepare_uploaded_policy(files: list[str] | str | None, pane: str = "A") -> str:
    """A policy folder (model.safetensors + config.json) from uploaded files, checked and loaded once.

    The folder and the loaded network are keyed by the files' content, so uploading the same
    policy again (or running with it many times) reuses both. Without an uploaded config.json the
    default architecture is assumed. Raises ValueError when the config or the weights cannot be
    used (the config is checked before anything is written); a rejected folder is removed.
    """
    if files is None:  # "upload your own" picked, nothing uploaded yet
        files = []
    paths = [files] if isinstance(files, str) else list(files) if isinstance(files, (list, tuple)) else None
    paths = None if paths is None else [_upload_path(p) for p in paths]
    if paths is None or not all(isinstance(p, str) for p in paths):
        raise TypeError(f"pane {pane}: the policy upload must be a list of files")
    if not paths:
        raise ValueError(f"pane {pane}: upload the policy's model.safetensors (and optionally its config.json)")
    weights = [p for p in paths if not p.lower().endswith(".json")]
    configs = [p for p in paths if p.lower().endswith(".json")]
    if len(weights) != 1 or len(configs) > 1:
        raise ValueError(f"pane {pane}: upload exactly one .safetensors weights file and at most one config.json")
    try:
        config = policy_config_bytes(configs[0] if configs else None)
    except (ValueError, TypeError) as err:
        raise ValueError(f"pane {pane}: the uploaded policy cannot be used: {err}") from None

    def fill(folder: Path) -> None:
        (folder / "model.safetensors").write_bytes(Path(weights[0]).read_bytes())
        (folder / "config.json").write_bytes(config)

    folder = content_folder("policy", digest_of(file_digest(weights[0]), config), fill)
    try:
        runtime.get_policy_net(folder, "cpu")  # the full check now (and cached), not mid-run
    except (ValueError, TypeError) as err:
        _remove(folder)
        raise ValueError(f"pane {pane}: the uploaded policy cannot be used: {err}") from None
    except BaseException:
        _remove(folder)
        raise
    return str(folder)


def _upload_path(value: object) -> Any:
    """A file's path as a handler sees it: the path itself, or the ``path`` of Gradio's file data
    (what events with ``preprocess=False`` receive, after Gradio has checked the file is an upload)."""
    return value.get("path") if isinstance(value, dict) else value


def _remove(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
