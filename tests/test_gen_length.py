"""A generation length of 0 or below is refused with a message naming it, on every surface: the
engine's presets, the API and each command's ``--gen-length`` (never silently replaced by a default)."""

from __future__ import annotations

import importlib
import re

import pytest

import dllm_viz
from dllm_viz.engine import EngineConfig


@pytest.mark.parametrize("L", [0, -8])
def test_presets_and_api_refuse_a_length_below_one(L):
    for make in (EngineConfig.semi_ar, EngineConfig.full):
        with pytest.raises(ValueError, match=rf"gen_length \({L}\) must be a positive integer"):
            make(L)
    with pytest.raises(ValueError, match=rf"gen_length \({L}\) must be a positive integer"):
        dllm_viz.decode(None, "Ann has 5 apples.", gen_length=L)


def test_a_zero_block_length_is_refused_not_defaulted():
    with pytest.raises(ValueError, match=r"block_length \(0\) must be an integer in \[1, gen_length=64\]"):
        EngineConfig.semi_ar(64, 0)
    with pytest.raises(ValueError, match=r"block_length \(0\)"):
        dllm_viz.decode(None, "Ann has 5 apples.", gen_length=64, block_length=0)


COMMANDS = [
    ("dllm_viz.generate", ["--prompt", "Ann has 5 apples."], r"gen_length \({L}\) must be a positive integer"),
    ("dllm_viz.eval.__main__", ["--n", "2"], r"--gen-length \({L}\) must be ≥ 1"),
    ("dllm_viz.eval.pairs", ["runs.csv", "--n", "2", "--pair", "a", "b"], r"--gen-length \({L}\) must be ≥ 1"),
    ("dllm_viz.tiny.evaluate", [], r"--gen-length \({L}\) must be ≥ 1"),
    ("dllm_viz.tiny.train", [], r"gen_length \({L}\) must be a positive integer"),
    ("dllm_viz.rl.train", ["--out-dir", "{tmp}/rl"], r"gen_length \({L}\) must be a positive integer"),
]


@pytest.mark.parametrize("L", [0, -8])
@pytest.mark.parametrize(("module", "argv", "message"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_every_command_refuses_a_length_below_one(module, argv, message, L, tmp_path, capsys):
    main = importlib.import_module(module).main
    argv = [a.format(tmp=tmp_path) for a in argv] + ["--gen-length", str(L)]
    with pytest.raises(SystemExit) as exit_:
        code = main(argv)
        raise SystemExit(code)
    assert exit_.value.code == 2
    assert re.search(message.format(L=L), capsys.readouterr().err)
    assert not (tmp_path / "rl").exists()  # refused before anything was written
