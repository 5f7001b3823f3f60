"""Public and private boundaries.

The public surface is `meshclient.__all__` plus the `__all__` of the documented
subpackages, pinned in tests/public_surface.txt: a name added, removed or renamed there
is a decision, made by editing that list. Inside the package, shared types live in
public-named modules: a package may import its own `_` modules, and every module may use
the top-level `meshclient/_x.py` modules and `_x/` packages (`_clock`, `_fork`, `_events`,
`_types`, `_core`, ... the shared infrastructure), but no package imports another
package's `_` module or `_` name. Tests of internals may import what they test.
"""

from __future__ import annotations

import ast
import importlib
import pathlib
from collections.abc import Iterator

import meshclient

PACKAGE = pathlib.Path(meshclient.__file__).parent
SURFACE = pathlib.Path(__file__).with_name("public_surface.txt")


def _pinned() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in SURFACE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            module, _, name = line.partition(": ")
            out.setdefault(module, []).append(name)
    return out


def test_public_surface_is_pinned() -> None:
    pinned = _pinned()
    assert "meshclient" in pinned and len(pinned) >= 10, pinned.keys()
    for module_name, names in pinned.items():
        module = importlib.import_module(module_name)
        exported = list(getattr(module, "__all__", []))
        added, removed = sorted(set(exported) - set(names)), sorted(set(names) - set(exported))
        assert not added and not removed, (
            f"{module_name}.__all__ differs from tests/public_surface.txt: "
            f"added {added}, removed {removed}")
        for name in exported:
            assert getattr(module, name, None) is not None, f"{module_name}.{name} is missing"


def test_documented_subpackages_export_only_their_all() -> None:
    """A public-named attribute of a documented subpackage that is not in its `__all__` is
    an accident (a helper imported into `__init__`): it is listed or made private."""
    for module_name in _pinned():
        module = importlib.import_module(module_name)
        path = pathlib.Path(module.__file__ or "")
        if path.name != "__init__.py" or module_name == "meshclient":
            continue  # a module's own helpers are its business; the root has its own test
        public = {n for n, v in vars(module).items()
                  if not n.startswith("_") and not isinstance(v, type(meshclient))
                  and n != "annotations"}
        assert public <= set(module.__all__), (module_name, sorted(public - set(module.__all__)))


def _module_name(path: pathlib.Path, root: pathlib.Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _private_owner(dotted: str) -> str | None:
    """The package that owns `dotted`'s innermost private part (`meshclient.policy` for
    `meshclient.policy._model`), or None when nothing in it is private."""
    parts = dotted.split(".")
    private = [i for i, part in enumerate(parts) if part.startswith("_")
               and not part.startswith("__")]
    return ".".join(parts[:private[-1]]) if private else None


def crossings(root: pathlib.Path) -> Iterator[str]:
    """`importer:line -> target` for every import (anywhere in a module, typing-only ones
    too) of another package's `_` module or `_` name."""
    paths = {_module_name(p, root): p for p in root.rglob("*.py")}
    top = root.name
    for name, path in sorted(paths.items()):
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                targets = [f"{source}.{alias.name}" for alias in node.names]
            for target in targets:
                if target.split(".")[0] != top:
                    continue
                owner = _private_owner(target)
                if owner is not None and name != owner and not name.startswith(owner + "."):
                    yield f"{name}:{node.lineno} -> {target}"


def test_no_package_imports_another_packages_private_module() -> None:
    found = list(crossings(PACKAGE))
    assert not found, ("imports of another package's private module or name:\n"
                       + "\n".join(found))


def test_the_walk_finds_a_crossing(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "meshclient"
    for folder in ("alpha", "beta"):
        (root / folder).mkdir(parents=True)
        (root / folder / "__init__.py").write_text("")
    (root / "__init__.py").write_text("from .alpha import _one\n")  # the root: still a crossing
    (root / "_shared.py").write_text("S = 1\n")
    (root / "alpha" / "_one.py").write_text("X = 1\n_Y = 2\n")
    (root / "alpha" / "two.py").write_text("from ._one import X\nfrom .._shared import S\n")
    (root / "beta" / "three.py").write_text(
        "from typing import TYPE_CHECKING\nfrom ..alpha.two import X\nfrom .._shared import S\n"
        "if TYPE_CHECKING:\n    from ..alpha._one import X\n"
        "def f():\n    from meshclient.alpha.one import _Y\n")
    assert sorted(crossings(root)) == [
        "meshclient.beta.three:5 -> meshclient.alpha._one.X",
        "meshclient.beta.three:7 -> meshclient.alpha.one._Y",
        "meshclient:1 -> meshclient.alpha._one",
    ]
