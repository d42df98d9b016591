"""The model side of the Explore tab: a session's decode tree, the decode jobs (a run or a
branch) under the compute budget, loading files to explore, and the ``/branch`` endpoint.

The tab's layout and handlers are in :mod:`.explore`; the branching itself in :mod:`dllm_viz.branch`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from ..branch import BranchPoint, branch_point, start_at, start_run
from ..engine import EngineConfig
from ..strategies import POLICY, REGISTRY, StrategySpec
from ..strategies.registry import info as registry_entry
from ..trace import MAX_TRACE_BYTES, Trace, TraceBuilder, TraceError, parse_json
from ..tree import FORMAT as TREE_FORMAT
from ..tree import DecodeTree, TreeNode
from . import picker, runtime, zerogpu
from .budget import Cancelled, hold_slot
from .errors import shown
from .examples import known_answer
from .lockstep import PaneStep, RunHeader
from .session import Comparison, load_comparison
from .settings import text
from .stopping import Ending


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
        labels = cast("tuple[str, str]", tuple(f"node {n.id} · {n.label}" if n else "" for n in (left, right)))
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
        return picker.pane_strategy(str(node.trace.meta.get("choice")), params)
    except (ValueError, TypeError):
        return None


# ---- decode jobs ---------------------------------------------------------------------------------------


@dataclass
class Job:
    """One decode for :func:`decode_job`: a run (``prompt``, ``config``) or a branch (its checked
    :class:`~dllm_viz.branch.BranchPoint`, from :func:`check_branch`)."""

    spec: StrategySpec
    prompt: str = ""
    config: EngineConfig | None = None
    point: BranchPoint | None = None

    @property
    def k(self) -> int:
        """The parent's steps a branch keeps (0 for a run)."""
        return 0 if self.point is None else self.point.k


def job_work(model: str, job: Job) -> tuple[int, int]:
    """At most one forward pass per remaining position, each over the prompt and the generated positions."""
    if job.point is not None:
        trace = job.point.parent
        return trace.gen_length - job.k, len(trace.prompt_ids) + trace.gen_length
    L = job.config.gen_length if job.config is not None else 0
    return L, zerogpu.prompt_tokens(job.prompt) + L


JobItem = RunHeader | PaneStep | Trace  # what decode_job yields: the header, a step at a time, the trace


@zerogpu.gpu_task(job_work)
def decode_job(model: str, job: Job) -> Generator[JobItem, None, None]:
    """Run ``job``; yields a :class:`~.lockstep.RunHeader` (the trace before the decode's first
    step: a branch's has its parent's first ``k``), a :class:`~.lockstep.PaneStep` after every
    step (what :meth:`TraceBuilder.mirror <dllm_viz.trace.TraceBuilder.mirror>` follows, as in
    Compare), then the finished :class:`Trace`.

    Plain, picklable items (ZeroGPU runs this in a worker); closing the generator stops the decode.
    """
    backend = runtime.get_backend(model)
    strategy = job.spec.build(load_policy=runtime.policy_loader(backend.device))
    meta = {"choice": picker.choice_of(job.spec), "app": "dllm-viz"}
    if job.point is None:
        assert job.config is not None  # a run's job has its settings
        recording = start_run(backend, job.prompt, strategy, job.config, meta)
    else:  # checked by check_branch, before the job took a compute slot
        recording = start_at(backend, job.point, strategy, meta)
    builder = recording.builder
    yield RunHeader([builder.trace()])
    done = len(builder.steps)
    for n in recording:
        if n > done:  # a row that has finished adds no step
            done = n
            yield PaneStep(builder.steps[-1], builder.added, finished=False)
    yield recording.trace()


def decode(model: str, job: Job, stop: Callable[[], object] | None = None) -> Generator[JobItem, None, None]:
    """:func:`decode_job` holding a compute slot until it ends or is closed (a cancel); ``stop``: a
    check that ends the wait for a slot (:func:`~.budget.acquire`)."""
    return hold_slot(decode_job(model, job), "a branch" if job.point is not None else "a decode", stop)


def stream_job(
    model: str,
    job: Job,
    what: str,
    run_id: str,
    ending: Callable[[], Ending],
    status_interval_s: float,
    live: Callable[[Trace], dict[str, Any]] = lambda trace: {},
) -> Generator[dict[str, Any], None, Trace | Ended]:
    """Frames while ``job`` decodes, at most one every ``status_interval_s`` (a generator's frames
    all reach the page, so they are paced here): the status line and ``live`` of the trace so far;
    returns the finished trace, or why it ended early (``ending()``, checked between steps and
    while waiting for a compute slot)."""
    last, trace, follower = 0.0, None, None
    steps = decode(model, job, stop=ending)
    try:
        for item in steps:
            if isinstance(item, Trace):
                trace = item
            elif isinstance(item, RunHeader):
                follower = TraceBuilder.mirror(item.traces[0])
            elif follower is not None:
                follower.append(item.step, item.vocab)
                if ending():
                    break
                if time.monotonic() - last >= status_interval_s:
                    last = time.monotonic()
                    yield {"status": f"{what} · step {len(follower.steps)} #{run_id}", **live(follower.trace())}
    except Cancelled:  # stopped while waiting for a slot
        pass
    finally:
        steps.close()  # frees the slot now, not when the generator is collected
    if trace is None and ending():
        if follower is None:  # stopped while waiting for a compute slot
            return Ended(ending(), job.k)
        return Ended(ending(), len(follower.steps), follower.trace())  # a branch's steps include its parent's k
    if trace is None:
        raise RuntimeError("the decode ended without a trace")
    return trace


@dataclass(frozen=True)
class Ended:
    """A decode that a Stop (or a newer run from the same page) ended after ``step`` steps
    (``trace``: its steps so far, None when it ended before its first)."""

    why: Ending
    step: int
    trace: Trace | None = None


def check_branch(
    exp: Exploration, model: str, node_id: int, k: float, overrides: object, spec: StrategySpec | None
) -> Job:
    """Everything a branch needs, checked before any forward pass (ValueError naming the problem)."""
    node = exp.tree.node(node_id)
    if spec is None:
        raise ValueError(
            f"node {node.id} ran {node.label or node.trace.strategy.get('name')!r}, which cannot be rebuilt "
            "here (an uploaded policy?); choose another strategy for the branch"
        )
    exp.tree.check_room(node.trace.gen_length)
    return Job(spec, point=branch_point(runtime.get_backend(model), node.trace, k, overrides))


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
    assert comp.a is not None  # a loaded comparison has pane A
    tree = DecodeTree(expected=comp.expected or known_answer(comp.a.prompt))
    for trace, label in ((comp.a, comp.labels[0]), (comp.b, comp.labels[1])):
        if trace is not None:
            tree.add(trace, label=label)
    return tree


def parse_token(value: object, trace: Trace) -> int | None:
    """The token field: empty (the model's own choice), ``id:N`` (a top-k choice or a typed id), or
    a token's text as this run's vocabulary spells it."""
    value = text("token", "" if value is None else str(value), 80).strip()
    if not value:
        return None
    if value.startswith("id:"):
        try:
            return int(value[3:])
        except ValueError:
            raise ValueError(f"token {shown(value)} must be id:<number>") from None
    matches = sorted(int(i) for i, s in trace.vocab.items() if s == value or s.strip() == value)
    if not matches:
        raise ValueError(f"token {shown(value)} is not one this run has seen; give its id as id:<number>")
    return matches[0]
