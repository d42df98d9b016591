"""The package's layers, read from the source with ``ast``: which subpackages may import which.

Every import counts, relative ones resolved against the module's package and ones inside
functions included, so a lazy ``from ..tiny.evaluate import solve`` is caught like a top-level one.
(Imports by string, ``importlib.import_module("dllm_viz...")``, are not seen.)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "dllm_viz"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, is_package: bool = False) -> set[str]:
    """Absolute names of everything ``source`` imports; ``from m import a`` yields ``m`` and ``m.a``
    (``a`` may be a submodule: ``from . import tiny``)."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                if node.level - 1 >= len(parts):
                    raise ValueError(f"{module}: relative import beyond the top-level package")
                base = ".".join(parts[: len(parts) - (node.level - 1)])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names if alias.name != "*")
    return found


def modules_of(*subpackages: str) -> dict[str, set[str]]:
    """``{module: imports}`` for every module of the given subpackages (``engine`` or ``eval``)."""
    out = {}
    for sub in subpackages:
        paths = sorted((PACKAGE / sub).rglob("*.py")) if (PACKAGE / sub).is_dir() else [PACKAGE / f"{sub}.py"]
        assert paths and all(p.is_file() for p in paths), f"dllm_viz.{sub} not found"
        for path in paths:
            name = module_name(path)
            out[name] = imported_modules(path.read_text(encoding="utf-8"), name, path.name == "__init__.py")
    return out


def violations(importers: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    banned = tuple(f"dllm_viz.{f}" for f in forbidden)
    return sorted(
        f"{module} imports {name}"
        for module, names in modules_of(*importers).items()
        for name in names
        if any(name == b or name.startswith(b + ".") for b in banned)
    )


CORE = ("engine", "strategies", "trace", "backends", "features")
RULES = [
    pytest.param(("eval",), ("tiny",), id="eval-not-tiny"),
    pytest.param(("eval",), ("ui",), id="eval-not-ui"),
    pytest.param(("ui",), ("policy", "rl"), id="ui-not-policy-rl"),  # policies reach the app through strategies
    pytest.param(CORE, ("ui", "eval", "rl", "tiny", "views"), id="core-not-consumers"),
]


@pytest.mark.parametrize(("importers", "forbidden"), RULES)
def test_layering(importers, forbidden):
    found = violations(importers, forbidden)
    assert not found, "layering broken:\n" + "\n".join(found)


def test_relative_imports_resolve_including_ones_inside_functions():
    source = (
        "import os\n"
        "from ..tiny.evaluate import solve\n"
        "from . import stats\n"
        "def f():\n"
        "    from .. import x\n"
        "    from dllm_viz.ui import app\n"
    )
    found = imported_modules(source, "dllm_viz.eval.sweep")
    assert {"os", "dllm_viz.tiny.evaluate", "dllm_viz.eval.stats", "dllm_viz.ui.app", "dllm_viz.x"} <= found
    # In a package's __init__, "." is the package itself.
    assert "dllm_viz.eval.sweep" in imported_modules("from .sweep import sweep\n", "dllm_viz.eval", is_package=True)
    with pytest.raises(ValueError, match="beyond"):
        imported_modules("from .... import x\n", "dllm_viz.eval.sweep")


def test_the_rules_see_a_violation():
    """The checker is not vacuous: eval imports the engine, which ``core`` rules would forbid to it."""
    assert any("dllm_viz.eval.sweep imports dllm_viz.engine" in v for v in violations(("eval",), ("engine",)))
