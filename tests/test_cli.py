"""The ``dllm-viz`` console script dispatches to the ``python -m`` CLIs, from any directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import dllm_viz
from dllm_viz import cli


def console_script() -> str:
    path = Path(sys.executable).parent / "dllm-viz"
    if not path.is_file():
        pytest.fail(f"no {path}: install the package (`pip install -e .`, the README's install command)")
    return str(path)


def run_script(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("PYTHONPATH", None)  # the installed package, not this checkout on the path
    return subprocess.run([console_script(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_help_lists_every_command_from_another_directory(tmp_path):
    proc = run_script("--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for name in cli.COMMANDS:
        assert f"\n  {name} " in proc.stdout


def test_a_command_gets_its_own_flags_from_another_directory(tmp_path):
    proc = run_script("generate", "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "python -m dllm_viz.generate" in proc.stdout and "--strategy" in proc.stdout
    assert not list(tmp_path.iterdir())  # --help writes nothing


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_every_command_dispatches_to_its_module(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([name, "--help"])
    assert exit_.value.code == 0
    module = cli.COMMANDS[name][0].removesuffix(".__main__")
    prog = "python app.py" if name == "app" else f"python -m {module}"
    assert capsys.readouterr().out.startswith(f"usage: {prog} ")


def test_the_command_returns_the_sub_command_status(monkeypatch):
    calls = []

    def fake_main(argv):
        calls.append(argv)
        return 3

    monkeypatch.setattr("dllm_viz.generate.main", fake_main)
    assert cli.main(["generate", "--prompt", "x", "--help"]) == 3
    assert calls == [["--prompt", "x", "--help"]]  # everything after the command is the command's


def test_version_and_bad_commands(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"dllm-viz {dllm_viz.__version__}"
    for argv in ([], ["trian-policy"]):
        with pytest.raises(SystemExit) as exit_:
            cli.main(argv)
        assert exit_.value.code == 2
    assert "invalid choice: 'trian-policy'" in capsys.readouterr().err


def test_generate_flags_come_from_its_config_dataclasses():
    """Each field of ModelFlags and DecodeFlags is a flag with the field's default; parsing and
    from_args give the dataclass back."""
    import argparse
    import dataclasses

    from dllm_viz.flags import add_arguments, from_args
    from dllm_viz.generate import DecodeFlags, ModelFlags

    parser = argparse.ArgumentParser()
    add_arguments(parser, ModelFlags)
    add_arguments(parser, DecodeFlags)
    args = parser.parse_args(["--gen-length", "32", "--block-length", "8", "--trust-remote-code", "--threads", "2"])
    assert from_args(DecodeFlags, args) == DecodeFlags(gen_length=32, block_length=8)
    assert from_args(ModelFlags, args) == ModelFlags(trust_remote_code=True, threads=2)
    defaults = parser.parse_args([])
    for cls in (ModelFlags, DecodeFlags):
        assert from_args(cls, defaults) == cls(), [f.name for f in dataclasses.fields(cls)]
    assert DecodeFlags().engine_config().block_length == DecodeFlags().gen_length // 8
    with pytest.raises(ValueError, match="block_length"):
        DecodeFlags(gen_length=32, block_length=0).engine_config()
    with pytest.raises(ValueError, match="--threads"):
        ModelFlags(threads=0)


def test_commands_that_load_a_model_share_its_flags_and_defaults():
    """generate and eval take --model, --device, --trust-remote-code, --model-code and --threads
    from one dataclass, so their defaults cannot drift apart; --gen-length defaults to the engine's."""

    from dllm_viz.engine import EngineConfig
    from dllm_viz.eval.__main__ import build_parser
    from dllm_viz.flags import from_args
    from dllm_viz.generate import ModelFlags

    args = build_parser().parse_args([])
    assert from_args(ModelFlags, args) == ModelFlags()
    assert args.gen_length == EngineConfig.gen_length
    args = build_parser().parse_args(["--threads", "2", "--trust-remote-code", "--model-code", "native"])
    assert from_args(ModelFlags, args) == ModelFlags(threads=2, trust_remote_code=True, model_code="native")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--model-code", "other"])
