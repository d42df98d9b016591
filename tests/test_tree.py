"""Decode trees: runs and branches as one file, validated on load and bounded."""

from __future__ import annotations

import json

import pytest

from dllm_viz import tree as tree_module
from dllm_viz.branch import record_run, replay, run_branch, state_after
from dllm_viz.engine import EngineConfig
from dllm_viz.strategies import build_strategy
from dllm_viz.strategies.override import Override
from dllm_viz.trace import TraceError
from dllm_viz.tree import MAX_NODES, DecodeTree, TreeFull

from conftest import schema_errors


def _masked(trace, k):
    return [p for p, t in enumerate(state_after(trace, k).tokens) if t == trace.mask_id]


@pytest.fixture(scope="module")
def tree(tiny_backend):
    """A run (random-K at T = 0.8: a stochastic one), a forced branch of it, and a branch of that branch
    that re-masks and forces another token, plus a second branch of the run."""
    strategy = build_strategy("random")
    root = record_run(
        tiny_backend, "one plus two", strategy, EngineConfig(gen_length=8, block_length=4, temperature=0.8, seed=2)
    )
    t = DecodeTree(expected="3")
    t.add(root, label="Random-K")
    first = run_branch(tiny_backend, root, 2, [Override(_masked(root, 2)[0], "force", 9)], strategy)
    t.add(first, parent=0, label="Random-K")
    done = [p for p in range(8) if p not in _masked(first, 5)]
    nested = run_branch(
        tiny_backend,
        first,
        5,
        [Override(done[0], "remask"), Override(done[0], "force", 11)],
        build_strategy("confidence"),
    )
    t.add(nested, parent=1, label="High-Confidence-K")
    t.add(run_branch(tiny_backend, root, 1, [], strategy), parent=0, label="Random-K")
    return t


def test_round_trip_rebuilds_every_trajectory(tree, tmp_path):
    path = tree.save(tmp_path / "tree.json")
    data = json.loads(path.read_text())
    assert data["format"] == "dllm-viz-tree" and data["expected"] == "3"
    assert [n["parent"] for n in data["nodes"]] == [None, 0, 1, 0]
    assert [n["at_step"] for n in data["nodes"]] == [None, 2, 5, 1]
    # a branch stores only its own steps; the history comes from its parent on load
    assert len(data["nodes"][2]["trace"]["steps"]) == tree.nodes[2].trace.num_steps - 5
    loaded = DecodeTree.load(path)
    for mine, theirs in zip(loaded.nodes, tree.nodes, strict=True):
        assert json.dumps(mine.trace.to_json()) == json.dumps(theirs.trace.to_json())
        assert (mine.parent, mine.at_step, mine.label, mine.overrides) == (
            theirs.parent,
            theirs.at_step,
            theirs.label,
            theirs.overrides,
        )
    assert loaded.nodes[2].overrides[1] == {
        "position": loaded.nodes[2].overrides[0]["position"],
        "action": "force",
        "token": 11,
    }
    assert [n.id for n in loaded.ordered()] == [0, 1, 2, 3] and loaded.depth(2) == 2


def test_a_loaded_branch_replays_exactly(tree, tiny_backend, tmp_path):
    loaded = DecodeTree.load(tree.save(tmp_path / "tree.json"))
    for node_id, strategy in ((1, build_strategy("random")), (2, build_strategy("confidence"))):
        node = loaded.node(node_id)
        again = replay(tiny_backend, node.trace, strategy)
        assert [(s.committed, s.proposed, s.nfe, s.rng) for s in again.steps] == [
            (s.committed, s.proposed, s.nfe, s.rng) for s in node.trace.steps
        ]


def test_tree_is_bounded(tree, monkeypatch):
    full = DecodeTree(nodes=list(tree.nodes))
    root = tree.nodes[0].trace
    while len(full.nodes) < MAX_NODES:
        full.add(root)
    with pytest.raises(TreeFull, match=f"this tree holds {MAX_NODES} decodes, the limit; export it"):
        full.add(root)
    monkeypatch.setattr(tree_module, "MAX_TREE_CELLS", tree.cells() + 10)
    with pytest.raises(TreeFull, match="a new branch may need 72; the limit is"):
        DecodeTree(nodes=list(tree.nodes)).check_room(8)


def _tampered(tree, change) -> dict:
    data = json.loads(json.dumps(tree.to_dict()))
    change(data)
    return data


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.update(format="dllm-viz-comparison"), "not a decode tree"),
        (lambda d: d.update(version=2), "unsupported tree version 2"),
        (lambda d: d.update(nodes=[]), "nodes must be a list of 1–16 decodes"),
        (lambda d: d["nodes"][1].update(id=5), "node 1: each node must be an object whose id is its index (1)"),
        (lambda d: d["nodes"][1].update(parent=3), "node 1: parent 3 must be the id of an earlier node (0–0)"),
        (lambda d: d["nodes"][1].update(at_step=99), "node 1: at_step 99 must be a step of the parent"),
        (lambda d: d["nodes"][0].update(at_step=1), "node 0: a run (no parent) has no at_step"),
        (
            lambda d: d["nodes"][1]["trace"].update(prompt_ids=[4, 5]),
            "branch 1: its prompt_ids differs from its parent's",
        ),
        (
            lambda d: d["nodes"][1]["trace"]["steps"][0]["overrides"].append(
                {"position": 7, "action": "remask", "token": None}
            ),
            "node 1: step 2: position 7 is re-masked but was not committed",
        ),  # block 1 is untouched after 2 steps
        (lambda d: d.update(expected=["3"]), "expected must be the known answer as text"),
    ],
)
def test_bad_tree_files_get_specific_messages(tree, change, message):
    with pytest.raises(TraceError) as err:
        DecodeTree.from_dict(_tampered(tree, change))
    assert message in str(err.value)


def test_node_lookup_names_the_range(tree):
    with pytest.raises(ValueError, match="no node 9 in this tree \\(nodes 0–3\\)"):
        tree.node(9)


def test_tree_files_follow_the_published_schema(tree):
    data = tree.to_dict()
    assert any(step.get("overrides") for node in data["nodes"] for step in node["trace"]["steps"])
    assert any(step.get("rng") for node in data["nodes"] for step in node["trace"]["steps"])
    assert schema_errors(json.loads(tree.to_json())) == []
    data["nodes"][1]["parent"] = "0"
    assert schema_errors(data)
