"""Layering: the app (dllm_viz/ui) reaches policies only through the strategies layer, never the
policy network or RL training modules themselves, so those can change without touching the app."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import dllm_viz

PACKAGE = Path(dllm_viz.__file__).parent
FORBIDDEN = {("dllm_viz", "policy"), ("dllm_viz", "rl")}  # these packages and everything in them


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-level imports too), relative ones resolved."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join([*base, *([node.module] if node.module else [])])
            found.add(target)
            found |= {f"{target}.{alias.name}" for alias in node.names}  # `from .. import policy`
    return found


def test_imports_are_resolved():
    ui = PACKAGE / "ui" / "settings.py"
    assert "dllm_viz.strategies.learned" in imported_modules(ui)
    assert "dllm_viz.engine.EngineConfig" in imported_modules(ui)


@pytest.mark.parametrize("path", sorted((PACKAGE / "ui").glob("*.py")), ids=lambda p: p.name)
def test_ui_imports_no_policy_or_rl_module(path):
    bad = sorted(m for m in imported_modules(path) if tuple(m.split(".")[:2]) in FORBIDDEN)
    assert not bad, f"{path.name} imports {bad}; go through dllm_viz.strategies"
