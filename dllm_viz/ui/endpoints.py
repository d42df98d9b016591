"""The endpoints for scripts (gradio_client): ``/compare_trace`` runs a lockstep comparison to the
end, ``/branch`` decodes and branches a tree. Both are generators, so a client's cancel stops the
decode: they yield small progress dicts ``{"format": "dllm-viz-progress", "steps": n}`` at least
every ``HEARTBEAT_S`` while decoding, and last the result (``client.predict`` returns only that).
"""

from __future__ import annotations

import time
from collections.abc import Generator

from ..branch import lacks_random_state, parse_overrides, vocab_size
from ..trace import Trace
from ..tree import DecodeTree
from . import picker, runtime
from .compare import new_comparison
from .errors import user_errors
from .examples import known_answer
from .exploration import Exploration, Job, check_branch, decode, spec_of
from .lockstep import PaneStep, collect
from .session import new_run_id
from .settings import api_params, api_spec, engine_config, prompt_text, runnable_model

HEARTBEAT_S = 0.25  # a cancel lands within one beat


def progress(steps: int) -> dict:
    return {"format": "dllm-viz-progress", "steps": steps}


def compare_trace(  # type: ignore[misc]  # Gradio reads the result's type from the return annotation
    prompt: str,
    strategy_a: str = "heuristic:confidence",
    strategy_b: str = "heuristic:threshold",
    params_a: dict | None = None,
    params_b: dict | None = None,
    gen_length: int = 64,
    block_length: int = 8,
    temperature: float = 0.0,
    seed: int = 0,
    model: str = "",
) -> dict:
    """Run a lockstep comparison to the end and yield it as a comparison dict (for gradio_client).

    A generator, so that a client's cancel stops the run: while it runs it yields a small
    progress dict ``{"format": "dllm-viz-progress", "steps": n}`` every ``HEARTBEAT_S``, and
    last the comparison (``client.predict`` returns only that).

    Strategies are ``"heuristic:<name>"`` or ``"policy:<shipped name>"``; params are the
    strategy's parameters (``{"threshold": 0.8}``, ``{"policy_temperature": 0.5, "beta": 1.0}``;
    a policy's old ``"temperature"`` still works); ``temperature`` is the token temperature.
    The result has the export format of :mod:`dllm_viz.ui.session`.
    """
    with user_errors("Cannot run the comparison"):
        model = runnable_model(model)
        prompt = prompt_text(prompt)
        config = engine_config(gen_length, block_length, False, temperature, seed)
        specs = [
            api_spec(f"strategy {pane}", choice, api_params(pane, params))
            for pane, choice, params in (("A", strategy_a, params_a), ("B", strategy_b, params_b))
        ]
        comp = new_comparison(prompt, specs)
        yield progress(0)  # before the slot: from here on a cancel closes us
        beat = Heartbeat()
        for _ in collect(comp, model, prompt, tuple(specs), config):
            if beat.due():
                yield progress(comp.num_steps)
    yield comp.to_dict()


def branch_api(  # type: ignore[misc]  # Gradio reads the result's type from the return annotation
    prompt: str = "",
    overrides: list | None = None,
    step: int = 0,
    node: int = 0,
    tree: dict | None = None,
    strategy: str = "",
    params: dict | None = None,
    run_strategy: str = "heuristic:threshold",
    run_params: dict | None = None,
    gen_length: int = 32,
    block_length: int = 8,
    temperature: float = 0.0,
    seed: int = 0,
    model: str = "",
) -> dict:
    """Branch a decode and return the tree (the ``/branch`` endpoint, for gradio_client).

    Without ``tree``, first decodes ``prompt`` with ``run_strategy`` and its ``run_params`` (node 0);
    with ``tree`` (a dict this endpoint or ⬇ Tree returned) it branches that tree's ``node``. The
    branch continues after ``step`` steps with ``overrides`` (``[{"position": 5, "action": "force" |
    "hold" | "remask", "token": id or null}]``) and ``strategy`` with ``params`` (``"heuristic:<name>"``
    or ``"policy:<shipped name>"``; empty: the node's own strategy).

    A generator, so a client's cancel stops the decode: progress dicts ``{"format":
    "dllm-viz-progress", "steps": n}`` while it decodes, last the tree (the tree file format) plus
    ``"branch": {"node", "parent", "at_step", "divergence", "nfe": [parent, branch], "answer", "correct",
    "fresh_random_stream"}`` (the last true when the parent kept no random state to continue).
    """
    with user_errors("Cannot branch"):
        model = runnable_model(model)
        spec = api_spec("strategy", strategy, api_params("strategy", params)) if strategy else None
        exp, run = _exploration(
            tree, node, prompt, run_strategy, run_params, gen_length, block_length, temperature, seed
        )
        if run is not None and run.config is not None:  # a given tree's node: check_branch checks it all, below
            _check_token_ids(model, overrides, run.config.gen_length)
        yield progress(0)  # before the slot: from here on a cancel closes us
        beat = Heartbeat()
        if run is not None:
            if node != 0:
                raise ValueError(f"node ({node!r}) must be 0 (the run) when no tree is given")
            trace = yield from _decoded(model, run, beat)
            exp.tree.add(trace, label=picker.pane_title(run.spec))
            exp.specs[0] = run.spec
        parent = exp.tree.node(node)
        spec = spec or spec_of(exp, parent)
        job = check_branch(exp, model, parent.id, step, overrides, spec)
        child = exp.tree.add(
            (yield from _decoded(model, job, beat)), parent=parent.id, label=picker.pane_title(job.spec)
        )
    yield _branch_result(exp, parent.id, child.id, job.k)


