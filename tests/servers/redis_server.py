"""A real redis-server on a free loopback port, started and stopped by a test."""

from __future__ import annotations

import socket

from tests.servers.ports import free_port
from tests.servers.process import ServerProcess


class RedisServer(ServerProcess):
    """`redis-server --port N --save '' --appendonly no`, no persistence, loopback only."""

    name = "redis-server"

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.address = f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def argv(self) -> list[str]:
        return ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no"]

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False
