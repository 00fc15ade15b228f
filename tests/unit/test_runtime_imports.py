"""Every third-party module the packages import comes with ``pip install .`` (no extras).

A static check (the AST of every module, lazy imports included) against the runtime
dependency closure of pyproject's ``dependencies``; ``tests/e2e/test_wheel_install.py``
proves the same on a real clean install.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parents[2]
PACKAGES = ("events", "ingest", "processors", "sinks", "wcs_analytics")


def imported_modules() -> dict[str, str]:
    """Top-level module name -> one file importing it, for every module of the packages."""
    found: dict[str, str] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for name in names:
                    found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def runtime_closure() -> set[str]:
    """Canonical names of the runtime dependencies and everything they require (with extras)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    todo = [(Requirement(text), "") for text in project["dependencies"]]
    seen: set[str] = set()
    while todo:
        requirement, extra = todo.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        extras = sorted(requirement.extras) or [""]
        key_new = name not in seen
        seen.add(name)
        if not key_new and extras == [""]:
            continue
        for text in md.requires(name) or []:
            todo += [(Requirement(text), wanted) for wanted in extras]
    return seen


def test_every_imported_distribution_is_a_runtime_dependency() -> None:
    ours = set(PACKAGES)
    provided = md.packages_distributions()
    closure = runtime_closure()
    missing = {}
    for module, where in imported_modules().items():
        if module in ours or module in sys.stdlib_module_names:
            continue
        dists = {canonicalize_name(d) for d in provided.get(module, [])}
        if not dists & closure:
            missing[module] = (where, sorted(dists))
    assert not missing, f"imported but not installed by `pip install .`: {missing}"


def test_the_check_sees_lazy_imports_and_dev_only_packages() -> None:
    modules = imported_modules()
    assert "httpx" in modules and "uvloop" in modules  # uvloop is imported inside functions
    assert "pytest" not in runtime_closure()  # a dev-only package would be reported
