"""meshclient's imports form no cycle.

The graph is read from the source with `ast`. Imports under `if TYPE_CHECKING:` do not
count (they never run). Imports inside functions count too: an import moved into a
function still runs, only later, so a cycle hidden there is still a cycle; the only lazy
imports that stay out of the graph are of optional third-party extras (the graph has
meshclient's modules only). It is checked twice: with meshclient's subpackages and
top-level modules as nodes (`meshclient.policy`, `meshclient._core`, `meshclient.errors`,
...), and with every module as a node.
"""

from __future__ import annotations

import ast
import pathlib
from collections.abc import Iterator

import meshclient

PACKAGE = pathlib.Path(meshclient.__file__).parent

#: Cycles left on purpose, each with the reason (none today).
KNOWN: dict[frozenset[str], str] = {}


def _module_name(path: pathlib.Path, root: pathlib.Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(body: list[ast.stmt], *, lazy: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """The imports in `body` that can run: not under `if TYPE_CHECKING:`; with `lazy`
    also those inside functions (and methods), else only those that run on import."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _imports(node.body, lazy=lazy)
            yield from _imports(node.orelse, lazy=lazy)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if lazy:
                yield from _imports(node.body, lazy=lazy)
        else:
            for block in _blocks(node):
                yield from _imports(block, lazy=lazy)


def _blocks(node: ast.stmt) -> Iterator[list[ast.stmt]]:
    """The statement lists nested in `node` (a class body, with/try/for/while/match blocks)."""
    for _field, value in ast.iter_fields(node):
        if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
            yield value
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, (ast.ExceptHandler, ast.match_case)):
                    yield item.body


def module_graph(root: pathlib.Path, *, lazy: bool = True) -> dict[str, set[str]]:
    """module -> the meshclient modules it imports (`lazy`: in functions too)."""
    paths = {_module_name(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in _imports(tree.body, lazy=lazy):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
                continue
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            submodules = {f"{source}.{alias.name}" for alias in node.names} & paths.keys()
            targets |= submodules
            if len(submodules) < len(node.names):
                targets.add(source)  # names defined in `source` itself
        graph[name] = {t for t in targets if t in paths and t != name}
    return graph


def package_graph(modules: dict[str, set[str]]) -> dict[str, set[str]]:
    """The same imports between meshclient.X nodes (the root package itself left out)."""
    def node(name: str) -> str:
        return ".".join(name.split(".")[:2])

    graph: dict[str, set[str]] = {}
    for source, targets in modules.items():
        for target in targets:
            a, b = node(source), node(target)
            if a != b and "." in a and "." in b:
                graph.setdefault(a, set()).add(b)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path a -> ... -> a) per strongly connected group of nodes."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(v: str) -> None:  # Tarjan; the graph is a few hundred nodes, recursion is fine
        order[v] = low[v] = len(order)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in order:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], order[w])
        if low[v] == order[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in order:
            visit(v)
    return [_path_within(group, graph) for group in groups]


def _path_within(group: set[str], graph: dict[str, set[str]]) -> list[str]:
    """A concrete cycle through the group's first node, for the failure message."""
    start = min(group)
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph.get(v, set()) & group):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [start, *reversed(path[:-1]), start] if v != start else [start, start]
                if w not in parents:
                    parents[w] = v
                    nxt.append(w)
        frontier = nxt
    return sorted(group)


def _report(found: list[list[str]]) -> list[str]:
    return [" -> ".join(c) for c in found if not any(set(c) <= known for known in KNOWN)]


def test_no_cycle_between_subpackages() -> None:
    found = _report(cycles(package_graph(module_graph(PACKAGE))))
    assert not found, "import cycles between meshclient's subpackages:\n" + "\n".join(found)


def test_no_cycle_between_modules() -> None:
    found = _report(cycles(module_graph(PACKAGE)))
    assert not found, "import cycles between meshclient's modules:\n" + "\n".join(found)


def test_the_walk_finds_a_cycle(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "meshclient"
    (root / "alpha").mkdir(parents=True)
    (root / "beta").mkdir()
    (root / "__init__.py").write_text("")
    (root / "alpha" / "__init__.py").write_text("from .one import X\n")
    (root / "alpha" / "one.py").write_text("from ..beta.two import Y\nX = 1\n")
    (root / "beta" / "__init__.py").write_text("")
    (root / "beta" / "two.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..alpha import X\n"
        "def f():\n    from ..alpha import X\nY = 2\n")
    assert cycles(package_graph(module_graph(root, lazy=False))) == []  # typing-only, lazy
    assert cycles(package_graph(module_graph(root))) == [  # the import in a function counts
        ["meshclient.alpha", "meshclient.beta", "meshclient.alpha"]]
    (root / "beta" / "two.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..alpha import X\n"
        "class C:\n    def f(self):\n        try:\n            import yaml\n"
        "        except ImportError:\n            pass\nY = 2\n")
    assert cycles(package_graph(module_graph(root))) == []  # typing-only, third-party extra
    (root / "beta" / "two.py").write_text(
        "class C:\n    def f(self):\n        with open('x'):\n"
        "            from meshclient.alpha.one import X\nY = 2\n")
    assert cycles(module_graph(root)) == [["meshclient.alpha.one", "meshclient.beta.two",
                                           "meshclient.alpha.one"]]
    (root / "beta" / "two.py").write_text("from ..alpha.one import X\nY = 2\n")
    modules = module_graph(root)
    assert cycles(package_graph(modules)) == [["meshclient.alpha", "meshclient.beta",
                                               "meshclient.alpha"]]
    assert cycles(modules) == [["meshclient.alpha.one", "meshclient.beta.two",
                                "meshclient.alpha.one"]]
