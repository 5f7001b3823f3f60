"""A deliberately minimal, fast HTTP/1.1 keep-alive server for benchmarks, in its own process.

It answers every request with the same 1 KiB body and does no parsing beyond finding the
end of each request head, so the server is never the bottleneck and its CPU is never counted
against the client being measured. Only for GET/HEAD-style requests without a body.

`python -m meshclient._bench.upstream [HOST]` prints the port it listens on, then serves until
its standard input closes or it is terminated.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from types import TracebackType

BODY_SIZE = 1024
_RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
             b"Content-Length: %d\r\n\r\n" % BODY_SIZE) + b"x" * BODY_SIZE
_END = b"\r\n\r\n"


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data
        count = buffer.count(_END)
        if count and self._transport is not None:
            self._transport.write(_RESPONSE * count)
            buffer = buffer[buffer.rfind(_END) + len(_END):]
        self._buffer = buffer


async def _serve(host: str) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Protocol, host, 0, backlog=512)
    print(server.sockets[0].getsockname()[1], flush=True)
    # Serve until the parent closes our stdin (or kills us).
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


class FastServer:
    """Runs the server in a child process on `host`; `url` once started. Context manager."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self._process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        """The server's process (0 when not running)."""
        return self._process.pid if self._process is not None else 0

    def start(self) -> FastServer:
        package_parent = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent,
                                                          env.get("PYTHONPATH")]))
        self._process = subprocess.Popen(
            [sys.executable, "-m", "meshclient._bench.upstream", self.host],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"benchmark server did not start: {line!r}")
        self.port = int(line)
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> FastServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"))
