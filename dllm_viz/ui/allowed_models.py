"""Which models the app serves and what they are called: the operator's default model, the
allow-list (``assets/``, ``--allow-model-dir`` folders, listed and ``--allow-hub-model`` Hub ids),
the picker's choices, the public names responses show instead of server paths, and whose
modelling code ``--trust-remote-code`` covers.

No Gradio, no loading here: the caches that load what this allows are :mod:`.runtime`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from ..assets import ASSETS
from ..backends import BUILTIN_MODEL, KNOWN_MODELS, ModelLoadError

MODEL_ENV = "DLLM_VIZ_MODEL"
GPU_MODELS = {  # GB of bf16 weights; Base and Instruct share a shape
    "GSAI-ML/LLaDA-8B-Instruct": 16,
    "GSAI-ML/LLaDA-8B-Base": 16,
    "GSAI-ML/LLaDA-1.5": 16,
    "Dream-org/Dream-v0-Instruct-7B": 15,
    "Dream-org/Dream-v0-Base-7B": 15,
}
TRUST_ENV = "DLLM_VIZ_TRUST_REMOTE_CODE"  # app.py --trust-remote-code
ALLOW_ENV = "DLLM_VIZ_ALLOW_MODEL_DIRS"  # extra model folders (os.pathsep-separated; app.py --allow-model-dir)
ALLOW_HUB_ENV = "DLLM_VIZ_ALLOW_HUB_MODELS"  # extra Hub ids users may pick (comma-separated; --allow-hub-model)
MAX_MODEL_NAME = 200
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}")


def builtin_model_installed() -> bool:
    return (Path(BUILTIN_MODEL) / "config.json").is_file()


BUILTIN_NAME = "built-in tiny-dllm"  # what browsers, clients and traces see instead of the folder


def _named_models() -> dict[str, str]:
    """Public name → what the server loads, for the models the operator set up: the built-in
    model and ``$DLLM_VIZ_MODEL`` (a folder by its folder name, a Hub id as itself)."""
    named = {BUILTIN_NAME: BUILTIN_MODEL}
    env = os.environ.get(MODEL_ENV)
    if env:
        named.setdefault(public_model_name(env), env)
    return named


def public_model_name(model: str) -> str:
    """A model's name for responses: ``built-in tiny-dllm``, a Hub id, or a folder's own name,
    never a server path."""
    try:
        if Path(model).expanduser().resolve() == Path(BUILTIN_MODEL).resolve():
            return BUILTIN_NAME
    except (OSError, RuntimeError, ValueError):
        pass
    if _HUB_ID.fullmatch(model) and not os.path.lexists(model):
        return model
    return Path(model).name or model


def default_model() -> str:
    """The public name of ``$DLLM_VIZ_MODEL`` when set, else of the built-in tiny model (even when
    it is not installed, so the UI can say what is missing)."""
    env = os.environ.get(MODEL_ENV)
    return public_model_name(env) if env else BUILTIN_NAME


def model_choices() -> list[tuple[str, str]]:
    """(label, public name) pairs for the model picker: the default first, then the known Hub models."""
    choices = []
    env = os.environ.get(MODEL_ENV)
    if env:
        choices.append((f"{public_model_name(env)} (${MODEL_ENV})", public_model_name(env)))
    label = "built-in tiny dLLM (assets/tiny-dllm)" + ("" if builtin_model_installed() else " — not installed")
    choices.append((label, BUILTIN_NAME))
    choices += [(f"{name} (GPU, Hub)", mid) for name, mid in KNOWN_MODELS.items() if mid != BUILTIN_MODEL]
    return choices


# ---- the allow-list ------------------------------------------------------------------------------


def model_roots() -> list[Path]:
    """Folders whose model subfolders may be loaded: ``assets/``, those the operator allowed, and
    the folder of ``$DLLM_VIZ_MODEL`` when it is a local folder (the operator named it)."""
    roots = [ASSETS] + [Path(p) for p in os.environ.get(ALLOW_ENV, "").split(os.pathsep) if p]
    env = os.environ.get(MODEL_ENV)
    if env and Path(env).expanduser().is_dir():
        roots.append(Path(env))
    return [r.expanduser().resolve() for r in roots]


def canonical_model(model: object) -> str:
    """The one name a model is cached under: a resolved folder inside :func:`model_roots`, or a Hub id.

    Refuses every other string with the same message, whether or not such a folder exists on the
    server, so the message reveals nothing about the server's folders.
    """
    if not isinstance(model, str) or not model.strip():
        raise ModelLoadError("no model selected")
    if len(model) > MAX_MODEL_NAME:
        raise ModelLoadError(f"the model name is {len(model):,} characters long; the limit is {MAX_MODEL_NAME}")
    model = model.strip()
    model = _named_models().get(model, model)
    try:
        path = (Path.cwd() / Path(model).expanduser()).resolve()
    except (OSError, RuntimeError, ValueError):
        path = None
    if path is not None and any(path == root or root in path.parents for root in model_roots()):
        return str(path)
    if _HUB_ID.fullmatch(model) and ".." not in model and not os.path.lexists(model):
        if model in allowed_hub_models():
            return model
        raise ModelLoadError(
            f"Hub model {model[:60]!r} is not on this server's list; it downloads only "
            f"{', '.join(sorted(allowed_hub_models()))} (the operator adds more with --allow-hub-model)"
        )
    raise ModelLoadError(
        f"model {model[:60]!r} is not available here: pick one from the list, a listed Hub id, or a folder "
        "inside assets/ or one the operator allowed with --allow-model-dir"
    )


def allowed_hub_models() -> set[str]:
    """Hub ids a browser or client may make the server download: the listed GPU models, the
    operator's ``$DLLM_VIZ_MODEL`` and ``--allow-hub-model`` ids (``$DLLM_VIZ_ALLOW_HUB_MODELS``)."""
    extra = {m for m in os.environ.get(ALLOW_HUB_ENV, "").split(",") if m}
    env = os.environ.get(MODEL_ENV)
    return set(GPU_MODELS) | extra | ({env} if env else set())


