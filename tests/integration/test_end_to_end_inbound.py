"""Two real services on loopback: an ASGI app (uvicorn) behind `meshclient.asgi.MeshMiddleware`
calls a WSGI app (wsgiref, behind `meshclient.wsgi.MeshMiddleware`) through the mesh.

One trace spans both; the deadline shrinks across the hop; a retried inbound request
(`x-mesh-attempt: 2`) is not retried downstream (one-layer retries)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import anyio
import httpx
import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import meshclient
import meshclient.asgi
import meshclient.wsgi
from meshclient.context import inbound
from tests.servers.otel import Otel, otel_fixture  # noqa: F401 (the `otel` fixture)
from tests.servers.threaded import serve_asgi, serve_wsgi

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"


def seen_here() -> dict[str, Any]:
    current = inbound.get()
    assert current is not None
    span = trace.get_current_span().get_span_context()
    return {"attempt": current.attempt,
            "remaining_ms": None if current.deadline_ns is None
            else (current.deadline_ns - time.monotonic_ns()) / 1e6,
            "trace_id": f"{span.trace_id:032x}" if span.is_valid else None}


class Inventory:
    """The downstream WSGI service; `?fail=1` answers 503."""

    def __init__(self) -> None:
        self.hits = 0
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self.lock:
            self.hits += 1
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items()
                   if k.startswith("HTTP_")}
        body = json.dumps({"seen": seen_here(), "headers": headers}).encode()
        status = "503 Service Unavailable" if "fail=1" in environ.get("QUERY_STRING", "") \
            else "200 OK"
        start_response(status, [("Content-Type", "application/json")])
        return [body]


def frontend(policy: meshclient.Policy) -> Starlette:
    async def page(request: Request) -> JSONResponse:
        await anyio.sleep(0.05)  # the scenario: some work before the downstream call
        mine = seen_here()
        query = "?fail=1" if request.query_params.get("fail") else ""
        async with meshclient.AsyncClient(policy=policy) as client:
            r = await client.get(f"http://inventory/items{query}")
        return JSONResponse({"seen": mine, "downstream_status": r.status_code,
                             "downstream": r.json()})

    return Starlette(routes=[Route("/page", page)])


@pytest.fixture
def services() -> Iterator[tuple[str, Inventory]]:
    inventory = Inventory()
    with ExitStack() as stack:
        urls = [stack.enter_context(serve_wsgi(meshclient.wsgi.MeshMiddleware(inventory),
                                               host=host))
                for host in ("127.0.0.4", "127.0.0.5")]
        policy = meshclient.Policy.from_dict({"services": {"inventory": {
            "endpoints": [u.removeprefix("http://") for u in urls]}}})
        app = meshclient.asgi.MeshMiddleware(frontend(policy))
        yield stack.enter_context(serve_asgi(app, host="127.0.0.6")), inventory


def test_one_trace_across_both_services(services: tuple[str, Inventory], otel: Otel) -> None:
    url, _ = services
    r = httpx.get(url + "/page", headers={"traceparent": TRACEPARENT}, timeout=10)
    assert r.status_code == 200 and r.json()["downstream_status"] == 200
    assert r.json()["seen"]["trace_id"] == TRACE_ID
    assert r.json()["downstream"]["seen"]["trace_id"] == TRACE_ID
    spans = otel.wait_spans(4)
    assert {s.context.trace_id for s in spans} == {int(TRACE_ID, 16)}
    front, back = sorted((s for s in spans if s.kind == SpanKind.SERVER),
                         key=lambda s: s.start_time or 0)
    (call,) = [s for s in spans if s.name == "GET inventory"]
    (attempt,) = [s for s in spans if s.kind == SpanKind.CLIENT]
    # front SERVER -> logical call -> attempt CLIENT -> back SERVER
    assert front.parent is not None and front.parent.span_id == int(TRACEPARENT[36:52], 16)
    assert call.parent is not None and call.parent.span_id == front.context.span_id
    assert attempt.parent is not None and attempt.parent.span_id == call.context.span_id
    assert back.parent is not None and back.parent.span_id == attempt.context.span_id
    assert len(spans) == 4


def test_deadline_shrinks_across_the_hop(services: tuple[str, Inventory]) -> None:
    url, _ = services
    body = httpx.get(url + "/page", headers={"x-mesh-deadline-ms": "3000"}, timeout=10).json()
    front = body["seen"]["remaining_ms"]
    assert front is not None and 2000 < front <= 3000 - 50  # the handler's sleep is spent
    sent = body["downstream"]["headers"].get("x-mesh-deadline-ms")
    assert sent is not None and int(sent) < front
    back = body["downstream"]["seen"]["remaining_ms"]
    assert back is not None and back < front


def test_retried_inbound_request_is_not_retried_downstream(
        services: tuple[str, Inventory]) -> None:
    url, inventory = services
    body = httpx.get(url + "/page?fail=1", headers={"x-mesh-attempt": "2"}, timeout=10).json()
    assert body["seen"]["attempt"] == 2  # the handler knows it serves a retry
    assert body["downstream_status"] == 503
    assert inventory.hits == 1  # one attempt below a retry
    # ... sent as part of the retry, so the layer below does not retry either
    assert body["downstream"]["headers"]["x-mesh-attempt"] == "2"
    assert body["downstream"]["seen"]["attempt"] == 2
    inventory.hits = 0
    body = httpx.get(url + "/page?fail=1", timeout=10).json()
    assert body["seen"]["attempt"] == 1
    assert inventory.hits > 1  # a first attempt does retry downstream
