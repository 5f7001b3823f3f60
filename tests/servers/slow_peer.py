"""A loopback HTTP/1.1 peer that sends slowly: one byte every `interval_s` (raw sockets).

Paths: `/fast` answers at once (keep-alive, so the next request reuses the connection);
`/drip-headers` drips its status line and headers; `/drip-body` sends its headers at once
and drips a 200-byte body. Dripping stops when the client goes away, when `limit_s` has
passed, or when the server stops, so no handler outlives a test by much.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any

FAST = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
HEADERS = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\nok"
BODY_HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 200\r\nContent-Type: text/plain\r\n\r\n"


class DripServer:
    def __init__(self, host: str = "127.0.0.1", interval_s: float = 0.2,
                 limit_s: float = 20.0) -> None:
        self.interval_s, self.limit_s = interval_s, limit_s
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, 0))
        self._listener.listen(32)
        self._listener.settimeout(0.1)
        self.address = f"{host}:{self._listener.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True, name="drip-accept")
        self.connections = 0

    def __enter__(self) -> DripServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True,
                             name="drip-conn").start()

    def _drip(self, conn: socket.socket, data: bytes) -> bool:
        ends = time.monotonic() + self.limit_s
        for i in range(len(data)):
            if self._stop.wait(self.interval_s) or time.monotonic() > ends:
                return False
            conn.sendall(data[i:i + 1])
        return True

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            conn.settimeout(self.limit_s)
            buffer = b""
            while not self._stop.is_set():
                while b"\r\n\r\n" not in buffer:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    buffer += chunk
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                path = head.split(b" ", 2)[1]
                if path.startswith(b"/drip-headers"):
                    if not self._drip(conn, HEADERS):
                        return
                elif path.startswith(b"/drip-body"):
                    conn.sendall(BODY_HEAD)
                    if not self._drip(conn, b"x" * 200):
                        return
                else:
                    conn.sendall(FAST)
