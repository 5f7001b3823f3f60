"""A loopback HTTP server that records the most requests it ever had in flight at once."""

from __future__ import annotations

import threading
import time

from tests.servers.threaded import QuietHandler, ThreadedHTTPServer


class _Handler(QuietHandler):
    def do_GET(self) -> None:
        srv = self.server.owner
        with srv.lock:
            srv.in_flight += 1
            srv.max_in_flight = max(srv.max_in_flight, srv.in_flight)
            srv.hits += 1
        time.sleep(srv.latency_s)  # the scenario: a backend's latency
        with srv.lock:
            srv.in_flight -= 1
        self.send_response(srv.status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


class ConcurrencyServer(ThreadedHTTPServer):
    def __init__(self, latency_s: float = 0.05, status: int = 200) -> None:
        self.latency_s = latency_s
        self.status = status
        self.lock = threading.Lock()
        self.in_flight = self.max_in_flight = self.hits = 0
        super().__init__(_Handler)
