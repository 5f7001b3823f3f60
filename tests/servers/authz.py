"""A real HTTP authorization service for `ext_authz` tests (Envoy's HTTP service contract).

Decisions, by the check request it receives:
- `authorization: Bearer good` and a path outside `/admin`: 200 with `x-user-id: alice`
  and `x-other: not-for-upstream`;
- a path under `/admin`: 401 with `www-authenticate: Bearer` and the body `admins only`;
- anything else: 403 with `x-reason: bad-token` and the body `denied by policy`.

`hang` set: holds every check until `release()` (or the server stops). `seen` lists each
check request as (method, path, lower-cased headers).
"""

from __future__ import annotations

import threading
from typing import Any

from tests.servers.threaded import QuietHandler, ThreadedHTTPServer


class _Handler(QuietHandler):
    def _answer(self) -> None:
        owner: AuthzServer = self.server.owner
        headers = {k.lower(): v for k, v in self.headers.items()}
        with owner.lock:
            owner.seen.append((self.command, self.path, headers))
        if owner.hang.is_set():
            owner.released.wait(10)
        if self.path.startswith("/admin"):
            status, extra, body = 401, [("www-authenticate", "Bearer")], b"admins only"
        elif headers.get("authorization") == "Bearer good":
            status, extra, body = 200, [("x-user-id", "alice"),
                                        ("x-other", "not-for-upstream")], b""
        else:
            status, extra, body = 403, [("x-reason", "bad-token")], b"denied by policy"
        self.send_response(status)
        for name, value in extra:
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = do_PUT = _answer


class AuthzServer(ThreadedHTTPServer):
    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__(_Handler, host)
        self.lock = threading.Lock()
        self.seen: list[tuple[str, str, dict[str, Any]]] = []
        self.hang = threading.Event()
        self.released = threading.Event()
        self.url = f"http://{self.address}"

    def release(self) -> None:
        self.released.set()

    def stop(self) -> None:
        self.released.set()
        super().stop()
