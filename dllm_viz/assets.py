"""Where the shipped artefacts are: the built-in tiny dLLM and the trained policies.

In a source checkout (``pip install -e .``, a Hugging Face Space, ``python -m`` from a clone) they are
the top-level ``assets/`` folder beside the package; ``pip install .`` copies that folder into the
installed package as ``dllm_viz/_assets`` (see ``[tool.setuptools.package-dir]`` in pyproject.toml),
so the default model is found from any working directory either way.
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _locate() -> Path:
    installed = _PACKAGE / "_assets"  # only an installed wheel has it
    return installed if installed.is_dir() else _PACKAGE.parent / "assets"


ASSETS: Path = _locate()
BUILTIN_MODEL_DIR: Path = ASSETS / "tiny-dllm"
POLICIES_DIR: Path = ASSETS / "policies"
POLICY_ENV = "DLLM_VIZ_POLICY_DIR"  # a folder of policy folders that replaces the shipped one


def policy_dir() -> Path:
    return Path(os.environ.get(POLICY_ENV) or POLICIES_DIR)


def shipped_policies() -> dict[str, Path]:
    """Name → directory of every policy in ``assets/policies/`` (or ``$DLLM_VIZ_POLICY_DIR``)
    that has a config.json and a model.safetensors."""
    folder = policy_dir()
    if not folder.is_dir():
        return {}
    return {
        p.name: p
        for p in sorted(folder.iterdir())
        if (p / "config.json").is_file() and (p / "model.safetensors").is_file()
    }
