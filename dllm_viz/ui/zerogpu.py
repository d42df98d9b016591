"""Hugging Face ZeroGPU: a GPU is attached only inside a call wrapped with ``spaces.GPU``, and the
visitor's quota pays for the time the call *reserves*, not the time it uses.

Model-bound functions ``fn(model, ...)`` (Compare's lockstep run, Explore's decode jobs, the
Benchmark's sweep) are wrapped with :func:`gpu_task`. The wrapper loads the model in the calling
(main) process, where ZeroGPU keeps weights placed on "cuda" between calls (a load inside the
worker dies with it), then runs ``fn`` here when the model lives on the CPU (the built-in tiny
model: no GPU queue, no quota) and through ``spaces.GPU`` otherwise, reserving a duration sized
to the work. ZeroGPU runs that in a forked worker and pickles every item it yields, so the
functions yield plain data. Off Spaces ``spaces.GPU(f)`` is ``f`` itself.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

from . import runtime

# An 8B bf16 forward over 320 tokens takes 9.7 ms on an H200 (a figure from the project's design notes,
# measured at 8B shape with random weights; bench/gpu_decode.py measures it on any card): about
# 2e-6 s per GB of weights per token. Batches cost the same per token (8 rows: 66.6 ms).
S_PER_GB_TOKEN = 2e-6
SAFETY = 3  # the slice may be slower than a whole H200, and each step also computes features and decides
FIXED_S = 20  # the worker's start and the weights' move onto the GPU slice
# An unauthenticated visitor's daily ZeroGPU quota is 2 minutes (3.5 signed in, 25 with PRO): a call
# reserving more could never run for them, whatever the work.
MAX_GPU_S = 120

# (model, *args) -> (row forward passes, tokens per forward) of one call, worst case
Work = Callable[..., tuple[int, int]]
F = TypeVar("F", bound=Callable[..., Any])


def gpu_seconds(weight_gb: float, forwards: int, tokens: int) -> int:
    """Seconds of GPU to reserve for ``forwards`` row forward passes over ``tokens`` tokens each.

    Raises:
        ValueError: the work needs more than :data:`MAX_GPU_S`, with the estimate and the way out.
    """
    seconds = math.ceil(FIXED_S + SAFETY * forwards * tokens * weight_gb * S_PER_GB_TOKEN)
    if seconds > MAX_GPU_S:
        raise ValueError(
            f"this needs about {seconds} s of GPU time, and one ZeroGPU call may reserve at most {MAX_GPU_S} s "
            "(a visitor's daily quota without signing in): ask for less work, use the built-in model (CPU), "
            "or run it with the command line on your own GPU"
        )
    return seconds


def prompt_tokens(prompt: str) -> int:
    """An over-estimate of a prompt's tokens (English runs about 4 characters a token), plus a chat template."""
    return len(prompt) // 2 + 32


try:  # Hugging Face ZeroGPU: spaces.GPU(f) is f itself off Spaces
    import spaces
except ImportError:  # pragma: no cover - depends on the environment
    spaces = None


def reservation(work: Work, model: str, *args: Any, **kwargs: Any) -> int:
    """The seconds a call reserves: :func:`gpu_seconds` of its work on ``model``'s weights."""
    forwards, tokens = work(model, *args, **kwargs)
    return gpu_seconds(runtime.model_weight_gb(model), forwards, tokens)


def gpu_task(work: Work) -> Callable[[F], F]:
    """Decorator for ``fn(model, ...)`` (a plain function or a generator): on ZeroGPU, run it in a
    GPU worker reserving :func:`reservation` seconds, unless the model lives on the CPU."""

    def wrap(fn: F) -> F:
        worker = fn if spaces is None else spaces.GPU(duration=functools.partial(reservation, work))(fn)

        def target(model: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> F:
            backend = runtime.get_backend(model)  # here, in the main process (see the module's docstring)
            if backend.device.type == "cpu":
                return fn
            if runtime.on_zero_gpu():
                reservation(work, model, *args, **kwargs)  # refuse here: an error inside the worker reads "Error"
            return worker

        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def stream(model: str, *args: Any, **kwargs: Any) -> Iterator[Any]:
                yield from target(model, args, kwargs)(model, *args, **kwargs)

            return cast(F, stream)

        @functools.wraps(fn)
        def call(model: str, *args: Any, **kwargs: Any) -> Any:
            return target(model, args, kwargs)(model, *args, **kwargs)

        return cast(F, call)

    return wrap