def _exploration(
    tree: object,
    node: int,
    prompt: str,
    run_strategy: str,
    run_params: dict | None,
    gen_length: int,
    block_length: int,
    temperature: float,
    seed: int,
) -> tuple[Exploration, Job | None]:
    """The session to branch in, and the run to decode first (None when ``tree`` is given)."""
    if tree is None:
        prompt = prompt_text(prompt)
        config = engine_config(gen_length, block_length, False, temperature, seed)
        run_spec = api_spec("run_strategy", run_strategy, api_params("run_strategy", run_params))
        exp = Exploration(new_run_id(), DecodeTree(expected=known_answer(prompt)))
        return exp, Job(run_spec, prompt=prompt, config=config)
    if isinstance(tree, dict):
        exp = Exploration(new_run_id(), DecodeTree.from_dict(tree))
        exp.tree.node(node)  # the node must exist before anything runs
        return exp, None
    raise TypeError(f"tree must be a tree object (this endpoint's output), not {type(tree).__name__}")


def _check_token_ids(model: str, overrides: object, gen_length: int) -> None:
    """What can be checked before the run decodes: positions, types, token ids (the rest needs its trace)."""
    size = vocab_size(runtime.get_backend(model))
    for o in parse_overrides(overrides, gen_length):
        if o.token is not None and not 0 <= o.token < size:
            raise ValueError(f"token id {o.token} is unknown: the model's vocabulary has ids 0–{size - 1}")


class Heartbeat:
    """When a progress item is due: ``HEARTBEAT_S`` after the previous one (one clock for a whole call)."""

    def __init__(self) -> None:
        self.last = time.monotonic()

    def due(self) -> bool:
        if time.monotonic() - self.last < HEARTBEAT_S:
            return False
        self.last = time.monotonic()
        return True


def _decoded(model: str, job: Job, beat: Heartbeat) -> Generator[dict, None, Trace]:
    """Progress dicts while ``job`` decodes; returns its trace."""
    trace = None
    for item in decode(model, job):
        if isinstance(item, Trace):
            trace = item
        elif isinstance(item, PaneStep) and beat.due():
            yield progress(item.step.step + 1)  # a branch's steps start after its parent's k
    if trace is None:
        raise RuntimeError("the decode ended without a trace")
    return trace


def _branch_result(exp: Exploration, parent_id: int, child_id: int, k: int) -> dict:
    """The tree (the tree file format) plus a summary of the branch."""
    exp.selected = child_id
    comp = exp.comparison()
    parent, child = exp.tree.node(parent_id), exp.tree.node(child_id)
    verdict = comp.verdict(child.trace)
    return {
        **exp.tree.to_dict(),
        "branch": {
            "node": child.id,
            "parent": parent.id,
            "at_step": k,
            "divergence": comp.divergence,
            "nfe": [parent.trace.nfe, child.trace.nfe],
            "answer": child.trace.text,
            "correct": None if verdict is None else verdict.correct,
            "fresh_random_stream": lacks_random_state(parent.trace),
        },
    }
