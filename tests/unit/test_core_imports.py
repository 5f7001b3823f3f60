"""The decision core is sans-I/O: walk every module of `meshclient/_core` with `ast` and
refuse imports of sockets, threads, event loops, sleeps, transports and httpx I/O classes."""

from __future__ import annotations

import ast
from pathlib import Path

import meshclient._core

CORE = Path(meshclient._core.__file__).parent

FORBIDDEN_MODULES = ("socket", "ssl", "threading", "asyncio", "selectors", "time", "anyio",
                     "trio", "concurrent", "multiprocessing", "subprocess", "httpcore",
                     "meshclient.transport", "meshclient._runtime")
FORBIDDEN_HTTPX = ("HTTPTransport", "AsyncHTTPTransport", "Client", "AsyncClient",
                   "BaseTransport", "AsyncBaseTransport", "get", "post", "request", "stream")


def _resolve(module: str | None, level: int, path: Path) -> str:
    if level == 0:
        return module or ""
    package = ["meshclient", *path.relative_to(CORE.parent).parent.parts]
    base = package[: len(package) - (level - 1)]
    return ".".join([*base, module] if module else base)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, path: Path) -> list[tuple[str, list[str], int]]:
    """(module, names, line) for every import outside `if TYPE_CHECKING:` blocks."""
    out: list[tuple[str, list[str], int]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.extend((a.name, [], node.lineno) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            out.append((_resolve(node.module, node.level, path), [a.name for a in node.names],
                        node.lineno))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return out


def _violations(path: Path, source: str | None = None) -> list[str]:
    tree = ast.parse(path.read_text() if source is None else source, str(path))
    problems = []
    for module, names, line in _imports(tree, path):
        for bad in FORBIDDEN_MODULES:
            if module == bad or module.startswith(bad + "."):
                problems.append(f"{path.name}:{line} imports {module}")
        if module == "meshclient" and any(n.startswith(("transport", "_runtime")) for n in names):
            problems.append(f"{path.name}:{line} imports {names} from meshclient")
        if module == "httpx":
            problems += [f"{path.name}:{line} imports httpx.{n}" for n in names
                         if n in FORBIDDEN_HTTPX]
    # `httpx.HTTPTransport(...)`-style attribute use and `time.sleep` through any alias
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == "httpx" and node.attr in FORBIDDEN_HTTPX:
                problems.append(f"{path.name}:{node.lineno} uses httpx.{node.attr}")
            if node.attr == "sleep":
                problems.append(f"{path.name}:{node.lineno} calls {node.value.id}.sleep")
    return problems


def test_core_modules_exist() -> None:
    names = {p.name for p in CORE.glob("*.py")}
    assert {"flow.py", "actions.py"} <= names


def test_core_imports_no_io() -> None:
    problems = [p for path in sorted(CORE.rglob("*.py")) for p in _violations(path)]
    assert not problems, "\n".join(problems)


def test_checker_catches_violations() -> None:
    # the walker itself works: a module with forbidden imports is flagged (never written)
    source = ("import time\nfrom threading import Lock\nfrom ..transport import _sync\n"
              "import httpx\nhttpx.HTTPTransport()\nfrom typing import TYPE_CHECKING\n"
              "if TYPE_CHECKING:\n    import socket\n")
    problems = _violations(CORE / "_probe.py", source)
    for needle in ("imports time", "imports threading", "imports meshclient.transport",
                   "uses httpx.HTTPTransport"):
        assert any(needle in p for p in problems), (needle, problems)
    assert not any("socket" in p for p in problems)  # type-only imports are allowed
