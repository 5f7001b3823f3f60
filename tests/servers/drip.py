"""A hostile control endpoint: answers its first `slow` requests slowly, the rest at once.

Modes for the slow answers: `"headers"` (the status line and headers a byte every `every_s`),
`"body"` (headers at once, then a declared body a byte every `every_s`), `"endless"` (a
chunked body written as fast as the client reads, never ending). A slow answer writes at
most `max_bytes` (or, endless, `max_bytes` chunks), so a handler thread always ends; it
stops early when the client hangs up. `text` is served, fast, to every later request.
"""

from __future__ import annotations

import threading

from tests.servers.threaded import OwnedHTTPServer, QuietHandler, ThreadedHTTPServer


class _Handler(QuietHandler):
    def do_GET(self) -> None:
        owner: DripServer = self.server.owner
        mode = owner.take()
        body = owner.text.encode()
        try:
            if mode is None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            elif mode == "headers":
                head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        + b"X-Pad: " + b"a" * owner.max_bytes + b"\r\n\r\n")
                self._drip(head[:owner.max_bytes])
            elif mode == "body":
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 + f"Content-Length: {owner.max_bytes}\r\n\r\n".encode())
                self.wfile.flush()
                self._drip(b" " * owner.max_bytes)
            else:
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\n")
                chunk = b" " * 65536
                for _ in range(owner.max_bytes):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:
            pass  # the client hung up (what the tests expect of it)
        finally:
            self.close_connection = True
            owner.served()

    def _drip(self, data: bytes) -> None:
        owner: DripServer = self.server.owner
        for i in range(len(data)):
            self.wfile.write(data[i:i + 1])
            self.wfile.flush()
            if owner.closing.wait(owner.every_s):
                return


class DripServer(ThreadedHTTPServer):
    def __init__(self, text: str, mode: str, *, slow: int = 1, every_s: float = 1.0,
                 max_bytes: int = 60, host: str = "127.0.0.1") -> None:
        self.text = text
        self.mode = mode
        self.slow = slow
        self.every_s = every_s
        self.max_bytes = max_bytes
        self.closing = threading.Event()
        self.requests = 0
        self.finished = 0
        self._lock = threading.Lock()
        super().__init__(_Handler, host, OwnedHTTPServer)
        self.url = f"http://{self.address}/mesh.json"

    def take(self) -> str | None:
        with self._lock:
            self.requests += 1
            return self.mode if self.requests <= self.slow else None

    def served(self) -> None:
        with self._lock:
            self.finished += 1

    def stop(self) -> None:
        self.closing.set()
        super().stop()

