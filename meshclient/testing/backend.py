"""A real HTTP/1.1 backend on loopback with fault knobs a test can turn while it runs.

Standard library only (so the demo and examples need nothing beyond meshclient). Knobs,
set with `backend.set(...)` or per request in the query string:

| knob | query | effect |
|---|---|---|
| `latency_ms` | `delay_ms` | sleep before answering |
| `tail_ratio`, `tail_ms` | — | sleep `tail_ms` more before this share of answers (a latency tail) |
| `status` | `status` | status code of every answer |
| `fail_ratio`, `fail_status` | `fail_ratio` | answer `fail_status` (503) with this probability |
| `retry_after` | `retry_after` | add a `Retry-After` header (to failures, or to every answer when status >= 400) |
| `reset` | `reset=1` | reset the connection (RST) instead of answering |
| `hang` | `hang=1` | never answer (until the backend stops) |
| `close_mid_body` | `close_mid_body=1` | send headers and half the body, then close |
| `body_size` | `size` | bytes of body for `/bytes` (default 1024) |

Paths: `/bytes` returns `size` bytes; `/stream?chunks=N` streams N chunks;
`/redirect?to=URL` answers 302 to `URL` (default `/`); `/cookies/set?name=value` sets those
cookies; anything else returns JSON describing the request (method, path, headers, body
length, backend name).
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import struct
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

KNOBS = ("latency_ms", "status", "fail_ratio", "fail_status", "retry_after", "reset", "hang",
         "close_mid_body", "body_size", "tail_ratio", "tail_ms")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    backend: Backend

    def handle_error(self, request: Any, client_address: Any) -> None:  # quiet resets
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle plus the client's
    # delayed ACK add ~40 ms to every keep-alive answer.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.server.backend._track(self.connection, True)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.backend._track(self.connection, False)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        backend = self.server.backend
        split = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        knobs = backend.knobs()
        body_in = self._body()
        backend._record(self.command, self.path, dict(self.headers.items()), body_in)
        delay = float(query.get("delay_ms", knobs["latency_ms"])) / 1000
        if knobs["tail_ratio"] and random.random() < knobs["tail_ratio"]:
            delay += knobs["tail_ms"] / 1000
        if query.get("hang") == "1" or knobs["hang"]:
            backend._stopped.wait(60)
            self.close_connection = True
            return
        if delay:
            time.sleep(delay)
        if query.get("reset") == "1" or knobs["reset"]:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        status = int(query.get("status", knobs["status"]))
        fail_ratio = float(query.get("fail_ratio", knobs["fail_ratio"]))
        failed = fail_ratio > 0 and random.random() < fail_ratio
        if failed:
            status = int(knobs["fail_status"])
        retry_after = query.get("retry_after", knobs["retry_after"])
        if split.path == "/bytes":
            body = b"x" * int(query.get("size", knobs["body_size"]))
            content_type = "application/octet-stream"
        elif split.path == "/stream":
            self._stream(status, int(query.get("chunks", "4")))
            return
        elif split.path in ("/redirect", "/cookies/set"):
            self._redirect(split.path, query)
            return
        else:
            body = json.dumps({
                "backend": backend.name, "method": self.command, "path": self.path,
                "headers": dict(self.headers.items()), "body_bytes": len(body_in),
            }).encode()
            content_type = "application/json"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Backend", backend.name)
        if retry_after is not None and (failed or status >= 400):
            self.send_header("Retry-After", str(retry_after))
        self.end_headers()
        if query.get("close_mid_body") == "1" or knobs["close_mid_body"]:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(body)

    def _redirect(self, path: str, query: dict[str, str]) -> None:
        self.send_response(302)
        if path == "/redirect":
            self.send_header("Location", query.get("to", "/"))
        else:
            self.send_header("Location", "/")
            for name, value in query.items():
                self.send_header("Set-Cookie", f"{name}={value}; Path=/")
        self.send_header("Content-Length", "0")
        self.send_header("X-Backend", self.server.backend.name)
        self.end_headers()

    def _stream(self, status: int, chunks: int) -> None:
        self.send_response(status)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("X-Backend", self.server.backend.name)
        self.end_headers()
        for i in range(chunks):
            data = f"chunk-{i}\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
            time.sleep(0.01)
        self.wfile.write(b"0\r\n\r\n")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve


class Backend:
    """One loopback HTTP backend. Thread-safe; `stop()` closes open connections too.

    Usage:
    ```python
    with Backend("127.0.0.2") as b:
        b.set(latency_ms=50)
        httpx.get(b.url + "/echo")
    ```
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, name: str | None = None) -> None:
        self.host = host
        self.port = port
        self.name = name or host
        self._knobs: dict[str, Any] = self._default_knobs()
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._stopped = threading.Event()
        self.hits = 0
        self.requests: deque[tuple[str, str, dict[str, str], bytes]] = deque(maxlen=1000)

    @staticmethod
    def _default_knobs() -> dict[str, Any]:
        return {"latency_ms": 0.0, "status": 200, "fail_ratio": 0.0, "fail_status": 503,
                "retry_after": None, "reset": False, "hang": False, "close_mid_body": False,
                "body_size": 1024, "tail_ratio": 0.0, "tail_ms": 0.0}

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def knobs(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._knobs)

    def set(self, **knobs: Any) -> None:
        """Turn knobs (see the module docstring); unknown names raise `TypeError`."""
        unknown = set(knobs) - set(KNOBS)
        if unknown:
            raise TypeError(f"unknown backend knobs: {sorted(unknown)}")
        with self._lock:
            self._knobs.update(knobs)

    def heal(self) -> None:
        """All knobs back to healthy defaults."""
        with self._lock:
            self._knobs = self._default_knobs()

    def reset_stats(self) -> None:
        with self._lock:
            self.hits = 0
            self.requests.clear()

    def _record(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        with self._lock:
            self.hits += 1
            self.requests.append((method, path, headers, body))

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def start(self) -> Backend:
        """Start (or restart, on the same port) serving."""
        if self._server is not None:
            return self
        self._stopped = threading.Event()
        server = _Server((self.host, self.port), _Handler)
        server.backend = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"backend-{self.address}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection (a dead backend, not a draining one)."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopped.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
            self._connections.clear()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> Backend:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Backend {self.name} {self.address} {state} hits={self.hits}>"


def main(argv: list[str] | None = None) -> None:
    """`python -m meshclient.testing.backend [HOST] [PORT]`: serve until killed; prints the port."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    backend = Backend(args[0] if args else "127.0.0.1", int(args[1]) if len(args) > 1 else 0)
    backend.start()
    print(backend.port, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        backend.stop()


if __name__ == "__main__":
    main()
