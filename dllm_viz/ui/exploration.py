"""The model side of the Explore tab: a session's decode tree, the decode jobs (a run or a
branch) under the compute budget, loading files to explore, and the ``/branch`` endpoint.

The tab's layout and handlers are in :mod:`.explore`; the branching itself in :mod:`dllm_viz.branch`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..branch import (
    check_backend,
    check_overrides,
    lacks_random_state,
    parse_overrides,
    start_branch,
    start_run,
    vocab_size,
)
from ..engine import EngineConfig
from ..strategies import POLICY, REGISTRY, StrategySpec
from ..strategies.registry import info as registry_entry
from ..trace import MAX_TRACE_BYTES, Trace, TraceError, parse_json
from ..tree import FORMAT as TREE_FORMAT
from ..tree import DecodeTree, TreeNode
from . import runtime
from .budget import hold_slot
from .errors import user_errors
from .examples import known_answer
from .session import Comparison, load_comparison, new_run_id
from .settings import api_params, api_spec, engine_config, prompt_text

HEARTBEAT_S = 0.25  # /branch yields at least this often while decoding, so a client's cancel lands quickly


@dataclass
class Exploration:
    """A session's tree and what the user has picked in it.

    Attributes:
        run_id: shown in the status line. tree: the decodes.
        selected: the node shown on the right, beside its parent (a run: on the left, alone).
        source: the node a branch starts from (the grid clicked last). position: the picked position.
        pending: overrides waiting for ↳ Branch, as ``{"position", "action", "token"}`` dicts.
        specs: the strategy each node of this session ran with (an uploaded policy's folder lives
            only here; loaded nodes are rebuilt from their traces by :func:`spec_of`).
    """

    run_id: str
    tree: DecodeTree
    selected: int = 0
    source: int = 0
    position: int | None = None
    pending: list[dict] = field(default_factory=list)
    specs: dict[int, StrategySpec] = field(default_factory=dict)

    def pair(self) -> tuple[TreeNode, TreeNode | None]:
        """(left, right): the selected branch beside the decode it came from; a run alone on the left."""
        node = self.tree.node(self.selected)
        return (node, None) if node.parent is None else (self.tree.node(node.parent), node)

    def comparison(self) -> Comparison:
        """The pair as a finished :class:`Comparison`, for the Compare tab's views and answer checks."""
        left, right = self.pair()
        labels = tuple(f"node {n.id} · {n.label}" if n else "" for n in (left, right))
        return Comparison(
            self.run_id,
            left.trace,
            right.trace if right else None,
            labels,
            self.tree.expected,
            finished=True,
            source="explore",
        )


def spec_of(exp: Exploration, node: TreeNode) -> StrategySpec | None:
    """The strategy a node ran with: from this session, or rebuilt from its trace (a heuristic
    from its ``strategy`` header, a shipped policy by the ``choice`` its trace records, never by a
    folder a file names); None when it cannot be."""
    if node.id in exp.specs:
        return exp.specs[node.id]
    # a file's folder is never loaded
    strategy = {k: v for k, v in node.trace.strategy.items() if k not in ("path", "policy_source")}
    try:
        if registry_entry(str(strategy.get("name"))).name != POLICY:
            return StrategySpec.from_dict(strategy)
        params = {p.name: strategy[p.name] for p in REGISTRY[POLICY].params if not p.advanced and p.name in strategy}
        return runtime.pane_strategy(str(node.trace.meta.get("choice")), params)
    except (ValueError, TypeError):
        return None


# ---- decode jobs ---------------------------------------------------------------------------------------


@dataclass
class Job:
    """One decode for :func:`decode_job`: a run (``prompt``, ``config``) or a branch (``parent``,
    ``k``, checked ``overrides``)."""

    spec: StrategySpec
    prompt: str = ""
    config: EngineConfig | None = None
    parent: Trace | None = None
    k: int = 0
    overrides: tuple = ()


@runtime.gpu
def decode_job(model: str, job: Job):
    """Run ``job``; yields the number of steps done after every step, then the finished :class:`Trace`.

    Plain, picklable items (ZeroGPU runs this in a worker); closing the generator stops the decode.
    """
    backend = runtime.get_backend(model)
    strategy = job.spec.build(load_policy=runtime.policy_loader(backend.device))
    meta = {"choice": runtime.choice_of(job.spec), "app": "dllm-viz"}
    if job.parent is None:
        recording = start_run(backend, job.prompt, strategy, job.config, meta)
    else:
        recording = start_branch(backend, job.parent, job.k, job.overrides, strategy, meta)
    yield from recording
    yield recording.trace()


