"""A gRPC service on loopback that answers `/test.Who/Name` with its own name (raw
bytes, no generated code): the backend of gRPC's own xDS client in the tests."""

from __future__ import annotations

from concurrent import futures
from typing import Any

import grpc


class GrpcBackend:
    def __init__(self, host: str, name: str) -> None:
        self.host = host
        self.name = name
        self.port = 0
        self._server: grpc.Server | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> GrpcBackend:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        answer = self.name.encode()

        def name(_request: bytes, _context: Any) -> bytes:
            return answer

        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            "test.Who", {"Name": grpc.unary_unary_rpc_method_handler(name)}),))
        self.port = server.add_insecure_port(f"{self.host}:0")
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait(5)
            self._server = None
