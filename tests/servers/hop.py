"""A middle service for chain tests and the retry benchmark: a stdlib HTTP server whose
handler calls the next service through meshclient and answers with its status.

A server the inbound middleware does not fit: the handler does the inbound work itself,
with the pieces the middleware is built from. It reads the deadline and attempt headers
into `context.inbound` with `parse_inbound` + `inbound_context`, and marks a failure answer
with `x-mesh-retries-spent` (`context.spent_mark`) so the caller above does not retry it
(one-layer retries).
"""

from __future__ import annotations

import threading

import httpx

import meshclient
from meshclient._clock import CLOCK
from meshclient.context import RETRIES_SPENT_HEADER, inbound_context, parse_inbound, spent_mark
from meshclient.policy import Policy
from tests.servers.threaded import OwnedHTTPServer, QuietHandler, ThreadedHTTPServer


class _Server(OwnedHTTPServer):
    allow_reuse_address = True
    request_queue_size = 256


class _Handler(QuietHandler):
    def do_GET(self) -> None:
        hop: Hop = self.server.owner
        with hop.lock:
            hop.hits += 1
        value = parse_inbound(dict(self.headers.items()), CLOCK.now_ns())
        status = 502
        with inbound_context(value):
            try:
                status = hop.client.get(f"http://{hop.next_service}{self.path}").status_code
            except httpx.HTTPError:
                status = 503
        spent = spent_mark(value, status)
        body = b"{}"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        if spent is not None:
            self.send_header(RETRIES_SPENT_HEADER, spent)
        self.end_headers()
        self.wfile.write(body)


class Hop(ThreadedHTTPServer):
    """Serves on `host` (ephemeral port); calls `next_service` under `policy`."""

    def __init__(self, host: str, next_service: str, policy: Policy) -> None:
        self.next_service = next_service
        self.client = httpx.Client(transport=meshclient.MeshTransport(policy))
        self.hits = 0
        self.lock = threading.Lock()
        super().__init__(_Handler, host, _Server)

    def stop(self) -> None:
        super().stop()
        self.client.close()
