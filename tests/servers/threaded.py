"""In-process loopback servers for the tests, each served from a thread.

- `ThreadedHTTPServer`: base of the stdlib `http.server` test servers. It binds its handler
  on a free port of `host` at once (so `address` is known before it serves), serves from a
  daemon thread between `start()` and `stop()` (or `with`), and is the handler's
  `self.server.owner`.
- `QuietHandler`: an HTTP/1.1 request handler that logs nothing.
- `serve_asgi` / `serve_wsgi`: run an ASGI app under uvicorn or a WSGI app under a threading
  wsgiref server; each yields the base URL and stops the server on exit.
- `run_uvicorn`: start a configured uvicorn server in a thread and wait until it listens.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import ThreadingMixIn
from typing import Any, TypeVar
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import uvicorn

from tests.servers.ports import free_port

_POLL_S = 0.01  # how soon serve_forever notices shutdown() (every test stops its servers)

_T = TypeVar("_T", bound="ThreadedHTTPServer")


class OwnedHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server whose handlers reach their test server as `server.owner`."""

    daemon_threads = True
    owner: Any

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet for peers that hang up (clients closed at the end of a run); loud otherwise."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: OwnedHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass


class ThreadedHTTPServer:
    """Serves `handler` on `host` (ephemeral port) with `server_class` from a daemon thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], host: str = "127.0.0.1",
                 server_class: type[OwnedHTTPServer] = OwnedHTTPServer) -> None:
        self._server = server_class((host, 0), handler)
        self._server.owner = self
        self.host = host
        self.port = int(self._server.server_address[1])
        self.address = f"{host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": _POLL_S}, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self: _T) -> _T:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_uvicorn(server: uvicorn.Server, name: str, *, daemon: bool = False,
                **run_kwargs: Any) -> threading.Thread:
    """Run `server` in a thread called `name` and wait (up to 10 s) until it listens; stop it
    with `server.should_exit = True` and a join."""
    thread = threading.Thread(target=server.run, kwargs=run_kwargs, name=name, daemon=daemon)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            thread.join(5)
            raise RuntimeError(f"{name} did not start")
        time.sleep(0.01)  # polls until it listens, bounded by the deadline
    return thread


@contextlib.contextmanager
def serve_asgi(app: Any, host: str = "127.0.0.1") -> Iterator[str]:
    """Run `app` under uvicorn; yields its base URL."""
    port = free_port(host)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off",
                            access_log=False)
    server = uvicorn.Server(config)
    thread = run_uvicorn(server, f"uvicorn-{port}")
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietWSGIHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve_wsgi(app: Any, host: str = "127.0.0.1") -> Iterator[str]:
    """Run `app` under a threading wsgiref server; yields its base URL."""
    server = make_server(host, 0, app, server_class=_ThreadingWSGIServer,
                         handler_class=_QuietWSGIHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": _POLL_S},
                              name="wsgiref", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
