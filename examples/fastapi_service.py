"""A FastAPI service with `@meshclient.handler` on its endpoints, calling a backend through
the mesh.

    python examples/fastapi_service.py

`orders` (FastAPI under uvicorn on 127.0.0.1) handles `GET /orders/{order_id}` by calling
the logical service `users` through `meshclient.AsyncClient`; `users` is two real loopback
backends (`meshclient.testing.Backend`, which answer with the headers they received). The
endpoint declares no `request` parameter: the decorator adds one FastAPI fills, so it still
reads the caller's deadline, attempt and trace context. The output shows `users` receiving
what is left of the caller's deadline and the caller's trace id, a request whose deadline
has already passed answered 504 without running the endpoint, and an endpoint with
`max_concurrency=1` shedding a second concurrent request (503 + `Retry-After`).

Needs fastapi and uvicorn (`pip install 'meshclient[fastapi]'`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

import meshclient
from meshclient.testing import Backend

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"


def create_app(policy: meshclient.Policy, slow_started: threading.Event) -> FastAPI:
    clients: dict[str, meshclient.AsyncClient] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with meshclient.AsyncClient(policy=policy, timeout=5.0) as users:
            clients["users"] = users
            yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/orders/{order_id}")
    @meshclient.handler
    async def order(order_id: int) -> dict[str, Any]:
        r = await clients["users"].get(f"http://users/users/{order_id % 7}")
        seen = {k.lower(): v for k, v in r.json()["headers"].items()}
        return {"order": order_id, "users_status": r.status_code,
                "users_saw_deadline_ms": seen.get("x-mesh-deadline-ms"),
                "users_saw_traceparent": seen.get("traceparent")}

    @app.get("/report")
    @meshclient.handler(max_concurrency=1, retry_after_s=2)
    async def report() -> dict[str, str]:
        slow_started.set()
        await asyncio.sleep(1.0)  # a slow endpoint: one at a time
        return {"report": "ready"}

    return app


class Served:
    """An ASGI app under uvicorn on a loopback socket, in a thread; `stop()` ends both."""

    def __init__(self, app: Any, host: str = "127.0.0.1") -> None:
        self.sock = socket.socket()
        self.sock.bind((host, 0))
        self.url = "http://{}:{}".format(*self.sock.getsockname())
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"server on {self.url} did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


def main() -> int:
    backends = [Backend(f"127.0.0.{2 + i}", name=f"users-{i}").start() for i in range(2)]
    served = None
    try:
        policy = meshclient.Policy.from_dict(
            {"services": {"users": {"endpoints": [b.address for b in backends]}}})
        slow_started = threading.Event()
        served = Served(create_app(policy, slow_started))
        headers = {"x-mesh-deadline-ms": "2000", "traceparent": TRACEPARENT}
        r = httpx.get(f"{served.url}/orders/10", headers=headers, timeout=10)
        body = r.json()
        print(f"GET /orders/10 -> {r.status_code}: users answered {body['users_status']}, "
              f"saw x-mesh-deadline-ms {body['users_saw_deadline_ms']} (caller sent 2000)")
        same = TRACE_ID in (body["users_saw_traceparent"] or "")
        print(f"  users saw the caller's trace id: {same}")
        r = httpx.get(f"{served.url}/orders/11", headers={"x-mesh-deadline-ms": "0"}, timeout=10)
        print(f"GET /orders/11 with a spent deadline -> {r.status_code} ({r.text.strip()})")
        first = threading.Thread(target=httpx.get, args=(f"{served.url}/report",),
                                 kwargs={"timeout": 10})
        first.start()
        try:
            slow_started.wait(5)
            r = httpx.get(f"{served.url}/report", timeout=10)
            print(f"GET /report while another runs -> {r.status_code}, "
                  f"Retry-After: {r.headers.get('retry-after')}")
        finally:
            first.join(10)
    finally:
        if served is not None:
            served.stop()
        for backend in backends:
            backend.stop()
    print("done: the FastAPI service called users through the mesh")
    return 0


if __name__ == "__main__":
    sys.exit(main())
