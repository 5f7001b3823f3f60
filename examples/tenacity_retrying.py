"""A non-HTTP call retried with tenacity under the same budget and deadline as the
service's HTTP calls through the mesh.

    python examples/tenacity_retrying.py

`orders` keeps its rows in a "database": a TCP server on 127.0.0.1 that drops the first
two connections of each query and answers the third. The query is retried with
`meshclient.retrying.retrying("orders", ...)` (sync) and `async_retrying` (async):
tenacity drives the loop, meshclient says whether a retry may happen (the retry budget of
`orders`, shared with its HTTP calls), whether the deadline fits another attempt, and
counts the retries where `meshclient status` and the metrics show them.
"""

from __future__ import annotations

import asyncio
import socket
import socketserver
import threading

from tenacity import retry_if_exception_type

import meshclient
from meshclient.resilience.budget import budget_for
from meshclient.retrying import async_retrying, deadline, retrying, time_left
from meshclient.testing import Backend


class FlakyDatabase(socketserver.ThreadingTCPServer):
    """Drops `drop` connections, answers the next, and so on."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, drop: int) -> None:
        self.drop = drop
        self.connections = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), Handler)


class Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server = self.server
        assert isinstance(server, FlakyDatabase)
        with server.lock:
            server.connections += 1
            answer = server.connections % (server.drop + 1) == 0
        if answer:
            self.request.sendall(b"row 42\n")


def query(address: tuple[str, int]) -> str:
    with socket.create_connection(address, timeout=2) as conn:
        data = conn.recv(64)
    if not data:
        raise ConnectionResetError("the database dropped the connection")
    return data.decode().strip()


def main() -> int:
    db = FlakyDatabase(drop=2)
    threading.Thread(target=db.serve_forever, daemon=True).start()
    backend = Backend("127.0.0.2", name="orders-0").start()
    store = meshclient.PolicyStore(meshclient.Policy.from_dict({"services": {"orders": {
        "endpoints": [backend.address],
        "retry": {"attempts": 4, "backoff": {"base": 0.01, "max": 0.05}}}}}))
    stats = budget_for("orders", store.current.resolved["orders"].retry.budget)
    try:
        with deadline(10.0):  # one deadline for the query and the HTTP call below
            for attempt in retrying("orders", retry=retry_if_exception_type(ConnectionError),
                                    store=store):
                with attempt:
                    row = query(db.server_address)
            print(f"sync: {row!r} after {attempt.retry_state.attempt_number} attempts, "
                  f"{time_left() or 0:.1f} s of the deadline left")
            with meshclient.Client(policy=store) as client:
                r = client.get("http://orders/orders/42")
                print(f"GET http://orders/orders/42 -> {r.status_code} in the same deadline")

        async def run() -> str:
            async for attempt in async_retrying(
                    "orders", retry=retry_if_exception_type(ConnectionError), store=store):
                with attempt:
                    return query(db.server_address)
            raise AssertionError("unreachable")

        print(f"async: {asyncio.run(run())!r}")
        print(f"orders budget: {stats.retries} retries recorded, "
              f"{stats.budget_exhausted} refused")
    finally:
        db.shutdown()
        db.server_close()
        backend.stop()
    print("done: retries under the orders budget and deadline")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
