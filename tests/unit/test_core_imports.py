"""The decision core stays sans-I/O: no module in meshclient/_core imports sockets, threads,
asyncio, time or a transport (walks each module's `import` statements)."""

from __future__ import annotations

import ast
from pathlib import Path

import meshclient._core

FORBIDDEN = ("socket", "threading", "asyncio", "time", "anyio", "trio", "concurrent",
             "selectors", "ssl", "httpcore", "meshclient.transport", "meshclient._runtime",
             "meshclient._clock")


def _type_checking_only(path: Path) -> set[int]:
    tree = ast.parse(path.read_text())
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for child in ast.walk(node):
                if hasattr(child, "lineno"):
                    lines.add(child.lineno)
    return lines


def test_core_imports_no_io() -> None:
    root = Path(meshclient._core.__file__).parent
    bad = []
    for path in sorted(root.glob("*.py")):
        skip = _type_checking_only(path)
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or node.lineno in skip:
                continue
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif node.level:
                base = ["meshclient", "_core"][: 3 - node.level]
                modules = [".".join(base + ([node.module] if node.module else []))]
            else:
                modules = [node.module or ""]
            for module in modules:
                if any(module == f or module.startswith(f + ".") for f in FORBIDDEN):
                    bad.append(f"{path.name}:{node.lineno} imports {module}")
    assert not bad, bad
