"""Each check is owned once: a decode validates its strategy once, encodes each prompt once and
checks a branch's overrides once, whichever library path runs it. The UI's
paths are in tests/ui/test_checks_once_app.py, eval's in tests/eval/test_eval.py."""

from __future__ import annotations

import dllm_viz
from dllm_viz import branch, generate
from dllm_viz.engine import EngineConfig, run
from dllm_viz.strategies import StrategySpec

PROMPTS = ["one plus two", "a b"]
CONFIG = EngineConfig(gen_length=8, block_length=4)


def threshold():
    return StrategySpec("threshold", {"threshold": 0.9}).build()


def test_engine_and_api_validate_once_and_encode_each_prompt_once(tiny_backend, check_counts):
    run(tiny_backend, PROMPTS, threshold(), CONFIG)
    assert dict(check_counts) == {"validate": 1, "encode": 2}
    check_counts.clear()
    dllm_viz.decode(tiny_backend, PROMPTS, "threshold", config=CONFIG)
    assert dict(check_counts) == {"validate": 1, "encode": 2}
    check_counts.clear()
    list(dllm_viz.stream(tiny_backend, PROMPTS[0], "threshold", config=CONFIG))
    assert dict(check_counts) == {"validate": 1, "encode": 1}


def test_the_generate_command_validates_and_encodes_once(tiny_model_dir, check_counts, capsys):
    argv = ["--prompt", PROMPTS[0], "--model", str(tiny_model_dir), "--gen-length", "8", "--block-length", "4"]
    assert generate.main(argv) == 0
    assert dict(check_counts) == {"validate": 1, "encode": 1}


def test_a_branch_checks_its_overrides_and_strategy_once(tiny_backend, check_counts):
    parent = branch.record_run(tiny_backend, PROMPTS[0], threshold(), CONFIG)
    assert dict(check_counts) == {"validate": 1, "encode": 1}
    check_counts.clear()
    branch.run_branch(tiny_backend, parent, 0, [{"position": 1, "action": "hold"}], threshold())
    assert dict(check_counts) == {"validate": 1, "overrides": 1}  # the prompt's ids come from the parent
