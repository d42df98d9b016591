"""The library in two calls: :func:`decode` prompts to texts, NFE and traces, or :func:`stream` the steps.

Everything else (backends, strategies, the engine, traces) stays importable for finer control;
these two put them together the way the CLI and the app do.

Example (the built-in tiny dLLM, offline, on a CPU):
    >>> import dllm_viz
    >>> out = dllm_viz.decode(None, ["Tom has 3 boxes with 12 pens in each box. How many pens does he have?"],
    ...                       strategy="threshold", threshold=0.9)
    >>> out.nfe[0] < 64, out.traces[0].nfe == out.nfe[0]
    (True, True)
    >>> steps = dllm_viz.stream(None, ["Ann has 5 apples."], strategy="confidence", steps=8)
    >>> [int(record.nfe[0]) for record in steps]
    [1, 2, 3, 4, 5, 6, 7, 8]
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .backends import BUILTIN_MODEL, DLLM, load_backend
from .engine import EngineConfig, Plan, Prepared, StepRecord, decode_generation, decode_steps
from .strategies import POLICY, Strategy, StrategySpec
from .strategies.learned import policy_temperature_as_field
from .trace import Trace, TraceBuilder

Prompts = str | Sequence[str] | Sequence[Sequence[int]]


@functools.lru_cache(maxsize=1)  # the last model stays loaded; a new one replaces it (bounded memory)
def _cached_backend(model: str, device: str | None) -> DLLM:
    return load_backend(model, device=device)


def load_model(model: str | os.PathLike | None = None, *, device: str | None = None, **kwargs: Any) -> DLLM:
    """A dLLM backend from a folder or hub id (None: the built-in tiny model).

    Without keyword options the last model loaded is reused, so repeated :func:`decode` calls on
    the same name load it once; options (``trust_remote_code``, ``dtype``, ``model_code`` …) go to
    :func:`~dllm_viz.backends.load_backend` and always load afresh.
    """
    name = BUILTIN_MODEL if model is None else os.fspath(model)
    if kwargs:
        return load_backend(name, device=device, **kwargs)
    return _cached_backend(name, None if device is None else str(device))


@dataclass
class Decoded:
    """What :func:`decode` returns, one entry per prompt in each list.

    Attributes:
        texts: the generations, cut at the first end-of-sequence token.
        nfe: forward passes each prompt used.
        traces: every step of each prompt's decode (None when ``trace=False``); ``.save(path)``
            writes the file the app's Load tab and ``dllm_viz.branch`` read.
        tokens: (B, L) generated token ids.
        config: the engine settings used. seconds: wall time of the decode.
    """

    texts: list[str]
    nfe: list[int]
    traces: list[Trace] | None
    tokens: torch.Tensor
    config: EngineConfig
    seconds: float


class DecodeStream:
    """Iterate to get one :class:`~dllm_viz.engine.StepRecord` per denoising step (for live views).

    Traces are built as records arrive (:attr:`traces` is the decode so far); stop iterating, or
    call :meth:`close`, to cancel with nothing left running (a loop left with ``break`` can be
    resumed by iterating again); :meth:`result` runs the remaining steps.
    """

    def __init__(self, backend: DLLM, prompts: list[str], prepared: Prepared, trace: bool) -> None:
        strategy, config = prepared.plan.strategy, prepared.plan.config
        self.backend, self.strategy, self.config = backend, strategy, config
        rows = enumerate(zip(prompts, prepared.prompt_ids, strict=True))
        self._builders = (
            [TraceBuilder(backend, p, strategy, config, row, prompt_ids=ids) for row, (p, ids) in rows]
            if trace
            else None
        )
        self._records = decode_steps(backend, prepared)
        self.last: StepRecord | None = None
        self._start = time.perf_counter()
        self._seconds: float | None = None  # set when the engine has run to the end
        self._closed = False

    @classmethod
    def start(cls, backend: DLLM, prompts: Prompts, plan: Plan, trace: bool = True) -> DecodeStream:
        """A stream of ``plan`` (a strategy already checked with its settings) over ``prompts``;
        the prompts are encoded and checked against ``backend`` here, once."""
        texts: list[str | Sequence[int]] = [prompts] if isinstance(prompts, str) else list(prompts)
        prepared = plan.prepare(backend, texts)  # once: the traces reuse these ids
        shown = [
            p if isinstance(p, str) else backend.decode(ids) for p, ids in zip(texts, prepared.prompt_ids, strict=True)
        ]
        return cls(backend, shown, prepared, trace)

    def __iter__(self) -> Iterator[StepRecord]:
        for record in self._records:
            for builder in self._builders or ():
                builder.add(record)
            self.last = record
            yield record
        if not self._closed:
            self._seconds = time.perf_counter() - self._start

    def close(self) -> None:
        """Cancel the decode (the engine stops before its next forward pass)."""
        self._closed = True
        self._records.close()

    @property
    def traces(self) -> list[Trace]:
        """Each prompt's trace so far (empty steps before the first record)."""
        if self._builders is None:
            raise ValueError("this stream was started with trace=False")
        return [b.trace(self._text(b.row)) for b in self._builders]

    def _text(self, row: int) -> str:
        return "" if self.last is None else decode_generation(self.backend, self.last.tokens[row].tolist())

    def result(self) -> Decoded:
        """Run the remaining steps and return texts, NFE and traces."""
        for _ in self:
            pass
        if self.last is None or self._seconds is None:
            raise RuntimeError("this stream was closed before it finished")
        tokens = self.last.tokens.cpu()
        return Decoded(
            texts=[self._text(row) for row in range(tokens.shape[0])],
            nfe=self.last.nfe.cpu().tolist(),
            traces=self.traces if self._builders is not None else None,
            tokens=tokens,
            config=self.config,
            seconds=self._seconds,
        )


