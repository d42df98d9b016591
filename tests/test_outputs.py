"""Commands never clobber: destinations are checked with every other input before anything is written."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from dllm_viz.outputs import DestinationError, check_destination

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_POLICY = ROOT / "assets" / "policies" / "semi-ar-alpha1"
RL_ARGS = [
    "--iterations",
    "1",
    "--prompts",
    "1",
    "--group-size",
    "2",
    "--gen-length",
    "16",
    "--warmup",
    "1",
    "--no-progress",
    "--alpha",
    "1",
]


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_check_destination_refuses_existing_work_and_names_the_way_out(tmp_path):
    assert check_destination(tmp_path / "new", kind="folder", force=False) == tmp_path / "new"
    assert check_destination(tmp_path, kind="folder", force=False) == tmp_path  # empty is fine
    (tmp_path / "a.json").write_text("{}")
    with pytest.raises(DestinationError, match=r"a.json already exists; pass --force"):
        check_destination(tmp_path / "a.json", kind="file", force=False)
    with pytest.raises(DestinationError, match=r"already exists and is not empty; pass --force"):
        check_destination(tmp_path, kind="folder", force=False)
    assert check_destination(tmp_path, kind="folder", force=True) == tmp_path
    with pytest.raises(DestinationError, match="is a file, not a folder"):
        check_destination(tmp_path / "a.json", kind="folder", force=True)
    with pytest.raises(DestinationError, match="is not an existing folder"):
        check_destination(tmp_path / "missing" / "trace.json", kind="file", force=True)
    with pytest.raises(ValueError, match="kind"):
        check_destination(tmp_path, kind="dir", force=False)


@pytest.fixture(scope="module")
def policy_run(tiny_model_dir, tmp_path_factory):
    from dllm_viz.rl.train import main

    run = tmp_path_factory.mktemp("rl") / "run"
    assert main(["--model", str(tiny_model_dir), "--out-dir", str(run), *RL_ARGS]) == 0
    return run


@pytest.mark.browser
def test_policy_card_refuses_a_shipped_policy_and_a_missing_report_before_writing(policy_run, tmp_path, capsys):
    from dllm_viz.rl.card import main

    shipped = shutil.copytree(SHIPPED_POLICY, tmp_path / "semi-ar-alpha1")  # a copy: the real one is never at risk
    before = digest(shipped)
    report = tmp_path / "results.md"
    report.write_text("| policy | 1.0 |")
    # the README's old command: a shipped destination and a report no command had written
    for argv, message in [
        ([str(policy_run), str(shipped), "--eval", str(tmp_path / "missing.md")], "is not an existing file"),
        ([str(policy_run), str(shipped), "--eval", str(report)], "not empty; pass --force"),
    ]:
        with pytest.raises(SystemExit) as exc:
            main(argv)
        err = capsys.readouterr().err
        assert exc.value.code == 2 and message in err and "Traceback" not in err
        assert digest(shipped) == before
    with pytest.raises(SystemExit):
        main([str(tmp_path / "not-a-run"), str(tmp_path / "fresh"), "--eval", str(report)])
    assert "not an existing folder" in capsys.readouterr().err and not (tmp_path / "fresh").exists()
    assert main([str(policy_run), str(shipped), "--eval", str(report), "--force"]) == 0
    assert digest(shipped)["model.safetensors"] != before["model.safetensors"]  # --force did replace it


def test_rl_train_refuses_a_used_out_dir_unless_resuming(tiny_model_dir, policy_run, tmp_path, capsys):
    from dllm_viz.rl.train import main

    before = digest(policy_run)
    with pytest.raises(SystemExit) as exc:
        main(["--model", str(tiny_model_dir), "--out-dir", str(policy_run), *RL_ARGS])
    assert exc.value.code == 2 and "pass --resume" in capsys.readouterr().err and digest(policy_run) == before
    shipped = shutil.copytree(SHIPPED_POLICY, tmp_path / "shipped")
    with pytest.raises(SystemExit):  # --resume of a folder that holds no run
        main(["--model", str(tiny_model_dir), "--out-dir", str(shipped), *RL_ARGS, "--resume"])
    assert "no checkpoint-last/" in capsys.readouterr().err and sorted(digest(shipped)) == sorted(
        digest(SHIPPED_POLICY)
    )
    with pytest.raises(SystemExit):  # a bad setting is reported before the folder is created
        main(["--model", str(tiny_model_dir), "--out-dir", str(tmp_path / "new"), *RL_ARGS, "--levels", "9"])
    assert not (tmp_path / "new").exists()


def test_tiny_train_rerun_into_a_used_folder_is_a_message_not_a_traceback(tmp_path, capsys):
    from dllm_viz.tiny.train import main

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit) as exc:
        main(["--out-dir", str(tmp_path / "run"), "--steps", "1", "--no-progress"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "not empty" in err and "new --out-dir" in err
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["notes.txt"]
    with pytest.raises(SystemExit) as exc:
        main(["--out-dir", str(tmp_path / "other"), "--steps", "0"])
    assert exc.value.code == 2 and "steps (0)" in capsys.readouterr().err


def test_tiny_card_refuses_the_shipped_model_folder(tmp_path, capsys):
    from dllm_viz.tiny.card import main

    dest = tmp_path / "tiny-dllm"
    dest.mkdir()
    (dest / "model.safetensors").write_bytes(b"shipped")
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / "no-run"), "--dest", str(dest), "--evaluate", str(tmp_path / "eval.json")])
    assert exc.value.code == 2 and "no checkpoint/trainer_state.json" in capsys.readouterr().err
    assert (dest / "model.safetensors").read_bytes() == b"shipped"


def test_eval_refuses_a_used_out_folder_before_loading_the_model(tmp_path, capsys):
    from dllm_viz.eval.__main__ import main

    (tmp_path / "results.md").write_text("earlier report")
    with pytest.raises(SystemExit) as exc:  # the model does not exist: reaching it would fail differently
        main(["--model", str(tmp_path / "no-model"), "--level", "1", "--n", "1", "--out", str(tmp_path)])
    assert exc.value.code == 2 and "not empty; pass --force" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # a policy folder is loaded before the sweep, not halfway through it
        main(
            [
                "--model",
                str(tmp_path / "no-model"),
                "--level",
                "1",
                "--n",
                "1",
                "--out",
                str(tmp_path / "new"),
                "--policy",
                str(tmp_path / "no-policy"),
            ]
        )
    assert exc.value.code == 2 and "no-policy" in capsys.readouterr().err
    assert (tmp_path / "results.md").read_text() == "earlier report"


def test_generate_refuses_an_existing_trace_before_decoding(tmp_path, capsys):
    from dllm_viz.generate import main

    trace = tmp_path / "trace.json"
    trace.write_text("earlier")
    assert main(["--model", str(tmp_path / "no-model"), "--prompt", "x", "--save-trace", str(trace)]) == 2
    assert "trace.json already exists; pass --force" in capsys.readouterr().err and trace.read_text() == "earlier"
    assert main(["--model", str(tmp_path / "no-model"), "--prompt", "x", "--threads", "0"]) == 2
    assert "--threads (0) must be ≥ 1" in capsys.readouterr().err