def check_model_runnable(model: str) -> str:
    """Refuse before loading what cannot run here (an 8B model on CPU, a folder outside the
    allow-list), with the reason; returns the canonical model name."""
    model = canonical_model(model)
    if model in GPU_MODELS and not torch.cuda.is_available():
        raise ModelLoadError(
            f"model {model!r} needs a CUDA GPU (about {GPU_MODELS[model]} GB of bf16 weights) and this machine has "
            "none; use the built-in tiny model, or run the app on a GPU (e.g. a ZeroGPU Space)"
        )
    if model == str(Path(BUILTIN_MODEL).resolve()) and not builtin_model_installed():
        raise ModelLoadError(
            "the built-in model is not installed (assets/tiny-dllm has no config.json); "
            f"set ${MODEL_ENV} to a model folder or pick another model"
        )
    return model


def remote_code_trusted(key: str) -> bool:
    """Whether the operator's ``--trust-remote-code`` covers the canonical model ``key``.

    It covers only what the operator chose: the default model (``--model`` / ``$DLLM_VIZ_MODEL``)
    and folders inside :func:`model_roots` (``assets/`` and ``--allow-model-dir``). A Hub id a
    user types never runs its own code unless it is on the backends' allow-list
    (:data:`~dllm_viz.backends.TRUSTED_REMOTE_CODE`), flag or not.
    """
    if os.environ.get(TRUST_ENV, "").lower() not in ("1", "true"):
        return False
    env = os.environ.get(MODEL_ENV)
    if env:
        try:
            if key == canonical_model(env):
                return True
        except ModelLoadError:
            pass
    return Path(key).is_absolute()  # canonical folders are resolved paths inside model_roots()