def stream(
    model: str | os.PathLike | DLLM | None,
    prompts: Prompts,
    strategy: str | StrategySpec | Strategy = "threshold",
    *,
    gen_length: int | None = None,
    block_length: int | None = None,
    seed: int | None = None,
    config: EngineConfig | None = None,
    trace: bool = True,
    **params: Any,
) -> DecodeStream:
    """Start decoding ``prompts``; iterate the result for the steps. Arguments as :func:`decode`.

    Everything is checked here, before any forward pass (ValueError naming the problem).
    """
    if config is not None and (gen_length, block_length, seed) != (None, None, None):
        raise ValueError("pass gen_length, block_length and seed inside `config`, or drop `config`")
    if config is None:
        config = _config(gen_length, block_length, seed)
    plan = Plan(_strategy(strategy, params), config)  # before a model is loaded
    backend = model if isinstance(model, DLLM) else load_model(model)
    return DecodeStream.start(backend, prompts, plan, trace)


def decode(
    model: str | os.PathLike | DLLM | None,
    prompts: Prompts,
    strategy: str | StrategySpec | Strategy = "threshold",
    *,
    gen_length: int | None = None,
    block_length: int | None = None,
    seed: int | None = None,
    config: EngineConfig | None = None,
    trace: bool = True,
    **params: Any,
) -> Decoded:
    """Decode a batch of prompts with one strategy; texts, NFE and traces.

    Args:
        model: a folder or hub id (None: the built-in tiny dLLM), or a backend from :func:`load_model`.
        prompts: one prompt or a list (strings, or token-id lists); decoded as one padded batch.
        strategy: a registry name (``"threshold"``, ``"confidence"``, ``"eb"``, …), a learned
            policy ``"policy:<folder | shipped name | hub id>"``, a
            :class:`~dllm_viz.strategies.StrategySpec`, or a strategy object.
        gen_length: L, positions to generate (default 64).
        block_length: BL (default L/8, semi-autoregressive); ``block_length=gen_length`` is
            full diffusion.
        seed: keys each row's own random stream (token sampling, stochastic strategies; default 0),
            so a prompt decodes the same alone or in any batch.
        config: every engine setting at once (token temperature, cache, …) instead of the three above.
        trace: record each prompt's steps (a few hundred kB for L = 64).
        **params: the strategy's parameters, e.g. ``threshold=0.8``, ``steps=16``, or a policy's
            ``policy_temperature`` (τ_π; its old name ``temperature`` still works, with a
            DeprecationWarning) and ``beta``. The token temperature is ``config.temperature``.
    """
    return stream(
        model, prompts, strategy, gen_length=gen_length, block_length=block_length, seed=seed, config=config,
        trace=trace, **params,
    ).result()  # fmt: skip


def _config(gen_length: int | None, block_length: int | None, seed: int | None) -> EngineConfig:
    """The engine settings of :func:`stream`'s arguments; None takes the default, anything else
    (0 included) is checked by :class:`EngineConfig`."""
    L = EngineConfig.gen_length if gen_length is None else gen_length
    seed = 0 if seed is None else seed
    if block_length is None:
        return EngineConfig.semi_ar(L, seed=seed)
    return EngineConfig(gen_length=L, block_length=block_length, seed=seed)


def _strategy(strategy: str | StrategySpec | Strategy, params: Mapping[str, Any]) -> Strategy:
    if isinstance(strategy, str):
        if StrategySpec.parse(strategy).name == POLICY:
            params = policy_temperature_as_field(params, "dllm_viz.decode")
        return StrategySpec.parse(strategy, **params).build()
    if isinstance(strategy, StrategySpec):
        if strategy.name == POLICY:
            params = policy_temperature_as_field(params, "dllm_viz.decode")
        return StrategySpec(strategy.name, {**strategy.params, **params}, strategy.policy).build()
    if params:
        raise ValueError(f"parameters {sorted(params)} go with a strategy name, not a built strategy object")
    if not isinstance(strategy, Strategy):
        raise ValueError(f"strategy must be a name, a StrategySpec or a strategy object, not {type(strategy).__name__}")
    return strategy