def decode(model: str, job: Job):
    """:func:`decode_job` holding a compute slot until it ends or is closed (a cancel)."""
    return hold_slot(decode_job(model, job), "a branch" if job.parent is not None else "a decode")


def check_branch(exp: Exploration, model: str, node_id: int, k, overrides, spec: StrategySpec | None) -> Job:
    """Everything a branch needs, checked before any forward pass (ValueError naming the problem)."""
    node = exp.tree.node(node_id)
    if spec is None:
        raise ValueError(
            f"node {node.id} ran {node.label or node.trace.strategy.get('name')!r}, which cannot be rebuilt "
            "here (an uploaded policy?); choose another strategy for the branch"
        )
    exp.tree.check_room(node.trace.gen_length)
    backend = runtime.get_backend(model)
    check_backend(node.trace, backend)
    overrides = check_overrides(node.trace, k, overrides, vocab_size=vocab_size(backend))
    return Job(spec, parent=node.trace, k=int(k), overrides=overrides)


# ---- files ---------------------------------------------------------------------------------------------


def load_tree(path: str | os.PathLike) -> DecodeTree:
    """A tree file, or a trace / comparison file whose runs become the tree's roots."""
    size = os.path.getsize(path)
    if size > MAX_TRACE_BYTES:
        raise TraceError(f"the file is {size / 1e6:.1f} MB; the limit is {MAX_TRACE_BYTES / 1e6:.0f} MB")
    data = parse_json(Path(path).read_bytes())
    if isinstance(data, dict) and data.get("format") == TREE_FORMAT:
        return DecodeTree.from_dict(data)
    comp = load_comparison(path)
    tree = DecodeTree(expected=comp.expected or known_answer(comp.a.prompt))
    for trace, label in ((comp.a, comp.labels[0]), (comp.b, comp.labels[1])):
        if trace is not None:
            tree.add(trace, label=label)
    return tree


# ---- API endpoint ----------------------------------------------------------------------------------------


def branch_api(
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
        model = runtime.check_model_runnable(model or runtime.default_model())
        spec = api_spec("strategy", strategy, api_params("strategy", params)) if strategy else None
        if tree is None:
            prompt = prompt_text(prompt)
            config = engine_config(gen_length, block_length, False, temperature, seed)
            run_spec = api_spec("run_strategy", run_strategy, api_params("run_strategy", run_params))
            exp = Exploration(new_run_id(), DecodeTree(expected=known_answer(prompt)))
            L = config.gen_length
        elif isinstance(tree, dict):
            exp = Exploration(new_run_id(), DecodeTree.from_dict(tree))
            L = exp.tree.node(node).trace.gen_length
        else:
            raise TypeError(f"tree must be a tree object (this endpoint's output), not {type(tree).__name__}")
        # what can be checked before any decode: positions, types, token ids
        backend = runtime.get_backend(model)
        for o in parse_overrides(overrides, L):
            if o.token is not None and not 0 <= o.token < vocab_size(backend):
                raise ValueError(
                    f"token id {o.token} is unknown: the model's vocabulary has ids 0–{vocab_size(backend) - 1}"
                )
        yield {"format": "dllm-viz-progress", "steps": 0}  # before the slot: from here on a cancel closes us
        last = time.monotonic()
        if tree is None:
            if node != 0:
                raise ValueError(f"node ({node!r}) must be 0 (the run) when no tree is given")
            for item in decode(model, Job(run_spec, prompt=prompt, config=config)):
                if isinstance(item, Trace):
                    exp.tree.add(item, label=runtime.pane_title(run_spec))
                    exp.specs[0] = run_spec
                elif time.monotonic() - last >= HEARTBEAT_S:
                    last = time.monotonic()
                    yield {"format": "dllm-viz-progress", "steps": item}
        parent = exp.tree.node(node)
        spec = spec or spec_of(exp, parent)
        job = check_branch(exp, model, parent.id, step, overrides, spec)
        for item in decode(model, job):
            if isinstance(item, Trace):
                child = exp.tree.add(item, parent=parent.id, label=runtime.pane_title(spec))
            elif time.monotonic() - last >= HEARTBEAT_S:
                last = time.monotonic()
                yield {"format": "dllm-viz-progress", "steps": job.k + item}
    exp.selected = child.id
    comp = exp.comparison()
    verdict = comp.verdict(child.trace)
    yield {
        **exp.tree.to_dict(),
        "branch": {
            "node": child.id,
            "parent": parent.id,
            "at_step": job.k,
            "divergence": comp.divergence,
            "nfe": [parent.trace.nfe, child.trace.nfe],
            "answer": child.trace.text,
            "correct": None if verdict is None else verdict.correct,
            "fresh_random_stream": lacks_random_state(parent.trace),
        },
    }
