"""The package as installed: its version, what a wheel carries, and where it finds the shipped assets.

``pip install -e .`` (the README's install and test commands) must have run: the version is read
from the installed metadata, not from the source tree.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path

import pytest

import dllm_viz
from dllm_viz import assets
from dllm_viz.backends import BUILTIN_MODEL

ROOT = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib") if sys.version_info >= (3, 11) else pytest.importorskip("tomli")


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_version_is_the_installed_metadata_version():
    try:
        installed = importlib.metadata.version("dllm-viz")
    except importlib.metadata.PackageNotFoundError:
        pytest.fail("dllm-viz is not installed in this environment: run `pip install -e .` (the README's install)")
    assert dllm_viz.__version__ == installed, "reinstall (`pip install -e .`) after changing dllm_viz.__version__"
    assert pyproject()["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "dllm_viz.__version__"}


def test_the_changelog_opens_with_this_version_and_links_inside_the_repo():
    import re

    changelog = (ROOT / "CHANGELOG.md").read_text()
    versions = re.findall(r"^## (\S+)", changelog, flags=re.M)
    assert versions[0] == dllm_viz.__version__, f"CHANGELOG.md's first section is {versions[0]}"
    for doc in (ROOT / "CHANGELOG.md", ROOT / "docs" / "release.md"):
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", doc.read_text()):
            assert not target.startswith(("http:", "https:")), f"{doc.name} links outside the repo: {target}"
            assert (doc.parent / target).exists(), f"{doc.name} links to {target}, which is not in the repo"


def test_shipped_text_cites_nothing_outside_the_repo_and_no_issue_numbers():
    """Users have the repository only: code, docs and benchmarks cite the papers, upstream code or
    files inside it, and say what and why rather than which issue asked for it."""
    import re

    files = [ROOT / "app.py", ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("bench/*.py")]
    files += [*(ROOT / "dllm_viz").rglob("*.py"), *(ROOT / "dllm_viz").rglob("*.md")]
    outside = re.compile(r"(\.\./)?shared/(reference|data|ARCHITECTURE|STYLE)")
    history = re.compile(r"\b(issue|item) \d+", re.I)
    for path in files:
        text = path.read_text()
        for pattern in (outside, history):
            hit = pattern.search(text)
            assert hit is None, f"{path.relative_to(ROOT)}: {hit.group(0)!r} ({pattern.pattern})"


def test_every_subpackage_is_in_the_wheel():
    listed = set(pyproject()["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "dllm_viz").rglob("__init__.py")}
    assert found - listed == set(), "add these packages to [tool.setuptools] packages in pyproject.toml"
    assert listed - found == {"dllm_viz._assets"}


def test_every_shipped_asset_is_in_the_wheel():
    patterns = pyproject()["tool"]["setuptools"]["package-data"]["dllm_viz._assets"]
    files = [p.relative_to(ROOT / "assets").as_posix() for p in (ROOT / "assets").rglob("*") if p.is_file()]
    assert files
    missing = [
        f for f in files if not any(fnmatch(f, pattern) and f.count("/") == pattern.count("/") for pattern in patterns)
    ]
    assert not missing, f"package-data in pyproject.toml misses these files under assets/: {missing}"


def test_the_checkout_uses_its_own_assets_folder():
    assert assets.ASSETS == ROOT / "assets"
    assert Path(BUILTIN_MODEL) == ROOT / "assets" / "tiny-dllm"
    assert (Path(BUILTIN_MODEL) / "config.json").is_file()


def test_an_installed_wheel_uses_the_copy_inside_the_package(tmp_path, monkeypatch):
    package = tmp_path / "site-packages" / "dllm_viz"
    (package / "_assets" / "tiny-dllm").mkdir(parents=True)
    monkeypatch.setattr(assets, "_PACKAGE", package)
    assert assets._locate() == package / "_assets"


def test_tests_mirror_the_package():
    """A test folder is named after the subpackage it tests (tests/ui for dllm_viz/ui, …)."""
    folders = {p.parent.name for p in (ROOT / "tests").glob("*/test_*.py")}
    subpackages = {p.parent.name for p in (ROOT / "dllm_viz").glob("*/__init__.py")}
    assert folders and folders <= subpackages, sorted(folders - subpackages)


# Hugging Face refuses a pushed file over 10 MB, or any binary, unless Git LFS stores it.
SPACE_FILE_LIMIT = 10 * 1024 * 1024


def is_binary(path: Path) -> bool:
    """Git's own test: a NUL byte in the first 8000 bytes."""
    with path.open("rb") as f:
        return b"\0" in f.read(8000)


