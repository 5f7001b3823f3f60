"""`@meshclient.handler` on FastAPI endpoints and `meshclient.asgi.MeshMiddleware` on a FastAPI
app, through real HTTP to uvicorn.

FastAPI calls an endpoint by keyword with the parameters its signature declares; the
decorator keeps the endpoint's signature (`functools.wraps`) and adds a keyword-only
`meshclient_request` parameter where the endpoint has no `request` of its own, so it works
with and without one. This module uses `from __future__ import annotations`, so FastAPI
must also resolve the (string) annotations through the wrapper."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from opentelemetry.trace import SpanKind, StatusCode

import meshclient
import meshclient.asgi
from meshclient.policy import Policy, PolicyStore
from meshclient.telemetry import semconv
from tests.integration.test_server_middleware import (
    TRACEPARENT,
    Gate,
    check_guarded_handler,
    check_limited_handler_sheds,
    context_now,
)
from tests.servers.otel import Otel, otel_fixture  # noqa: F401 (the `otel` fixture)
from tests.servers.threaded import serve_asgi

fastapi = pytest.importorskip("fastapi")
from fastapi import FastAPI, HTTPException, Request  # noqa: E402

AUTHORIZATION = {"default": "deny", "trust_caller_header": "x-caller",
                 "rules": [{"name": "frontends", "action": "allow", "callers": ["frontend-*"]}]}
PARENT_SPAN_ID = int(TRACEPARENT.split("-")[2], 16)
TRACE_ID = TRACEPARENT.split("-")[1]

#: endpoint path prefix -> how the endpoint is written
STYLES = ["async-request", "sync-request", "async-bare", "sync-bare", "async-named"]


def build(gate: Gate, store: PolicyStore) -> FastAPI:
    app = FastAPI()

    @app.get("/async-request/{id}")
    @meshclient.handler
    async def async_request(request: Request, id: int, q: str = "") -> dict[str, Any]:
        gate.ran += 1
        return {"id": id, "q": q, "path": request.url.path, **context_now()}

    @app.get("/sync-request/{id}")
    @meshclient.handler
    def sync_request(request: Request, id: int, q: str = "") -> dict[str, Any]:
        gate.ran += 1
        return {"id": id, "q": q, "path": request.url.path, **context_now()}

    @app.get("/async-bare/{id}")
    @meshclient.handler
    async def async_bare(id: int, q: str = "") -> dict[str, Any]:
        gate.ran += 1
        return {"id": id, "q": q, **context_now()}

    @app.get("/sync-bare/{id}")
    @meshclient.handler
    def sync_bare(id: int, q: str = "") -> dict[str, Any]:
        gate.ran += 1
        return {"id": id, "q": q, **context_now()}

    @app.get("/async-named/{id}")
    @meshclient.handler
    async def async_named(req: Request, id: int, q: str = "") -> dict[str, Any]:
        gate.ran += 1
        return {"id": id, "q": q, "path": req.url.path, **context_now()}

    @app.get("/async/limited")
    @meshclient.handler(max_concurrency=1, retry_after_s=2)
    async def async_limited() -> dict[str, bool]:
        gate.entered.set()
        for _ in range(500):  # at most 5 s
            if gate.release.is_set():
                break
            await anyio.sleep(0.01)  # the scenario: the handler holds its request until released
        return {"ok": True}

    @app.get("/sync/limited")
    @meshclient.handler(max_concurrency=1, retry_after_s=2)
    def sync_limited() -> dict[str, bool]:
        gate.entered.set()
        gate.release.wait(5)
        return {"ok": True}

    @app.get("/async/guarded")
    @meshclient.handler(policy=store)
    async def async_guarded() -> dict[str, bool]:
        gate.ran += 1
        return {"ok": True}

    @app.get("/sync/guarded")
    @meshclient.handler(policy=store)
    def sync_guarded() -> dict[str, bool]:
        gate.ran += 1
        return {"ok": True}

    @app.get("/missing")
    @meshclient.handler
    async def missing() -> None:
        raise HTTPException(404, "no such thing")

    @app.get("/plain/{id}")
    async def plain(id: int) -> dict[str, Any]:  # undecorated: for the middleware
        gate.ran += 1
        return {"id": id, **context_now()}

    @app.get("/plain-block")
    async def plain_block() -> dict[str, bool]:
        return await async_limited.__wrapped__()  # type: ignore[attr-defined, no-any-return]

    return app


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def app(gate: Gate) -> FastAPI:
    return build(gate, PolicyStore(Policy.from_dict({"authorization": AUTHORIZATION})))


@pytest.fixture
def url(app: FastAPI) -> Iterator[str]:
    with serve_asgi(app) as base:
        yield base


@pytest.fixture(params=["async", "sync"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_endpoint_continues_the_trace_and_reads_deadline_and_attempt(
        url: str, style: str, otel: Otel) -> None:
    r = httpx.get(f"{url}/{style}/7?q=x", headers={"x-mesh-deadline-ms": "5000",
                                                    "x-mesh-attempt": "2",
                                                    "traceparent": TRACEPARENT})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == 7 and body["q"] == "x"  # FastAPI still binds the endpoint's own params
    assert body.get("path", f"/{style}/7") == f"/{style}/7"
    assert body["attempt"] == 2 and 4000 < body["remaining_ms"] <= 5000
    assert body["trace_id"] == TRACE_ID
    (span,) = otel.wait_spans(1, SpanKind.SERVER)
    assert span.parent is not None and span.parent.span_id == PARENT_SPAN_ID
    assert span.name == f"GET /{style}/{{id}}"  # the route FastAPI matched
    assert span.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] == 200


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_expired_deadline_is_504_without_running_the_endpoint(url: str, style: str,
                                                              gate: Gate) -> None:
    r = httpx.get(f"{url}/{style}/1", headers={"x-mesh-deadline-ms": "0"})
    assert r.status_code == 504 and r.headers["content-type"].startswith("text/plain")
    assert gate.ran == 0


def test_request_parameter_is_not_part_of_the_api(app: FastAPI) -> None:
    """The parameter the decorator adds is filled by FastAPI, not read from the query, and
    the OpenAPI document does not show it."""
    params = app.openapi()["paths"]["/async-bare/{id}"]["get"]["parameters"]
    assert sorted(p["name"] for p in params) == ["id", "q"]


@pytest.mark.slow
def test_full_concurrency_limit_is_503_with_retry_after(url: str, kind: str,
                                                        gate: Gate) -> None:
    check_limited_handler_sheds(f"{url}/{kind}/limited", gate)


@pytest.mark.slow
def test_authorization_is_enforced(url: str, kind: str, gate: Gate) -> None:
    check_guarded_handler(f"{url}/{kind}/guarded", gate)


def test_http_exception_is_recorded_as_its_status(url: str, otel: Otel) -> None:
    assert httpx.get(f"{url}/missing").status_code == 404
    (span,) = otel.wait_spans(1, SpanKind.SERVER)
    assert span.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] == 404
    assert span.status.status_code is not StatusCode.ERROR


def test_asgi_middleware_on_a_fastapi_app(gate: Gate, otel: Otel) -> None:
    app = FastAPI()
    app.add_middleware(meshclient.asgi.MeshMiddleware, max_concurrency=1, retry_after_s=3,
                       policy=PolicyStore(Policy.from_dict({"authorization": AUTHORIZATION})))
    app.include_router(build(gate, PolicyStore(Policy())).router)
    ok = {"x-caller": "frontend-web"}
    with serve_asgi(app) as url:
        r = httpx.get(f"{url}/plain/3", headers={**ok, "x-mesh-deadline-ms": "3000",
                                                  "x-mesh-attempt": "4",
                                                  "traceparent": TRACEPARENT})
        body = r.json()
        assert body["attempt"] == 4 and 2000 < body["remaining_ms"] <= 3000
        assert body["trace_id"] == TRACE_ID and gate.ran == 1
        assert httpx.get(f"{url}/plain/3", headers={**ok, "x-mesh-deadline-ms": "0"}
                         ).status_code == 504
        r = httpx.get(f"{url}/plain/3", headers={"x-caller": "batch-job"})
        assert r.status_code == 403 and r.content == b"" and gate.ran == 1
        thread = threading.Thread(target=httpx.get, args=(f"{url}/plain-block",),
                                  kwargs={"headers": ok, "timeout": 10})
        thread.start()
        try:
            gate.wait_entered()
            r = httpx.get(f"{url}/plain/3", headers=ok)
            assert r.status_code == 503 and r.headers["retry-after"] == "3"
        finally:
            gate.release.set()
            thread.join(10)
    spans = otel.wait_spans(5, SpanKind.SERVER)
    assert sorted(s.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] for s in spans) == [
        200, 200, 403, 503, 504]
    (first,) = [s for s in spans if s.parent is not None]
    assert first.parent.span_id == PARENT_SPAN_ID  # type: ignore[union-attr]
    assert first.name == "GET /plain/{id}"  # the middleware reads FastAPI's matched route
