"""dllm-viz: watch diffusion LMs decode; train and inspect unmasking policies.

The public API (imported on first use, so ``import dllm_viz`` stays light)::

    import dllm_viz
    out = dllm_viz.decode(None, ["Ann has 5 apples. …"], strategy="threshold", threshold=0.9)
    out.texts, out.nfe, out.traces          # None: the built-in tiny dLLM
    for record in dllm_viz.stream(model, prompts, strategy="policy:full-diffusion", temperature=0.5):
        ...                                  # one StepRecord per denoising step

``decode``/``stream`` (:mod:`dllm_viz.api`), ``load_model``, ``StrategySpec`` and ``REGISTRY``
(every strategy with its parameter schema), ``EngineConfig`` and ``Trace``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"  # the one place: pyproject.toml reads it (tests/test_packaging.py)

_EXPORTS = {
    "decode": "api",
    "stream": "api",
    "load_model": "api",
    "Decoded": "api",
    "DecodeStream": "api",
    "StrategySpec": "strategies",
    "REGISTRY": "strategies",
    "EngineConfig": "engine",
    "Trace": "trace",
}
__all__ = [
    "__version__",
    "decode",
    "stream",
    "load_model",
    "Decoded",
    "DecodeStream",
    "StrategySpec",
    "REGISTRY",
    "EngineConfig",
    "Trace",
]

if TYPE_CHECKING:
    from .api import Decoded, DecodeStream, decode, load_model, stream
    from .engine import EngineConfig
    from .strategies import REGISTRY, StrategySpec
    from .trace import Trace


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'dllm_viz' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value