def lfs_tracked(paths: list[str]) -> dict[str, bool]:
    """Whether .gitattributes gives each path ``filter=lfs`` (asked of git, so git's pattern rules apply)."""
    out = subprocess.run(
        ["git", "check-attr", "-z", "filter", "--", *paths], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    return {out[i].decode(): out[i + 2] == b"lfs" for i in range(0, len(out) - 2, 3)}


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout")
def test_every_binary_and_large_file_is_lfs_tracked():
    files = (
        subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    )
    heavy = [
        f
        for f in files
        if f and (ROOT / f).is_file() and (is_binary(ROOT / f) or (ROOT / f).stat().st_size > SPACE_FILE_LIMIT)
    ]
    assert "assets/tiny-dllm/model.safetensors" in heavy  # the check sees the files it must see
    tracked = lfs_tracked(heavy)
    missing = sorted(f for f in heavy if not tracked[f])
    assert not missing, f"add an LFS pattern to .gitattributes for: {missing}"


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout")
def test_lfs_patterns_cover_new_artefacts_and_leave_text_alone():
    tracked = lfs_tracked(
        [
            "outputs/run/checkpoint-best/model.safetensors",
            "docs/results/x/pareto.png",
            "x/anim.gif",
            "README.md",
            "assets/tiny-dllm/config.json",
            "docs/results/x/runs.csv",
        ]
    )
    assert [f for f, lfs in tracked.items() if lfs] == [
        "outputs/run/checkpoint-best/model.safetensors",
        "docs/results/x/pareto.png",
        "x/anim.gif",
    ]


def front_matter() -> dict:
    import yaml

    text = (ROOT / "README.md").read_text()
    assert text.startswith("---\n"), "README.md must start with the Space's front matter"
    return yaml.safe_load(text.split("---\n", 2)[1])


def test_the_space_front_matter_matches_the_lock():
    meta = front_matter()
    lock = dict(line.split("==") for line in (ROOT / "requirements.txt").read_text().splitlines() if "==" in line)
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == lock["gradio"]
    assert meta["app_file"] == "app.py" and (ROOT / "app.py").is_file()
    assert isinstance(meta["python_version"], str) and meta["python_version"].startswith("3.")
    assert lock["torch"] == "2.13.0"  # the lock pins torch; the package's own range does not


def test_the_package_declares_ranges_and_never_a_bare_torch_pin():
    project = pyproject()["project"]
    assert "dependencies" not in project.get("dynamic", []), "pyproject.toml lists its ranges itself"
    torch_req = next(r for r in project["dependencies"] if r.startswith("torch"))
    assert torch_req.startswith("torch>="), torch_req  # keeps a user's newer torch
    assert set(project["optional-dependencies"]) >= {"export", "remote", "dev"}


def test_the_deploy_guide_names_every_environment_variable():
    import re

    used = set()
    for path in [*(ROOT / "dllm_viz").rglob("*.py"), *(ROOT / "tests").rglob("*.py"), ROOT / "app.py"]:
        used |= set(re.findall(r"DLLM_VIZ_[A-Z_]+[A-Z]", path.read_text()))
    documented = set(re.findall(r"`(DLLM_VIZ_[A-Z_]+)`", (ROOT / "docs" / "deploy.md").read_text()))
    assert used and used <= documented, f"add to docs/deploy.md: {sorted(used - documented)}"
