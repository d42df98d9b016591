"""The strategy picker: its choices (shipped policies, an upload, every heuristic), the default
panes, and the mapping between a picker value and a :class:`~dllm_viz.strategies.StrategySpec`.

A browser or API client names a strategy only by a picker value: a learned policy is a shipped
one, a Hub id the operator allowed (``--allow-hub-policy``) or the pane's own checked upload, never
a folder or another hub id the client names.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from ..assets import shipped_policies
from ..strategies import POLICY, REGISTRY, StrategyInfo, StrategySpec
from ..strategies.trained_for import TrainedFor, read_trained_for

DEFAULT_POLICY = "semi-ar-entropy"  # the best semi-AR policy (README, "Measured results")
BEST_HEURISTIC = StrategySpec("threshold")  # Fast-dLLM λ = 0.9: the paper's strongest heuristic baseline
UPLOAD_NAME = "(uploaded)"
TRAINED_PREFIX = "trained-"
UPLOADED = StrategySpec(POLICY, policy=UPLOAD_NAME).key  # the picker's upload entry; a run's spec holds the folder
HUB_POLICY_ENV = "DLLM_VIZ_ALLOW_HUB_POLICIES"  # policy Hub ids users may pick (comma-separated; --allow-hub-policy)


def hub_policies() -> list[str]:
    """The policy Hub ids the operator allowed: each is offered in the picker and downloaded on first use."""
    return [p.strip() for p in os.environ.get(HUB_POLICY_ENV, "").split(",") if p.strip()]


# Policies trained in the Train tab: name (``trained-<digest>``) → folder. A session's pickers list
# its own; the names are content hashes, so another client can name one only if shown it.
MAX_TRAINED = 16
_TRAINED: OrderedDict[str, str] = OrderedDict()
_TRAINED_LOCK = threading.Lock()


def add_trained(name: str, folder: str) -> None:
    """Make the trained policy ``name`` (its folder, named ``name``) pickable; the oldest beyond ``MAX_TRAINED`` go."""
    if Path(folder).name != name:
        raise ValueError(f"a trained policy's folder must be named after it ({name!r}), not {Path(folder).name!r}")
    with _TRAINED_LOCK:
        _TRAINED[name] = folder
        _TRAINED.move_to_end(name)
        while len(_TRAINED) > MAX_TRAINED:
            _TRAINED.popitem(last=False)


def trained_folder(name: str | None) -> str | None:
    """The folder of the trained policy ``name`` (None when it is not one, or no longer on disk)."""
    with _TRAINED_LOCK:
        folder = _TRAINED.get(name or "")
    return folder if folder and Path(folder).is_dir() else None


def strategy_choices(trained: Sequence[str] = ()) -> list[tuple[str, str]]:
    """(label, value) pairs: shipped policies first, the allowed Hub ones, the session's ``trained``
    ones, an uploaded policy, then every heuristic."""
    learned = REGISTRY[POLICY].label
    choices = [(f"{learned}: {name}", StrategySpec(POLICY, policy=name).key) for name in shipped_policies()]
    choices += [(f"{learned}: {name} (Hub)", StrategySpec(POLICY, policy=name).key) for name in hub_policies()]
    choices += [(f"{learned}: {name} (trained here)", StrategySpec(POLICY, policy=name).key) for name in trained]
    choices.append((f"{learned}: upload your own", UPLOADED))
    choices += [(info.label, StrategySpec(name).key) for name, info in REGISTRY.items() if name != POLICY]
    return choices


def default_strategies() -> tuple[StrategySpec, StrategySpec]:
    """(A, B): A = the shipped semi-AR α=1 policy (the app opens in semi-AR), else the first shipped
    policy, else High-Confidence-K; B = the best heuristic."""
    policies = shipped_policies()
    name = DEFAULT_POLICY if DEFAULT_POLICY in policies else next(iter(policies), None)
    return (StrategySpec(POLICY, policy=name) if name else StrategySpec("confidence")), BEST_HEURISTIC


def strategy_spec(choice: object) -> StrategySpec | None:
    """The spec a picker value names, without parameters (None for an empty or unknown one)."""
    try:
        return StrategySpec.parse(choice) if isinstance(choice, str) else None
    except ValueError:
        return None


def strategy_info(choice: str) -> StrategyInfo | None:
    """The registry entry a picker value names (None for an empty or unknown one)."""
    try:
        return StrategySpec.parse(choice).info
    except ValueError:
        return None


def pane_strategy(choice: str, params: Mapping[str, object], upload: str | None = None) -> StrategySpec:
    """The spec of a picker value (or an API client's strategy) and its parameters.

    A learned policy is only a shipped one, by name, an allowed Hub id (:func:`hub_policies`), or the
    pane's own checked upload (``upload``, for :data:`UPLOADED`): a browser or client never makes the
    server load a folder or another hub id it names.
    """
    if choice == UPLOADED:
        if not upload:
            raise ValueError("upload a policy file (model.safetensors) for this pane, or pick another strategy")
        return StrategySpec(POLICY, params, policy=upload)
    spec = replace(StrategySpec.parse(choice), params=dict(params))  # not **params: a client names the keys
    if spec.name == POLICY and spec.policy and spec.policy.startswith(TRAINED_PREFIX):
        folder = trained_folder(spec.policy)
        if folder is None:
            raise ValueError(f"the trained policy {spec.policy[:60]!r} is gone from this server; train it again")
        spec = replace(spec, policy=folder)
    elif spec.name == POLICY and not named_policy(spec):
        raise ValueError(
            f"no shipped policy named {str(spec.policy)[:60]!r}; shipped: {sorted(shipped_policies()) or 'none'}; "
            f"from the Hub: {hub_policies() or 'none (the operator adds them with --allow-hub-policy)'}"
        )
    spec = with_policy_defaults(spec)
    check_param_ranges(spec)
    return spec


def with_policy_defaults(spec: StrategySpec) -> StrategySpec:
    """``spec`` with its policy's validated τ_π and β where it sets none (unchanged without them)."""
    return replace(spec, params={**policy_defaults(spec), **spec.params})


def policy_trained_for(spec: StrategySpec) -> TrainedFor | None:
    """What ``spec``'s policy was trained for (its ``trained_for.json``), None for a heuristic, a
    Hub policy, an upload, or a folder without the file. A broken file counts as absent:
    the policy still runs, with the strategy's own defaults and no setting check."""
    if spec.name != POLICY or not spec.policy:
        return None
    # only folders the server itself offers: a client's "policy:/some/path" reads nothing
    folder = shipped_policies().get(spec.policy) or trained_folder(spec.policy) or trained_folder(trained(spec))
    try:
        return read_trained_for(folder) if folder else None
    except (OSError, ValueError, TypeError):
        return None


def policy_defaults(spec: StrategySpec) -> dict:
    """The parameter values a pane shows for ``spec`` when it sets none: its policy's validated
    τ_π and β, or nothing (the strategy's defaults)."""
    own = policy_trained_for(spec)
    return own.knobs if own else {}


def setting_warnings(
    specs: Sequence[StrategySpec], gen_length: int, block_length: int, panes: Sequence[str] = "AB"
) -> list[str]:
    """One sentence per pane (named by ``panes``) whose policy runs in another setting than it
    was trained for: the app warns and runs anyway (a class may want to see exactly that)."""
    notes = (setting_warning(spec, gen_length, block_length, pane) for spec, pane in zip(specs, panes, strict=False))
    return [note for note in notes if note]


def setting_warning(spec: StrategySpec, gen_length: int, block_length: int, pane: str) -> str | None:
    """A sentence when ``spec``'s policy runs in another setting than it was trained for, else None."""
    own = policy_trained_for(spec)
    differs = own.mismatch(gen_length, block_length) if own else None
    if differs is None:
        return None
    name = UPLOAD_NAME if uploaded(spec) else Path(str(spec.policy)).name
    return f"Pane {pane}: policy {name} was {differs}; its decisions here were never validated (often worse)."


MAX_PARAM_MAGNITUDE = 1e6  # a parameter whose schema has no upper bound (γ, a factor) still gets one here


def check_param_ranges(spec: StrategySpec) -> None:
    """Every numeric parameter within its schema's [low, high] (the range the app's controls
    offer), else within ±``MAX_PARAM_MAGNITUDE``: a client's τ_π of 1e30 is refused, not run."""
    info = REGISTRY.get(spec.name)
    if info is None:
        return
    for name, value in spec.params.items():
        p = next((p for p in info.params if p.name == name), None)
        if p is None or isinstance(value, (str, bool)) or not isinstance(value, (int, float)):
            continue  # unknown names and types: the strategy's own checks name them
        low = -MAX_PARAM_MAGNITUDE if p.low is None else p.low
        high = MAX_PARAM_MAGNITUDE if p.high is None else p.high
        if not low <= value <= high:
            label = f"{p.symbol} ({name})" if p.symbol else name
            raise ValueError(f"{label} ({value:g}) must be between {low:g} and {high:g}")


def named_policy(spec: StrategySpec) -> bool:
    """Whether ``spec``'s policy is one the picker offers by name: shipped, or an allowed Hub id."""
    return spec.policy in shipped_policies() or spec.policy in hub_policies()


def trained(spec: StrategySpec) -> str | None:
    """The name of the trained policy ``spec`` runs (its folder, see :func:`add_trained`), else None."""
    if spec.name != POLICY or not spec.policy:
        return None
    name = Path(spec.policy).name
    return name if trained_folder(name) == spec.policy else None


def uploaded(spec: StrategySpec) -> bool:
    """Whether ``spec`` runs a policy uploaded in this session (not a shipped, Hub or trained one)."""
    return spec.name == POLICY and not named_policy(spec) and trained(spec) is None


def choice_of(spec: StrategySpec) -> str:
    """The picker value showing ``spec``: its key (a trained policy by name), or :data:`UPLOADED`
    for an uploaded policy."""
    name = trained(spec)
    if name:
        return StrategySpec(POLICY, policy=name).key
    return UPLOADED if uploaded(spec) else spec.key


def pane_title(spec: StrategySpec) -> str:
    """A pane's heading; an uploaded policy is "(uploaded)", not its content-hash folder."""
    return replace(spec, policy=UPLOAD_NAME).title if uploaded(spec) else spec.title
