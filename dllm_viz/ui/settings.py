"""UI values → engine settings and pane strategy specs, with messages that name the setting.

No Gradio here: the Compare tab's handlers call these inside :func:`~.errors.user_errors`.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..engine import EngineConfig
from . import runtime

MAX_GEN_LENGTH = 512  # longer runs make grids and heatmaps unreadable; the CLI has no such limit
EXPORT_DIR = Path(tempfile.gettempdir()) / "dllm-viz-exports"
EXPORT_MAX_AGE_S = 3600


def _int(name: str, value) -> int:
    if value is None or value == "":
        raise ValueError(f"{name} is empty")
    if float(value) != int(float(value)):
        raise ValueError(f"{name} ({value}) must be a whole number")
    return int(float(value))


def engine_config(gen_length, block_length, full_diffusion: bool, temperature, seed) -> EngineConfig:
    """The engine settings from the UI (ValueError naming the setting when invalid)."""
    L = _int("gen length", gen_length)
    if not 1 <= L <= MAX_GEN_LENGTH:
        raise ValueError(f"gen length ({L}) must be between 1 and {MAX_GEN_LENGTH}")
    BL = L if full_diffusion else _int("block length", block_length)
    if BL < 1 or BL > L:
        raise ValueError(f"block length ({BL}) must be between 1 and gen length ({L})")
    if L % BL:
        raise ValueError(f"block length ({BL}) must divide gen length ({L}); e.g. {_divisors_hint(L)}")
    return EngineConfig(gen_length=L, block_length=BL, temperature=float(temperature or 0.0),
                        seed=_int("seed", seed if seed is not None else 0))


def _divisors_hint(n: int) -> str:
    divisors = [d for d in range(1, n + 1) if n % d == 0]
    return ", ".join(map(str, divisors[-6:])) + " (or tick full diffusion)"


@dataclass(frozen=True)
class PaneInputs:
    """The raw values of one pane's controls, in :data:`PANE_FIELDS` order."""

    choice: str
    steps: float | None
    threshold: float
    factor: float
    gamma: float
    tau: float
    beta: float
    policy_files: list[str] | None


PANE_FIELDS = ("strategy", "steps", "threshold", "factor", "gamma", "tau", "beta", "policy_files")
TOPK_FAMILY = ("random", "confidence", "margin", "entropy")


def pane_spec(values: PaneInputs, pane: str) -> runtime.PaneSpec:
    """The :class:`~runtime.PaneSpec` of a pane's controls (ValueError naming the pane when invalid)."""
    if not values.choice:
        raise ValueError(f"pane {pane}: pick a strategy")
    kind, _, name = values.choice.partition(":")
    if kind == "heuristic":
        if name in TOPK_FAMILY:
            steps = None if values.steps in (None, "", 0) else _int(f"pane {pane} steps", values.steps)
            return runtime.PaneSpec(values.choice, {"steps": steps})
        key = {"threshold": "threshold", "factor": "factor", "eb": "gamma"}.get(name)
        params = {} if key is None else {key: float(getattr(values, key))}
        return runtime.PaneSpec(values.choice, params)
    if kind == "policy":
        params = {"temperature": float(values.tau), "beta": float(values.beta)}
        policy_dir = prepare_uploaded_policy(values.policy_files, pane) if values.choice == runtime.UPLOADED else None
        return runtime.PaneSpec(values.choice, params, policy_dir)
    raise ValueError(f"pane {pane}: unknown strategy {values.choice!r}")


def prepare_uploaded_policy(files: list[str] | str | None, pane: str = "A") -> str:
    """A policy folder (model.safetensors + config.json) from uploaded files, checked and loaded once.

    Without an uploaded config.json the paper's default architecture (``PolicyConfig()``) is assumed.
    Raises ValueError when the weights are not safetensors or do not fit the config.
    """
    from ..policy import DiTConfidencePolicy, PolicyConfig

    paths = [files] if isinstance(files, str) else list(files or [])
    if not paths:
        raise ValueError(f"pane {pane}: upload the policy's model.safetensors (and optionally its config.json)")
    weights = [p for p in paths if not str(p).lower().endswith(".json")]
    configs = [p for p in paths if str(p).lower().endswith(".json")]
    if len(weights) != 1 or len(configs) > 1:
        raise ValueError(f"pane {pane}: upload exactly one .safetensors weights file and at most one config.json")
    folder = Path(tempfile.mkdtemp(prefix="policy-", dir=export_dir()))
    shutil.copyfile(weights[0], folder / "model.safetensors")
    if configs:
        shutil.copyfile(configs[0], folder / "config.json")
    else:
        (folder / "config.json").write_text(json.dumps(PolicyConfig().to_dict()))
    try:
        DiTConfidencePolicy.from_pretrained(str(folder))  # full check now, not mid-run
    except ValueError as err:
        shutil.rmtree(folder, ignore_errors=True)
        raise ValueError(f"pane {pane}: the uploaded policy cannot be used: {err}") from None
    return str(folder)


def export_dir() -> Path:
    """The folder for exports and uploaded policies; entries older than an hour are removed."""
    EXPORT_DIR.mkdir(parents=True, exist_ok=True)
    cutoff = time.time() - EXPORT_MAX_AGE_S
    for old in EXPORT_DIR.iterdir():
        try:
            if old.stat().st_mtime < cutoff:
                shutil.rmtree(old) if old.is_dir() else old.unlink()
        except OSError:
            pass
    return EXPORT_DIR
