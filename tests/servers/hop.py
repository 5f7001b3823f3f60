"""A middle service for chain tests and the retry benchmark: a stdlib HTTP server whose
handler calls the next service through meshclient and answers with its status.

Until the inbound middleware lands (issue-7), the handler does the minimal inbound work
itself: it reads the deadline and attempt headers into `context.inbound` with
`parse_inbound` + `inbound_context`, and on a failure answer sets `x-mesh-retries-spent`
from `Inbound.retries_spent` so the caller above does not retry it (one-layer retries).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

import meshclient
from meshclient._clock import CLOCK
from meshclient.context import RETRIES_SPENT_HEADER, inbound_context, parse_inbound
from meshclient.policy import Policy


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    hop: Hop


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        hop = self.server.hop
        with hop.lock:
            hop.hits += 1
        value = parse_inbound(dict(self.headers.items()), CLOCK.now_ns())
        status = 502
        with inbound_context(value):
            try:
                status = hop.client.get(f"http://{hop.next_service}{self.path}").status_code
            except httpx.HTTPError:
                status = 503
        spent = value.retries_spent if status >= 500 else None
        body = b"{}"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        if spent is not None:
            self.send_header(RETRIES_SPENT_HEADER, str(spent))
        self.end_headers()
        self.wfile.write(body)


class Hop:
    """Serves on `host` (ephemeral port); calls `next_service` under `policy`."""

    def __init__(self, host: str, next_service: str, policy: Policy) -> None:
        self.next_service = next_service
        self.client = httpx.Client(transport=meshclient.MeshTransport(policy))
        self.hits = 0
        self.lock = threading.Lock()
        self._server = _Server((host, 0), _Handler)
        self._server.hop = self
        self.address = f"{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> Hop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
        self.client.close()
