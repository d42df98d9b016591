"""The app's models and policies: what is installed, which models a user may pick (the
allow-list), the bounded caches of loaded backends and policy networks, and the preload at start.

No Gradio here. The strategy picker is in :mod:`.picker`; ZeroGPU's decorator, which loads
through these caches, in :mod:`.zerogpu`.
"""

from __future__ import annotations

import gc
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch

from ..assets import ASSETS, POLICY_ENV, policy_dir, shipped_policies  # noqa: F401  (re-exported for the tabs)
from ..backends import BUILTIN_MODEL, KNOWN_MODELS, ModelLoadError, load_backend
from ..backends.hf import MaskedLMBackend, default_device_dtype
from ..strategies.learned import load_policy_network
from .budget import MODEL_CONCURRENCY  # noqa: F401  (the queue's limit for model events)
from .picker import default_strategies

logger = logging.getLogger(__name__)
T = TypeVar("T")

MODEL_ENV = "DLLM_VIZ_MODEL"
GPU_MODELS = {  # GB of bf16 weights; Base and Instruct share a shape
    "GSAI-ML/LLaDA-8B-Instruct": 16,
    "GSAI-ML/LLaDA-8B-Base": 16,
    "GSAI-ML/LLaDA-1.5": 16,
    "Dream-org/Dream-v0-Instruct-7B": 15,
    "Dream-org/Dream-v0-Base-7B": 15,
}
TRUST_ENV = "DLLM_VIZ_TRUST_REMOTE_CODE"  # app.py --trust-remote-code
ZERO_GPU_ENV = "SPACES_ZERO_GPU"  # set by Hugging Face on a ZeroGPU Space


def on_zero_gpu() -> bool:
    """Whether this is a ZeroGPU Space: a GPU exists only inside ``spaces.GPU`` calls (:mod:`.zerogpu`)."""
    return os.environ.get(ZERO_GPU_ENV, "").lower() in ("1", "true")


# ---- what is installed ------------------------------------------------------------------------


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


# ---- cached backends and policies ------------------------------------------------------------

_LOCK = threading.Lock()  # guards the caches' dicts for a moment, never during a load
_BACKENDS: OrderedDict[str, MaskedLMBackend] = OrderedDict()  # canonical model → backend, least recently used first
_POLICIES: OrderedDict[str, torch.nn.Module] = OrderedDict()  # canonical folder@device → policy network
_LOADING: dict[str, float] = {}  # canonical model → when its load began (time.monotonic()), while it loads
# One load at a time per cache: a visitor whose model is loaded never waits behind another's load,
# and two 8B loads never race for one GPU's memory.
_BACKEND_LOAD = threading.Lock()
_POLICY_LOAD = threading.Lock()
MAX_BACKENDS = int(os.environ.get("DLLM_VIZ_MAX_MODELS", "2"))
MAX_POLICIES = 8  # an uploaded policy's folder is named by its content hash, so re-uploads hit the cache
ALLOW_ENV = "DLLM_VIZ_ALLOW_MODEL_DIRS"  # extra model folders (os.pathsep-separated; app.py --allow-model-dir)
ALLOW_HUB_ENV = "DLLM_VIZ_ALLOW_HUB_MODELS"  # extra Hub ids users may pick (comma-separated; --allow-hub-model)
MAX_MODEL_NAME = 200
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}")


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


def _cached(
    cache: OrderedDict[str, T],
    key: str,
    limit: int,
    load: Callable[[], T],
    loading: threading.Lock,
    make_room: Callable[[OrderedDict[str, T]], None] | None = None,
) -> T:
    """``cache[key]``, loaded by ``load()`` on a miss, holding ``loading`` (one load at a time).

    A hit never waits for a load. Before a miss loads, the least recently used entries beyond
    ``limit - 1`` go, and ``make_room(cache)`` may drop more, so the memory they held is free
    when the load checks that it fits (an evicted model still running a job is freed when it ends).
    """
    with _LOCK:
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
    with loading:
        with _LOCK:
            if key in cache:  # loaded by whoever held ``loading`` before us
                cache.move_to_end(key)
                return cache[key]
            while len(cache) >= max(limit, 1):
                cache.popitem(last=False)
            if make_room is not None:
                make_room(cache)
        _release_memory()
        value = load()
        with _LOCK:
            cache[key] = value
    return value


def _release_memory() -> None:
    """Give evicted weights back: collect them now and return CUDA's cached blocks to the device."""
    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


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


def model_device(key: str) -> torch.device:
    """Where the canonical model ``key`` runs: the built-in tiny model on the CPU in fp32 everywhere
    (it needs no GPU: on ZeroGPU it then spends no quota and never queues for a GPU, and its numbers
    match the fp32 reports), every other model on the GPU when there is one."""
    if key == str(Path(BUILTIN_MODEL).resolve()):
        return torch.device("cpu")
    return default_device_dtype()[0]


