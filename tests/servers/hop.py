"""A middle service for chain tests and the retry benchmark: a stdlib HTTP server whose
handler calls the next service through meshclient and answers with its status.

The handler does the minimal inbound work itself, without the inbound middleware: it
reads the deadline and attempt headers into `context.inbound` with `parse_inbound` +
`inbound_context`, and on a failure answer sets `x-mesh-retries-spent` from
`Inbound.retries_spent` so the caller above does not retry it (one-layer retries).
"""

from __future__ import annotations

import threading

import httpx

import meshclient
from meshclient._clock import CLOCK
from meshclient.context import RETRIES_SPENT_HEADER, inbound_context, parse_inbound
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
        spent = value.retries_spent if status >= 500 else None
        body = b"{}"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        if spent is not None:
            self.send_header(RETRIES_SPENT_HEADER, str(spent))
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
