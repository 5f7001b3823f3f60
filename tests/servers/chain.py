"""Services of a real call chain, each its own process, for one-layer retry tests.

`python -m tests.servers.chain MODE HOST PORT [NEXT]` serves until terminated:

* `leaf`: answers every request 503 (standard library server);
* `asgi`: a Starlette app behind `meshclient.asgi.MeshMiddleware` under uvicorn, whose
  handler calls `http://next/<path>` through `AsyncMeshTransport` (the service `next` is
  the address `NEXT`) and answers with that call's status;
* `handler`: the same app without the middleware, its endpoint decorated with
  `@meshclient.handler`;
* `wsgi`: a WSGI app behind `meshclient.wsgi.MeshMiddleware` on a threaded `wsgiref`
  server, calling on through the sync `MeshTransport`.

Every mode answers `GET /_hits` with the number of other requests it has served (as text).
`chain_policy(next)` is the policy every middle service calls on with: 3 attempts, a 1-2 ms
backoff, the default budget with a 1 s ttl, breakers and outlier ejection off.

A middle service imports the mesh transport before it serves, so the first request does
not pay for the imports (seconds on a loaded machine); its client waits `CALL_TIMEOUT_S`
for an answer, far more than any answer takes, so a slow machine never turns a slow
answer into a timeout the mesh would retry.
"""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx

from meshclient.policy import Policy
from tests.servers.ports import free_port
from tests.servers.process import ServerProcess

BUDGET_TTL_S = 1.0
HITS_PATH = "/_hits"
#: httpx timeout of every call along the chain (and of the test's caller): generous on purpose
CALL_TIMEOUT_S = 30.0


def chain_policy(next_address: str) -> Policy:
    return Policy.from_dict({"services": {"next": {
        "endpoints": [next_address],
        "retry": {"attempts": 3, "backoff": {"base": "1ms", "max": "2ms"},
                  "budget": {"ttl": f"{BUDGET_TTL_S:g}s"}},
        "breaker": {"failures": 10_000},
        "outlier": {"consecutive_failures": 0},
    }}})


class ChainService(ServerProcess):
    """One service of the chain as a real process (`with` starts it, waits until it answers,
    and stops it)."""

    start_timeout_s = 30.0  # interpreter start and imports, on a loaded machine

    def __init__(self, mode: str, host: str, next_address: str | None = None) -> None:
        self.name = f"chain-{mode}"
        self.mode = mode
        self.host = host
        self.port = free_port(host)
        self.address = f"{host}:{self.port}"
        self.next_address = next_address

    def argv(self) -> list[str]:
        extra = [self.next_address] if self.next_address else []
        return [sys.executable, "-m", "tests.servers.chain", self.mode, self.host,
                str(self.port), *extra]

    def answers(self) -> bool:
        try:
            self.hits(timeout_s=2.0)
        except (httpx.HTTPError, ValueError):
            return False
        return True

    def hits(self, timeout_s: float = CALL_TIMEOUT_S) -> int:
        """Requests served, other than `/_hits`."""
        r = httpx.get(f"http://{self.address}{HITS_PATH}", timeout=timeout_s)
        r.raise_for_status()
        return int(r.text)


class _Count:
    def __init__(self) -> None:
        self.value = 0
        self.lock = threading.Lock()

    def add(self) -> None:
        with self.lock:
            self.value += 1


HITS = _Count()


def _serve_leaf(host: str, port: int) -> None:
    class Leaf(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self.path == HITS_PATH:
                status, body = 200, str(HITS.value).encode()
            else:
                HITS.add()
                status, body = 503, b"unavailable\n"
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    ThreadingHTTPServer((host, port), Leaf).serve_forever()


def _asgi_app(next_address: str, decorated: bool) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    import meshclient.asgi  # here: only the processes that serve ASGI pay for the import

    transport_class = meshclient.AsyncMeshTransport  # imported now, before serving
    client: list[httpx.AsyncClient] = []

    async def forward(request: Request) -> Response:
        HITS.add()
        if not client:
            client.append(httpx.AsyncClient(timeout=CALL_TIMEOUT_S,
                                            transport=transport_class(chain_policy(next_address))))
        try:
            r = await client[0].get(f"http://next{request.url.path}")
            return Response(status_code=r.status_code)
        except httpx.HTTPError:
            return Response(status_code=502)

    async def hits(request: Request) -> Response:
        return PlainTextResponse(str(HITS.value))

    endpoint = meshclient.handler(forward) if decorated else forward
    app = Starlette(routes=[Route(HITS_PATH, hits), Route("/{path:path}", endpoint)])
    return app if decorated else meshclient.asgi.MeshMiddleware(app)


def _wsgi_app(next_address: str) -> Any:
    import meshclient.wsgi

    client = httpx.Client(timeout=CALL_TIMEOUT_S,
                          transport=meshclient.MeshTransport(chain_policy(next_address)))

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == HITS_PATH:
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [str(HITS.value).encode()]
        HITS.add()
        try:
            status = client.get(f"http://next{path}").status_code
        except httpx.HTTPError:
            status = 502
        start_response(f"{status} X", [("Content-Length", "0")])
        return [b""]

    return meshclient.wsgi.MeshMiddleware(app)


class _ThreadedWSGI(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietWSGIHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def main(argv: list[str]) -> None:
    mode, host, port = argv[0], argv[1], int(argv[2])
    if mode == "leaf":
        _serve_leaf(host, port)
    elif mode == "wsgi":
        make_server(host, port, _wsgi_app(argv[3]), server_class=_ThreadedWSGI,
                    handler_class=_QuietWSGIHandler).serve_forever()
    elif mode in ("asgi", "handler"):
        import uvicorn

        uvicorn.run(_asgi_app(argv[3], mode == "handler"), host=host, port=port,
                    log_level="warning", lifespan="off")
    else:
        raise SystemExit(f"mode must be leaf, asgi, handler or wsgi, not {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
