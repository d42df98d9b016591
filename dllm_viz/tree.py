"""A small tree of decodes: runs (roots) and the branches a user made from them, as one file.

Every node holds its whole trajectory as a :class:`~dllm_viz.trace.Trace` (a branch: its
parent's first ``at_step`` steps, then its own, the overrides recorded in its first own step),
so any node replays in the views and branches again. The file stores each branch's own steps
only and rebuilds the rest from its parent on load, validating every rebuilt trace.

File format (JSON): ``{"format": "dllm-viz-tree", "version": 1, "expected": str | null,
"nodes": [{"id": 0, "parent": null, "at_step": null, "label": str, "trace": <trace>}, ...]}``;
nodes are listed parents first, ``id`` is the index.

Example:
    >>> tree = DecodeTree()
    >>> tree.nodes
    []
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .trace import MAX_TRACE_BYTES, Trace, TraceError, TraceStep, parse_json, short_repr

FORMAT = "dllm-viz-tree"
VERSION = 1
MAX_NODES = 16  # a person compares a handful of futures; the radio list stays readable
MAX_TREE_CELLS = 2**18  # stored steps × positions over all nodes: about 20 MB of JSON, under the upload limit
MAX_LABEL_CHARS = 120
_SHARED = ("gen_length", "block_length", "mask_id", "eos_id", "prompt_ids", "engine")  # a branch keeps its parent's


class TreeFull(ValueError):
    """The tree has no room for another branch; the message gives the limit and the way out."""


@dataclass
class TreeNode:
    """One decode of the tree.

    Attributes:
        id: index in :attr:`DecodeTree.nodes`. parent: the node it branched from (None: a run).
        trace: the whole trajectory (for a branch: parent's first ``at_step`` steps, then its own).
        label: what decided, for people (e.g. "Fast-dLLM threshold λ (threshold=0.9)").
    """

    id: int
    parent: int | None
    trace: Trace
    label: str = ""

    @property
    def at_step(self) -> int | None:
        """Steps of the parent this branch kept (None for a run)."""
        return None if self.parent is None else int(self.trace.meta["at_step"])

    @property
    def own_steps(self) -> list[TraceStep]:
        return self.trace.steps[self.at_step or 0 :]

    @property
    def overrides(self) -> list[dict]:
        """The overrides this branch applied (empty for a run or a plain continuation)."""
        own = self.own_steps
        return list(own[0].overrides or []) if self.parent is not None and own else []


@dataclass
class DecodeTree:
    """Runs and their branches; bounded by :data:`MAX_NODES` and :data:`MAX_TREE_CELLS`."""

    nodes: list[TreeNode] = field(default_factory=list)
    expected: str | None = None

    def node(self, node_id: object) -> TreeNode:
        if isinstance(node_id, bool) or not isinstance(node_id, int) or not 0 <= node_id < len(self.nodes):
            known = f"nodes 0–{len(self.nodes) - 1}" if self.nodes else "it is empty"
            raise ValueError(f"no node {short_repr(node_id)} in this tree ({known})")
        return self.nodes[node_id]

    def children(self, node_id: int) -> list[TreeNode]:
        return [n for n in self.nodes if n.parent == node_id]

    def depth(self, node_id: int) -> int:
        depth, node = 0, self.node(node_id)
        while node.parent is not None:
            depth, node = depth + 1, self.nodes[node.parent]
        return depth

    def ordered(self) -> list[TreeNode]:
        """Nodes depth first (each followed by its branches), for a list that reads as a tree."""
        out: list[TreeNode] = []

        def visit(node: TreeNode) -> None:
            out.append(node)
            for child in self.children(node.id):
                visit(child)

        for root in (n for n in self.nodes if n.parent is None):
            visit(root)
        return out

    def cells(self) -> int:
        """Stored steps × positions (what the file and memory grow with)."""
        return sum(len(n.own_steps) * n.trace.gen_length for n in self.nodes)

    def check_room(self, gen_length: int) -> None:
        """Raise :class:`TreeFull` unless one more decode of up to L + 1 steps fits."""
        if len(self.nodes) >= MAX_NODES:
            raise TreeFull(
                f"this tree holds {len(self.nodes)} decodes, the limit; export it, then start a new run "
                "or load the file to explore further"
            )
        need = (gen_length + 1) * gen_length
        if self.cells() + need > MAX_TREE_CELLS:
            raise TreeFull(
                f"this tree holds {self.cells():,} step × position cells and a new branch may need "
                f"{need:,}; the limit is {MAX_TREE_CELLS:,}; export it and start a new tree"
            )

    def add(self, trace: Trace, parent: int | None = None, label: str = "") -> TreeNode:
        """Append a run (``parent`` None) or a branch of ``parent`` (its trace from
        :meth:`~dllm_viz.trace.TraceBuilder.for_branch`, e.g. through :func:`~dllm_viz.branch.run_branch`)."""
        self.check_room(trace.gen_length)
        if parent is not None:
            _check_branch(self.node(parent).trace, trace, len(self.nodes))
        node = TreeNode(len(self.nodes), parent, trace, label[:MAX_LABEL_CHARS])
        self.nodes.append(node)
        return node

    # ---- file -------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        nodes = []
        for n in self.nodes:
            data = asdict(n.trace)
            data["steps"] = data["steps"][n.at_step or 0 :]
            nodes.append({"id": n.id, "parent": n.parent, "at_step": n.at_step, "label": n.label, "trace": data})
        return {"format": FORMAT, "version": VERSION, "expected": self.expected, "nodes": nodes}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> DecodeTree:
        """Read and validate a tree file (size checked before reading)."""
        size = os.path.getsize(path)
        if size > MAX_TRACE_BYTES:
            raise TraceError(f"the file is {size:,} bytes; the limit is {MAX_TRACE_BYTES:,}")
        return cls.from_dict(parse_json(Path(path).read_bytes()))

    @classmethod
    def from_dict(cls, data: object) -> DecodeTree:
        """A validated tree: each node's trace is rebuilt from its parent and checked whole."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise TraceError(f"not a decode tree (its format must be {FORMAT!r})")
        if data.get("version") != VERSION or isinstance(data.get("version"), bool):
            raise TraceError(
                f"unsupported tree version {short_repr(data.get('version'))}; this dllm-viz reads {VERSION}"
            )
        expected = _expected(data.get("expected"))
        raw = data.get("nodes")
        if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_NODES:
            raise TraceError(f"nodes must be a list of 1–{MAX_NODES} decodes")
        tree = cls(expected=expected)
        for i, item in enumerate(raw):
            tree.nodes.append(_node(item, i, tree))
        if tree.cells() > MAX_TREE_CELLS:
            raise TraceError(f"the tree holds {tree.cells():,} step × position cells; the limit is {MAX_TREE_CELLS:,}")
        return tree


def _expected(value: object) -> str | None:
    """The known answer: text the answer checker accepts (a number, ``#### N``, or a chain like ``5 - ? + ?``)."""
    from .tasks import check_answer

    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 1000:
        raise TraceError("expected must be the known answer as text of at most 1,000 characters, or null")
    try:
        check_answer("", value)
    except ValueError:
        raise TraceError(
            f"expected ({short_repr(value)}) is not an answer this app can check (a number, text "
            "ending in '#### N', or a chain like '5 - ? + ?')"
        ) from None
    return value


def _node(item: object, i: int, tree: DecodeTree) -> TreeNode:
    where = f"node {i}"
    if not isinstance(item, dict) or item.get("id") != i or isinstance(item.get("id"), bool):
        raise TraceError(f"{where}: each node must be an object whose id is its index ({i})")
    parent, at_step, label = item.get("parent"), item.get("at_step"), item.get("label", "")
    if not isinstance(label, str):
        raise TraceError(f"{where}: label must be text")
    trace = item.get("trace")
    if not isinstance(trace, dict) or not isinstance(trace.get("steps"), list):
        raise TraceError(f"{where}: trace must be a trace object with a list of steps")
    try:
        if parent is None:
            if at_step is not None:
                raise TraceError("a run (no parent) has no at_step")
            return TreeNode(i, None, Trace.from_dict(trace), label[:MAX_LABEL_CHARS])
        if isinstance(parent, bool) or not isinstance(parent, int) or not 0 <= parent < i:
            raise TraceError(f"parent {short_repr(parent)} must be the id of an earlier node (0–{i - 1})")
        base = tree.nodes[parent].trace
        if isinstance(at_step, bool) or not isinstance(at_step, int) or not 0 <= at_step <= base.num_steps:
            raise TraceError(f"at_step {short_repr(at_step)} must be a step of the parent (0–{base.num_steps})")
        history = [asdict(s) for s in base.steps[:at_step]]
        meta = trace.get("meta")
        meta = meta if isinstance(meta, dict) else {}
        full = Trace.from_dict({**trace, "steps": history + trace["steps"], "meta": {**meta, "at_step": at_step}})
        _check_branch(base, full, i)
        return TreeNode(i, parent, full, label[:MAX_LABEL_CHARS])
    except TraceError as err:
        raise TraceError(f"{where}: {err}") from None


def _check_branch(parent: Trace, child: Trace, node_id: int) -> None:
    """A branch keeps its parent's prompt, lengths, ids and engine settings, and its history."""
    for name in _SHARED:
        if getattr(child, name) != getattr(parent, name):
            raise TraceError(f"branch {node_id}: its {name} differs from its parent's")
    k = child.meta.get("at_step")
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= parent.num_steps:
        raise TraceError(f"branch {node_id}: meta.at_step must be a step of the parent (0–{parent.num_steps})")
    for mine, theirs in zip(child.steps[:k], parent.steps[:k], strict=False):
        if (mine.committed, mine.proposed) != (theirs.committed, theirs.proposed):
            raise TraceError(f"branch {node_id}: its first {k} steps differ from its parent's")
