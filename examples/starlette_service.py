"""A Starlette service calling another service through the mesh, traced to the console.

    python examples/starlette_service.py

Two real services on loopback: `users` (two endpoints, 127.0.0.2 and 127.0.0.3) and
`frontend`, whose handler calls `http://users/...` through `meshclient.AsyncClient`.
Spans go to the console through the OpenTelemetry SDK's `ConsoleSpanExporter`.

FastAPI is built on Starlette: the same lifespan, client and middleware lines work
unchanged in a FastAPI app. Needs starlette, uvicorn and opentelemetry-sdk
(`pip install 'meshclient[starlette,otel]'`).
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import uvicorn
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import meshclient

try:  # inbound side: trace context and deadline from the caller (meshclient.asgi)
    from meshclient.asgi import MeshMiddleware
except ImportError:
    MeshMiddleware = None



def one_line(span: ReadableSpan) -> str:
    """A compact console line per span (the SDK's default is a page of JSON)."""
    ctx = span.get_span_context()
    parent = f"{span.parent.span_id:016x}" if span.parent else "-"
    attrs = " ".join(f"{k}={v}" for k, v in sorted((span.attributes or {}).items()))
    kind = span.kind.name if span.kind else "?"
    trace_id = f"{ctx.trace_id:032x}" if ctx else "?"
    span_id = f"{ctx.span_id:016x}" if ctx else "?"
    return f"  span {span.name!r} {kind} trace={trace_id} id={span_id} parent={parent} {attrs}\n"


provider = TracerProvider(resource=Resource.create({"service.name": "frontend"}))
provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stdout,
                                                                    formatter=one_line)))
trace.set_tracer_provider(provider)
tracer = trace.get_tracer("examples.starlette_service")


def users_app(name: str) -> Starlette:
    async def user(request: Request) -> JSONResponse:
        user_id = int(request.path_params["user_id"])
        return JSONResponse({"id": user_id, "name": f"user {user_id}", "served_by": name,
                             "traceparent": request.headers.get("traceparent")})

    return Starlette(routes=[Route("/users/{user_id:int}", user)])


def frontend_app(policy: meshclient.Policy) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with meshclient.AsyncClient(policy=policy, timeout=5.0) as client:
            app.state.users = client
            yield

    async def profile(request: Request) -> JSONResponse:
        user_id = request.path_params["user_id"]
        with contextlib.ExitStack() as stack:
            if MeshMiddleware is None:  # no inbound middleware yet: open the SERVER span here
                stack.enter_context(tracer.start_as_current_span(
                    "GET /profile/{user_id}", kind=trace.SpanKind.SERVER))
            response = await request.app.state.users.get(f"http://users/users/{user_id}")
        return JSONResponse({"profile": response.json(), "status": response.status_code})

    app = Starlette(routes=[Route("/profile/{user_id:int}", profile)], lifespan=lifespan)
    return MeshMiddleware(app) if MeshMiddleware is not None else app


class Served:
    """An ASGI app under uvicorn on a loopback socket, in a thread; `stop()` ends both."""

    def __init__(self, app: Any, host: str) -> None:
        self.sock = socket.socket()
        self.sock.bind((host, 0))
        self.address = "{}:{}".format(*self.sock.getsockname())
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"server on {self.address} did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


def main() -> int:
    if MeshMiddleware is None:
        print("note: meshclient.asgi.MeshMiddleware is not in this build; the handler opens "
              "its own SERVER span instead")
    servers: list[Served] = []
    try:
        users = [Served(users_app(f"users-{i}"), f"127.0.0.{2 + i}") for i in range(2)]
        servers += users
        policy = meshclient.Policy.from_dict(
            {"services": {"users": {"endpoints": [s.address for s in users]}}})
        frontend = Served(frontend_app(policy), "127.0.0.1")
        servers.append(frontend)
        for user_id in (1, 2, 3):
            r = httpx.get(f"http://{frontend.address}/profile/{user_id}", timeout=10)
            profile = r.json()["profile"]
            print(f"GET /profile/{user_id} -> {r.status_code}: {profile['name']} served by "
                  f"{profile['served_by']} (traceparent sent: {profile['traceparent']})")
    finally:
        for server in servers:
            server.stop()
        provider.shutdown()
    print("done: frontend called users through the mesh; spans printed above")
    return 0


if __name__ == "__main__":
    sys.exit(main())
