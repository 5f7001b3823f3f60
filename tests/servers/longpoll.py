"""A small long-polling control endpoint (Consul blocking-query style), standard library.

`GET /policy` answers the current document with `X-Consul-Index: <n>`; with
`?index=<n>&wait=<d>s` it holds the request until the index moves past `n` or `wait`
passes, then answers (possibly unchanged, as Consul does). `set(text)` publishes a new
document and wakes every waiter. `requests` counts answers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from meshclient.policy import parse_duration
from tests.servers.threaded import OwnedHTTPServer, QuietHandler, ThreadedHTTPServer


class _Handler(QuietHandler):
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        owner = self.server.owner
        query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
        index, body = owner.wait(int(query.get("index", "0") or 0),
                                 parse_duration(query.get("wait", "0s")))
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Consul-Index", str(index))
        self.end_headers()
        self.wfile.write(data)


class _Server(OwnedHTTPServer):
    owner: LongPollServer

    def handle_error(self, request: Any, client_address: Any) -> None:  # quiet resets
        pass


class LongPollServer(ThreadedHTTPServer):
    def __init__(self, text: str = "{}", host: str = "127.0.0.1") -> None:
        self._cond = threading.Condition()
        self.index = 1
        self.text = text
        self.requests = 0
        self.parked = 0  # requests waiting for a change right now
        self._closed = False
        super().__init__(_Handler, host, _Server)
        self.url = f"http://{self.address}/policy"
        self.start()

    def set(self, text: str) -> None:
        with self._cond:
            self.text = text
            self.index += 1
            self._cond.notify_all()

    def wait(self, index: int, wait_s: float) -> tuple[int, str]:
        with self._cond:
            if index >= self.index:
                self.parked += 1
                self._cond.wait_for(lambda: self.index > index or self._closed,
                                    min(wait_s, 10.0))
                self.parked -= 1
            self.requests += 1
            return self.index, self.text

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self.stop()


@pytest.fixture
def longpoll_server() -> Iterator[LongPollServer]:
    server = LongPollServer()
    try:
        yield server
    finally:
        server.close()
