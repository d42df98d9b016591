"""The app's loaded models and policies: the bounded caches of backends and policy networks,
where a model runs, what a visitor waiting for a load is told, and the preload at start.

No Gradio here. Which models may be loaded, and their public names, is :mod:`.allowed_models`;
the strategy picker is :mod:`.picker`; ZeroGPU's decorator, which loads through these caches,
:mod:`.zerogpu`.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch

from ..assets import ASSETS, POLICY_ENV, policy_dir, shipped_policies  # noqa: F401  (re-exported for the tabs)
from ..backends import BUILTIN_MODEL, load_backend
from ..backends.hf import MaskedLMBackend, default_device_dtype
from ..strategies.learned import load_policy_network
from . import allowed_models
from .budget import MODEL_CONCURRENCY  # noqa: F401  (the queue's limit for model events)
from .picker import default_strategies

logger = logging.getLogger(__name__)
T = TypeVar("T")

ZERO_GPU_ENV = "SPACES_ZERO_GPU"  # set by Hugging Face on a ZeroGPU Space


def on_zero_gpu() -> bool:
    """Whether this is a ZeroGPU Space: a GPU exists only inside ``spaces.GPU`` calls (:mod:`.zerogpu`)."""
    return os.environ.get(ZERO_GPU_ENV, "").lower() in ("1", "true")


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
    key = allowed_models.check_model_runnable(model)
    device = model_device(key)

    def load() -> MaskedLMBackend:
        t0 = time.perf_counter()
        with _LOCK:
            _LOADING[key] = time.monotonic()
        try:
            backend = load_backend(key, device=device, trust_remote_code=allowed_models.remote_code_trusted(key))
        finally:
            with _LOCK:
                _LOADING.pop(key, None)
        if hasattr(backend, "name"):
            backend.name = allowed_models.public_model_name(key)  # what traces record: never the server's folder
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
    name = allowed_models.public_model_name
    if model in loads:
        return f"loading {name(model)}… ({now - loads[model]:.0f} s)"
    if not loads:
        return None
    other, since = next(iter(loads.items()))
    return f"waiting for {name(other)} to load ({now - since:.0f} s; models load one at a time)"


def model_weight_gb(model: str) -> float:
    """GB of ``model``'s weights as loaded (loads it when it is not)."""
    from ..models import loading  # imports transformers: not at app start

    net = getattr(get_backend(model), "model", None)
    return loading.weight_bytes(net) / 1e9 if isinstance(net, torch.nn.Module) else 0.0


def _room_for(key: str, device: torch.device) -> Callable[[OrderedDict], None]:
    """Evict models on ``device`` (least recently used first) until the free memory plus theirs
    covers ``key``'s weights and headroom, for the models whose size is known (:data:`~.allowed_models.GPU_MODELS`);
    the load's own check (:func:`~dllm_viz.models.loading.check_fits`) then sees them gone."""

    def make_room(cache: OrderedDict) -> None:
        if key not in allowed_models.GPU_MODELS:
            return
        from ..models import loading  # imports transformers: not at app start

        need = loading.required_bytes(int(allowed_models.GPU_MODELS[key] * 1e9))
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