def get_backend(model: str) -> MaskedLMBackend:
    """The backend for ``model``, loaded once per process (per canonical name) and warmed up.

    Room is made before the load (:func:`_room_for`), so on a GPU an 8B model replaces the other
    instead of meeting it there."""
    key = check_model_runnable(model)
    device = model_device(key)

    def load() -> MaskedLMBackend:
        t0 = time.perf_counter()
        with _LOCK:
            _LOADING[key] = time.monotonic()
        try:
            backend = load_backend(key, device=device, trust_remote_code=remote_code_trusted(key))
        finally:
            with _LOCK:
                _LOADING.pop(key, None)
        if hasattr(backend, "name"):
            backend.name = public_model_name(key)  # what traces record: never the server's folder
        if not (on_zero_gpu() and device.type == "cuda"):  # there the main process only emulates CUDA
            _warm_up(backend)
        logger.info("model %s ready on %s in %.1f s", key, device, time.perf_counter() - t0)
        return backend

    return _cached(_BACKENDS, key, MAX_BACKENDS, load, _BACKEND_LOAD, _room_for(key, device))


def load_status(model: str) -> str | None:
    """What a visitor waiting for the canonical ``model`` is told: ``"loading LLaDA-8B-Instruct…
    (12 s)"``, or the model whose load it waits behind; None once it is loaded (or none loads)."""
    now = time.monotonic()
    with _LOCK:
        if model in _BACKENDS:
            return None
        loads = dict(_LOADING)
    if model in loads:
        return f"loading {public_model_name(model)}… ({now - loads[model]:.0f} s)"
    if not loads:
        return None
    other, since = next(iter(loads.items()))
    return f"waiting for {public_model_name(other)} to load ({now - since:.0f} s; models load one at a time)"


def model_weight_gb(model: str) -> float:
    """GB of ``model``'s weights as loaded (loads it when it is not)."""
    from ..models import loading  # imports transformers: not at app start

    net = getattr(get_backend(model), "model", None)
    return loading.weight_bytes(net) / 1e9 if isinstance(net, torch.nn.Module) else 0.0


def _room_for(key: str, device: torch.device) -> Callable[[OrderedDict], None]:
    """Evict models on ``device`` (least recently used first) until the free memory plus theirs
    covers ``key``'s weights and headroom, for the models whose size is known (:data:`GPU_MODELS`);
    the load's own check (:func:`~dllm_viz.models.loading.check_fits`) then sees them gone."""

    def make_room(cache: OrderedDict) -> None:
        if key not in GPU_MODELS:
            return
        from ..models import loading  # imports transformers: not at app start

        need = loading.required_bytes(int(GPU_MODELS[key] * 1e9))
        free = loading.free_bytes(device)
        for other, backend in list(cache.items()):
            if free is not None and free >= need:
                return
            net = getattr(backend, "model", None)
            if getattr(backend, "device", None) != device or not isinstance(net, torch.nn.Module):
                continue
            del cache[other]
            logger.info("evicting %s to make room for %s on %s", other, key, device)
            free = None if free is None else free + loading.weight_bytes(net)

    return make_room


def _warm_up(backend: MaskedLMBackend) -> None:
    """First forward passes of a fresh model pay one-off costs (kernel selection, allocator);
    pay them at load time so the first streamed frame is not delayed by them."""
    ids = torch.full((1, 16), backend.mask_id, dtype=torch.long, device=backend.device)
    for _ in range(2):
        backend.logits(ids, torch.ones_like(ids))


def get_policy_net(path: str | os.PathLike, device: torch.device | str) -> torch.nn.Module:
    """A policy network loaded (safetensors only) and cached per resolved folder and device."""
    key = f"{Path(path).resolve()}@{device}"
    return _cached(_POLICIES, key, MAX_POLICIES, lambda: load_policy_network(path, device), _POLICY_LOAD)


def policy_loader(device: torch.device | str) -> Callable[[str], object]:
    """``load_policy`` for :meth:`StrategySpec.build`: networks come from the per-device cache."""
    return lambda source: get_policy_net(source, device)


# ---- preload ------------------------------------------------------------------------------------


def _load_defaults(model: str) -> None:
    """The model, the default panes' policies and the known-answer table: everything the first Run
    click would otherwise load (3.3 s before the first frame, measured without the preload)."""
    backend = get_backend(model)
    for spec in default_strategies():
        spec.build(load_policy=policy_loader(backend.device))  # a policy's network into the cache
    from .examples import known_answer

    known_answer("")
    logger.info("default model, policies and answers loaded")


def preload(model: str) -> None:
    """Load ``model`` and the default policies at app start (in the background); failures are
    logged, the app still serves.

    On ZeroGPU the load is synchronous, in the main process: weights placed on "cuda" there are
    kept between calls, while anything loaded inside a ``spaces.GPU`` call dies with its worker.
    """
    if on_zero_gpu():
        try:
            _load_defaults(model)
        except Exception as err:
            logger.warning("could not preload %s: %s", model, err)
        return

    def _load() -> None:
        try:
            _load_defaults(model)
        except Exception as err:  # the UI reports the same error when a run asks for this model
            logger.warning("could not preload %s: %s", model, err)

    threading.Thread(target=_load, name="preload-model", daemon=True).start()
