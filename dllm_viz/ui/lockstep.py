"""The Compare tab's run: two strategies decode the same prompt on the same model and seed, one
step each per item, and the app follows both traces as they grow.

:func:`lockstep` is model-bound (wrapped with :func:`~dllm_viz.ui.zerogpu.gpu_task`, so on ZeroGPU
it runs in a forked worker unless the model lives on the CPU): it builds each pane's trace with a
:class:`~dllm_viz.trace.TraceBuilder` and yields plain, picklable step data. :func:`collect` runs it
under the compute budget and keeps a :class:`~dllm_viz.ui.session.Comparison` up to date through a
:meth:`TraceBuilder.mirror <dllm_viz.trace.TraceBuilder.mirror>` of each builder.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import cast

from ..engine import EngineConfig, Plan, decode_steps
from ..strategies import StrategySpec
from ..trace import Trace, TraceBuilder, TraceStep
from . import runtime
from .budget import hold_slot
from .session import Comparison
from .zerogpu import gpu_task, prompt_tokens


@dataclass
class RunHeader:
    """First item of :func:`lockstep`: both panes' traces before their first step (the load time in meta)."""

    traces: list[Trace]


@dataclass
class PaneStep:
    """One pane's step: the trace step, token strings it introduced, and the final text once done."""

    step: TraceStep
    vocab: dict[str, str]
    finished: bool
    text: str | None = None


Item = RunHeader | list[PaneStep | None]  # what lockstep yields: the header, then a frame per step


def lockstep_work(model: str, prompt: str, specs: tuple[StrategySpec, ...], config: EngineConfig) -> tuple[int, int]:
    """At most L forward passes per pane, each over the prompt and the L generated positions."""
    return 2 * config.gen_length, prompt_tokens(prompt) + config.gen_length


@gpu_task(lockstep_work)
def lockstep(
    model: str, prompt: str, specs: tuple[StrategySpec, ...], config: EngineConfig
) -> Generator[Item, None, None]:
    """Run both panes' strategies on the same model, prompt and seed, one step each per item.

    Yields a :class:`RunHeader`, then per step a list of two :class:`PaneStep` (``None`` for a pane
    that has already finished). Each pane's :class:`TraceBuilder` is fed its records as they arrive;
    each strategy is checked once (its :class:`~dllm_viz.engine.Plan`) and the prompt encoded and
    checked once, for both runs. Closing the generator stops both runs.
    """
    t0 = time.perf_counter()
    backend = runtime.get_backend(model)
    strategies = [spec.build(load_policy=runtime.policy_loader(backend.device)) for spec in specs]
    plans = [Plan(strategy, config) for strategy in strategies]
    first = plans[0].prepare(backend, [prompt])  # same model, prompt and settings: pane B's inputs too
    prompt_ids = first.prompt_ids[0]
    meta = {"app": "dllm-viz", "load_ms": round((time.perf_counter() - t0) * 1e3, 1)}
    builders = [
        TraceBuilder(backend, prompt, s, config, prompt_ids=prompt_ids, meta={"pane": pane, **meta})
        for pane, s in zip("ab", strategies, strict=True)
    ]
    yield RunHeader([b.trace() for b in builders])
    runs = [decode_steps(backend, dataclasses.replace(first, plan=plan)) for plan in plans]
    alive = [True, True]
    try:
        while any(alive):
            frame: list[PaneStep | None] = []
            for i, (run, builder) in enumerate(zip(runs, builders, strict=True)):
                rec = next(run, None) if alive[i] else None
                step = None if rec is None else builder.add(rec)
                if step is None or rec is None:
                    alive[i] = False
                    frame.append(None)
                    continue
                finished = not bool((rec.tokens[0] == backend.mask_id).any())
                if finished:
                    alive[i] = False
                    run.close()
                frame.append(PaneStep(step, builder.added, finished, builder.text() if finished else None))
            if any(f is not None for f in frame):
                yield frame
    finally:
        for run in runs:
            run.close()


def collect(
    comp: Comparison,
    model: str,
    prompt: str,
    specs: tuple[StrategySpec, ...],
    config: EngineConfig,
    stop: Callable[[], object] | None = None,
) -> Generator[None, None, None]:
    """Fill ``comp.a``/``comp.b`` from :func:`lockstep`, yielding after every step.

    Holds a compute slot until the run ends or the generator is closed (a cancel); ``stop`` ends
    the wait for the slot (:func:`~.budget.acquire`)."""
    yield from follow(comp, hold_slot(lockstep(model, prompt, specs, config), f"run #{comp.run_id}", stop))


def follow(comp: Comparison, steps: Generator[Item, None, None]) -> Iterator[None]:
    """Lockstep items → the two traces, each a :meth:`TraceBuilder.mirror` of its pane's builder."""
    try:
        builders = [TraceBuilder.mirror(trace) for trace in cast(RunHeader, next(steps)).traces]
        texts = ["", ""]
        comp.a, comp.b = (b.trace() for b in builders)
        for frame in steps:
            for i, (builder, part) in enumerate(zip(builders, cast("list[PaneStep | None]", frame), strict=True)):
                if part is not None:
                    builder.append(part.step, part.vocab)
                    texts[i] = texts[i] if part.text is None else part.text
            comp.a, comp.b = (b.trace(text) for b, text in zip(builders, texts, strict=True))
            yield
        comp.finished = True
    finally:
        steps.close()
