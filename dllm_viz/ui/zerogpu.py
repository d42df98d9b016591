"""Hugging Face ZeroGPU: a GPU is attached only inside a call wrapped with ``spaces.GPU``.

GPU-bound functions (:func:`dllm_viz.ui.lockstep.lockstep`, Explore's decode jobs) are wrapped
with :data:`gpu`, which is ``spaces.GPU`` when the ``spaces`` package is importable and the
function itself elsewhere. ZeroGPU runs them in a forked worker and pickles every item they
yield, so they yield plain data; weights loaded inside a call die with its worker.
"""

from __future__ import annotations

import os

from ..engine import EngineConfig


def gpu_seconds(*args, **kwargs) -> int:
    """ZeroGPU time to reserve for a call: two panes × L steps of an 8B forward (~40 ms each on
    an H200 at L = 256) plus loading, capped; a short reservation queues sooner."""
    config = next((a for a in (*args, *kwargs.values()) if isinstance(a, EngineConfig)), None)
    steps = config.gen_length if config else 256
    return int(min(300, 30 + 2 * steps * 0.05))


try:  # Hugging Face ZeroGPU: spaces.GPU(f) is f itself off Spaces
    import spaces
except ImportError:  # pragma: no cover - depends on the environment
    spaces = None


def gpu_task(duration):
    """``spaces.GPU(duration=...)`` when the ``spaces`` package is importable, else a no-op."""
    if spaces is None:
        return lambda fn: fn
    return spaces.GPU(duration=duration)


gpu = gpu_task(gpu_seconds)


def on_zero_gpu() -> bool:
    return os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "true")
