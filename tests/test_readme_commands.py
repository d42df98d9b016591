"""Every command in README.md runs as written, from a fresh copy of the project, and none of them
changes a shipped file under ``assets/``.

The commands are read from the README itself (its ```bash blocks, and the ``python ...`` cells of its
"command" columns), so an edited README is what gets tested. Each command runs in the copy's root,
in order (a later command reads what an earlier one wrote; the benchmarks, which read nothing the
others write, run in a second lane beside them), at one torch thread, offline. Commands
that train or sweep get extra flags from :data:`SHORT` that shrink their size or time (argparse keeps
the last value of a repeated flag, so ``--n 200 --n 1`` means ``--n 1``); every README command must
have an entry there or in :data:`ELSEWHERE`, and an entry that no longer matches a command fails too.

Covered elsewhere: the install, lint and test commands and ``python app.py`` are what ``.ci/run`` runs
on a clean clone (venv, ``pip install -e .``, ``pip install -r requirements-dev.txt``, ruff, mypy, the
test suite, which starts the app in ``tests/ui/test_app.py``); ``.ci/run`` is CI itself.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# README command prefix -> (extra flags that shrink it, expected outcome). Longest prefix wins.
# "ok": exit 0. "offline": needs the Hub (a real dLLM): must exit 2 with a message naming the model.
SHORT: dict[str, tuple[list[str], str]] = {
    "python -m dllm_viz.generate --prompt": ([], "ok"),
    "python -m dllm_viz.generate --model GSAI-ML/": ([], "offline"),
    "python -m dllm_viz.tiny.train": (["--steps", "2", "--eval-every", "0"], "ok"),
    "python -m dllm_viz.tiny.evaluate": (["--n", "1", "--speed-prompts", "1", "--gen-length", "16"], "ok"),
    # one rollout batch; --warmup 1 because the schedule needs total steps (iterations x 2) > warmup
    "python -m dllm_viz.rl.train": (
        ["--iterations", "1", "--warmup", "1", "--prompts", "1", "--group-size", "2", "--eval-problems", "2"],
        "ok",
    ),
    "python -m dllm_viz.rl.card": ([], "ok"),
    "python -m dllm_viz.eval": (["--n", "1", "--seeds", "0", "--strategies", "threshold"], "ok"),
    "python bench/engine_overhead.py": (["--repeats", "1", "--gen-length", "16", "--block-length", "8"], "ok"),
    "python bench/policy_overhead.py": (["--repeats", "3"], "ok"),
    "python bench/app_latency.py": (["--repeats", "1"], "ok"),
    "python bench/rollout_throughput.py": (
        ["--rollouts", "8", "--processes", "1", "--iterations", "2", "--gen-length", "16", "--block-length", "16"],
        "ok",
    ),
    "python bench/gpu_decode.py": (["--tiny"], "ok"),  # a CPU here: tiny shapes (the 8B ones are refused)
    "python bench/train_tab.py": (
        ["--batches", "1", "--prompts", "2", "--group-size", "2", "--eval-problems", "4"],
        "ok",
    ),
    # the served app's soak, a few rounds (the suite's own soak is tests/ui/test_server_load.py)
    "python bench/soak.py": (["--rounds", "3", "--warmup", "1", "--every", "1", "--last", "2"], "ok"),
    "dllm-viz --help": ([], "ok"),
}
ELSEWHERE = {
    "python3 -m venv .venv": ".ci/run: install, then the test suite (tests/ui/test_app.py serves app.py)",
    ". .venv/bin/activate": ".ci/run: the README's test command",
    "ruff check .": ".ci/run: lint and type check",
    ".ci/run": "CI itself",
}


def readme_commands(text: str) -> list[str]:
    """Commands of the README in order: ```bash blocks (continuations joined, comments dropped),
    then inline ``python ...`` / ``.ci/run`` cells of tables (``same`` cells repeat the row above)."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(shlex.join(words))
    for row in re.findall(r"^\|.*\|$", text, flags=re.M):
        for code in re.findall(r"`([^`]+)`", row.rsplit("|", 2)[-2]):  # the last column
            if code.startswith(("python ", ".ci/run")):
                commands.append(shlex.join(shlex.split(code)))
    return list(dict.fromkeys(commands))  # a table may repeat a block's command


def entry_for(command: str) -> str | None:
    keys = [k for k in [*SHORT, *ELSEWHERE] if command.startswith(k)]
    return max(keys, key=len) if keys else None


COMMANDS = readme_commands((ROOT / "README.md").read_text())


def test_every_readme_command_has_an_entry_and_every_entry_a_command():
    missing = [c for c in COMMANDS if entry_for(c) is None]
    assert not missing, f"README commands with no entry in SHORT or ELSEWHERE (add one): {missing}"
    unused = [k for k in [*SHORT, *ELSEWHERE] if not any(entry_for(c) == k for c in COMMANDS)]
    assert not unused, f"SHORT/ELSEWHERE entries that match no README command (remove them): {unused}"
    assert any(c.startswith("python -m dllm_viz.tiny.train") for c in COMMANDS)  # the extraction still works


def fresh_copy(dest: Path) -> Path:
    """The files a clone would have (tracked and not-ignored files of this checkout, so uncommitted
    work is tested too); a plain copy without caches where git is unavailable."""
    try:
        names = (
            subprocess.run(
                ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                cwd=ROOT,
                capture_output=True,
                check=True,
            )
            .stdout.decode()
            .split("\0")
        )
    except (OSError, subprocess.CalledProcessError):
        shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(".git", ".venv", "outputs", "__pycache__", "*.pyc"))
        return dest
    for name in filter(None, names):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


def digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.browser
def test_readme_commands_run_as_written_and_leave_shipped_files_alone(tmp_path):
    repo = fresh_copy(tmp_path / "clone")
    shipped = digests(repo / "assets")
    assert shipped, "the copy has no assets/"
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # `python` is this venv's
    env.pop("PYTHONPATH", None)  # the commands must find dllm_viz from the project root on their own
    runnable = [c for c in COMMANDS if entry_for(c) not in ELSEWHERE]
    # Two lanes, each in README order, side by side (CI has 2 cores; every command uses one thread):
    # the benchmarks read nothing another command writes, and nothing reads what they print.
    lanes = [
        [c for c in runnable if c.startswith("python bench/")],
        [c for c in runnable if not c.startswith("python bench/")],
    ]
    running: dict[int, str] = {}
    ran = []

    def run_lane(lane: int) -> None:
        for command in lanes[lane]:
            extra, expected = SHORT[entry_for(command)]
            argv = shlex.split(command) + extra
            running[lane] = command
            start = time.perf_counter()
            proc = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, timeout=300)
            seconds = time.perf_counter() - start
            ran.append((command, round(seconds, 1)))
            print(f"{seconds:6.1f} s  {command[:100]}")  # shown with pytest -s
            out = f"$ {shlex.join(argv)}\n--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}"
            assert "Traceback" not in proc.stderr, out
            if expected == "ok":
                assert proc.returncode == 0, out
            else:  # a real dLLM from the Hub, offline here: a clean refusal that names the model
                model = argv[argv.index("--model") + 1]
                assert proc.returncode == 2 and model in proc.stderr, out
            # the shipped files are exactly as they were after every command
            now = digests(repo / "assets")
            changed = {k: now.get(k) for k in shipped} != shipped
            assert not changed, f"a shipped file under assets/ changed while these ran: {sorted(set(running.values()))}"
        running.pop(lane, None)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for lane in [pool.submit(run_lane, i) for i in range(2)]:
            lane.result()  # re-raises a lane's failure here
    assert len(ran) >= 8, ran

    # What the README says they write is there.
    from dllm_viz.trace import Trace

    assert Trace.load(repo / "trace.json").text
    assert (repo / "outputs/tiny-dllm/final/model.safetensors").is_file()
    png = repo / "outputs/semi-ar/pareto.png"
    if png.exists() or os.environ.get("DLLM_VIZ_REQUIRE_BROWSER") == "1":  # kaleido needs chromium (CI has it)
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (repo / "outputs/semi-ar/pareto.html").stat().st_size > 1_000_000  # plotly.js embedded


def test_rerunning_a_writing_command_is_refused_and_changes_nothing(tmp_path):
    """A README command run twice must not overwrite what the first run wrote."""
    repo = fresh_copy(tmp_path / "clone")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    command = next(c for c in COMMANDS if c.startswith("python -m dllm_viz.generate --prompt") and "--save-trace" in c)
    argv = shlex.split(command)
    target = repo / argv[argv.index("--save-trace") + 1]
    target.write_text("earlier work")
    proc = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "already exists" in proc.stderr and "--force" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and target.read_text() == "earlier work"


def test_readme_python_examples_run_as_written(tmp_path):
    """Every ```python block of the README that uses the library (``import dllm_viz``) runs, as
    written, in a fresh interpreter from another directory (the gradio_client example needs a
    served app: tests/ui/test_explore_app.py runs that path)."""
    text = (ROOT / "README.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "import dllm_viz" in b]
    assert blocks, "the README lost its Python example"
    for block in blocks:
        proc = subprocess.run(
            [sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=300,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "trace.json").is_file()
