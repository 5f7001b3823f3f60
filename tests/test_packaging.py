"""pyproject.toml tells the truth: every package meshclient imports is declared (a
dependency, or an extra for the optional parts), the licence is an SPDX expression, and
the version is written once."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _imported(top_level_only: bool) -> set[str]:
    """Third-party top-level modules imported by meshclient (at module level, or anywhere).
    At module level, the demo and xds packages are left out: they are the demo and xds
    extras', loaded only when rich is there (the demo) or a bootstrap is present (xDS)."""
    found: set[str] = set()
    for path in (ROOT / "meshclient").rglob("*.py"):
        if top_level_only and {"demo", "xds"} & set(path.relative_to(ROOT).parts):
            continue
        tree = ast.parse(path.read_text())
        nodes = tree.body if top_level_only else list(ast.walk(tree))
        for node in nodes:
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m != "meshclient"}


def _distributions(modules: set[str]) -> dict[str, set[str]]:
    mapping = importlib.metadata.packages_distributions()
    return {m: {d.lower().replace("_", "-") for d in mapping.get(m, [m])} for m in modules}


@pytest.mark.slow
def test_what_meshclient_imports_at_module_level_is_a_dependency() -> None:
    declared = {_name(r) for r in PROJECT["dependencies"]}
    for module, dists in _distributions(_imported(top_level_only=True)).items():
        assert dists & declared, f"meshclient imports {module} ({dists}) at module level " \
                                 "but pyproject.toml does not depend on it"


@pytest.mark.slow
def test_every_optional_import_is_in_an_extra() -> None:
    declared = {_name(r) for r in PROJECT["dependencies"]}
    for extra in PROJECT["optional-dependencies"].values():
        declared |= {_name(r) for r in extra}
    for module, dists in _distributions(_imported(top_level_only=False)).items():
        assert dists & declared, f"meshclient imports {module} ({dists}); no extra names it"


def test_licence_and_version() -> None:
    assert PROJECT["license"] == "Apache-2.0"  # an SPDX expression, not the deprecated table
    assert "version" not in PROJECT and "version" in PROJECT["dynamic"]
    assert any(c.startswith("Programming Language :: Python :: 3.10")
               for c in PROJECT["classifiers"])
