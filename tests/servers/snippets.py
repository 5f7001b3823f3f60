"""Run the Python blocks of a docs page, as a reader would paste them, against local servers.

`python -m tests.servers.snippets PAGE` (from the repository root; the current directory may
be a scratch one) runs PAGE's fenced ```python blocks in order, in one namespace, and prints
one line per block. A block is skipped when the comment line right above its fence says so:

* `<!-- no-run: why -->`: it cannot run standalone (a fragment of someone's app, a remote
  control plane, a signature); the reason is required and tests/test_docs.py counts them;
* `<!-- needs: module, ... -->`: it runs when those modules import, else it is only
  checked for names it uses but does not define (the mistake that most often slips in):
  such a block imports every module it uses (`policy`, `client` and `url` are given).

What the blocks get, so that they run as written:

* every `127.0.0.N:PORT` in a block is served by a local backend (`meshclient.testing.Backend`)
  on 127.0.0.N and a free port, substituted before the block runs;
* `users` and `search` are services of the process's default policy (the environment) and
  of `policy`, on two local backends; `client` is a `meshclient.Client` on that policy and
  `url` a URL of `users`; `mesh.toml` and `mesh-v2.toml` in the current directory describe
  the same; `/etc/ssl/internal-ca.pem` is replaced by a throwaway CA bundle;
* nothing leaves loopback: name lookups other than localhost and connections to other
  addresses fail at once.
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import contextlib
import ipaddress
import os
import re
import socket
import symtable
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
_MARK = re.compile(r"<!--\s*(no-run|needs):\s*(.*?)\s*-->\s*\Z", re.S)
_ADDRESS = re.compile(r"\b(127\.0\.0\.\d{1,3}):(\d{2,5})\b")
CA_PATH = "/etc/ssl/internal-ca.pem"


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    code: str
    no_run: str | None = None  # the reason
    needs: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def blocks(path: Path, root: Path) -> list[Block]:
    """The page's ```python blocks with their markers."""
    text = path.read_text()
    found = []
    for match in _FENCE.finditer(text):
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = _MARK.search(before)
        kind, value = (mark.group(1), mark.group(2)) if mark else (None, "")
        found.append(Block(
            page=str(path.relative_to(root)), line=text.count("\n", 0, match.start()) + 1,
            code=match.group(1), no_run=value if kind == "no-run" else None,
            needs=tuple(m.strip() for m in value.split(",") if m.strip()) if kind == "needs"
            else ()))
    return found


def undefined_names(code: str, known: set[str]) -> set[str]:
    """Global names `code` reads that it does not bind and `known` lacks (nor builtins)."""
    table = symtable.symtable(code, "<block>", "exec")
    names: set[str] = set()

    def walk(t: symtable.SymbolTable) -> None:
        for sym in t.get_symbols():
            if sym.is_referenced() and (sym.is_global() or t.get_type() == "module"):
                names.add(sym.get_name())
        for child in t.get_children():
            walk(child)

    walk(table)
    bound = {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}
    return names - bound - known - set(dir(builtins))


def _loopback(host: Any) -> bool:
    if host in (None, "localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def guard_network() -> None:
    """Name lookups and connections reach loopback only (a refused call, not a hang)."""
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, bytes):
            host = host.decode()
        if not _loopback(host):
            raise socket.gaierror(socket.EAI_NONAME, f"docs snippets stay on loopback: {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
            raise ConnectionRefusedError(f"docs snippets stay on loopback: {address[0]}")
        real_connect(self, address)

    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
    socket.socket.connect = connect  # type: ignore[method-assign]


def run_page(page: Path, root: Path) -> int:
    from meshclient.testing import Backend

    guard_network()
    with contextlib.ExitStack() as stack:
        users = stack.enter_context(Backend("127.0.0.1", name="users"))
        search = stack.enter_context(Backend("127.0.0.1", name="search"))
        served: dict[str, str] = {}

        def serve(match: re.Match[str]) -> str:
            if match.group(0) not in served:
                backend = stack.enter_context(Backend(match.group(1)))
                served[match.group(0)] = backend.address
            return served[match.group(0)]

        os.environ["MESHCLIENT_ENDPOINTS_USERS"] = users.address
        os.environ["MESHCLIENT_ENDPOINTS_SEARCH"] = search.address
        document = f'[services.users]\nendpoints = ["{users.address}"]\n' \
                   f'[services.search]\nendpoints = ["{search.address}"]\n'
        Path("mesh.toml").write_text(document)
        Path("mesh-v2.toml").write_text(f'version = "v2"\n{document}')
        ca = _ca_bundle()

        import httpx

        import meshclient

        policy = meshclient.Policy.load("mesh.toml")
        client = stack.enter_context(meshclient.Client(policy=policy))
        given: dict[str, Any] = {"httpx": httpx, "meshclient": meshclient, "policy": policy,
                                 "client": client, "url": "http://users/v1/users/42"}
        namespace: dict[str, Any] = {"__name__": "__main__"}
        failed = 0
        for block in blocks(page, root):
            # Names a block defines stay for the next ones (as in a session), but the given
            # ones are given again: "your policy" in a later block is a live one.
            namespace.update(given)
            code = _ADDRESS.sub(serve, block.code).replace(CA_PATH, ca)
            if block.no_run is not None:
                print(f"{block.where}: no-run ({block.no_run})")
                continue
            missing = [m for m in block.needs if not _importable(m)]
            if missing:  # it must import what it uses; "your policy" and the like are given
                unknown = undefined_names(code, {"policy", "client", "url"})
                if unknown:
                    failed += 1
                    print(f"{block.where}: FAILED: undefined names {sorted(unknown)}")
                else:
                    print(f"{block.where}: skipped, needs {', '.join(missing)} (names check out)")
                continue
            try:
                _execute(code, block.where, namespace)
            except BaseException:
                failed += 1
                print(f"{block.where}: FAILED\n{traceback.format_exc()}")
            else:
                print(f"{block.where}: ran")
        return 1 if failed else 0


def _execute(code: str, where: str, namespace: dict[str, Any]) -> None:
    """Run `code`; a block with a top-level `await` runs on an event loop."""
    compiled = compile(code, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(compiled, namespace)  # the docs' own code, on loopback
    if asyncio.iscoroutine(result):
        asyncio.run(result)


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def _ca_bundle() -> str:
    import trustme

    path = Path("internal-ca.pem").resolve()
    trustme.CA().cert_pem.write_to_path(str(path))
    return str(path)


if __name__ == "__main__":
    here = Path.cwd()
    root_dir = Path(sys.argv[2]).resolve() if len(sys.argv) > 2 else here
    sys.exit(run_page((root_dir / sys.argv[1]).resolve(), root_dir))
