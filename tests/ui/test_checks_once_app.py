"""Each check is owned once in the app: Compare validates each pane's strategy
once and encodes the shared prompt once for both panes; Explore and ``/branch`` check a branch's
overrides once (before the job takes a compute slot, not again inside it)."""

from __future__ import annotations

import pytest

from dllm_viz.ui import allowed_models, endpoints, explore
from dllm_viz.ui.compare import PANE_FIELDS
from dllm_viz.ui.explore import SAME

pytestmark = pytest.mark.skipif(
    not allowed_models.builtin_model_installed(), reason="the built-in model is not installed"
)

PROMPT = "Ann has 5 apples and buys 2 more. How many apples does she have?"
HEUR = dict(steps=0, threshold=0.9, factor=1.0, gamma=0.01, tau=0.5, beta=1.0, policy_files=None)
PANE = ["heuristic:threshold"] + [HEUR[f] for f in PANE_FIELDS[1:]]
HOLD = [{"position": 3, "action": "hold", "token": None}]  # masked after step 0, in the current block


def test_compare_validates_each_pane_once_and_encodes_the_prompt_once(check_counts):
    list(endpoints.compare_trace(PROMPT, gen_length=16, block_length=8))
    assert dict(check_counts) == {"validate": 2, "encode": 1}


def test_explore_checks_a_branch_once(check_counts):
    exp = list(explore.run_explore("", PROMPT, 16, 8, False, 0.0, 0, *PANE))[-1]["session"]
    assert dict(check_counts) == {"validate": 1, "encode": 1}
    check_counts.clear()
    exp.pending = list(HOLD)
    frame = list(explore.branch_explore(exp, "", 0, SAME, *PANE))[-1]
    assert frame["status"].startswith("branched") and dict(check_counts) == {"validate": 1, "overrides": 1}


def test_the_branch_endpoint_checks_once(check_counts):
    out = list(endpoints.branch_api(PROMPT, HOLD, step=0, gen_length=16, block_length=8))[-1]
    assert dict(check_counts) == {"validate": 2, "encode": 1, "overrides": 1}  # the run, then its branch
    check_counts.clear()
    tree = {k: v for k, v in out.items() if k != "branch"}
    assert list(endpoints.branch_api(overrides=HOLD, step=0, tree=tree))[-1]["branch"]["node"] == 2
    assert dict(check_counts) == {"validate": 1, "overrides": 1}
