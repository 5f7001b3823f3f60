"""Inbound side: `meshclient.handler`, the ASGI and WSGI middleware (on real uvicorn and
wsgiref servers), load shedding, the admin endpoint and `meshclient status`."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

import meshclient
import meshclient.asgi
import meshclient.wsgi
from meshclient import cli
from meshclient.context import Inbound, inbound
from meshclient.security.asgi import AuthorizationMiddleware
from meshclient.server import (
    ConcurrencyLimit,
    HandlerRejected,
    SheddingError,
    admin,
    admission,
    should_shed,
)
from meshclient.telemetry import semconv
from meshclient.testing import LoopbackCluster
from tests.servers.helpers import wait_until
from tests.servers.otel import Otel, otel_fixture  # noqa: F401 (the `otel` fixture)
from tests.servers.ports import free_port
from tests.servers.threaded import serve_asgi, serve_wsgi

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def context_now() -> dict[str, Any]:
    """What a handler sees: the inbound context variable and the current trace."""
    current = inbound.get()
    assert current is not None
    remaining = None if current.deadline_ns is None else \
        (current.deadline_ns - time.monotonic_ns()) / 1e6
    span = trace.get_current_span().get_span_context()
    return {"attempt": current.attempt, "remaining_ms": remaining,
            "trace_id": f"{span.trace_id:032x}" if span.is_valid else None}


# -- pure decisions ------------------------------------------------------------------------

def test_admission_decisions() -> None:
    now = 10_000_000_000
    assert admission(Inbound(deadline_ns=now), now, None).status == 504  # type: ignore[union-attr]
    assert admission(Inbound(deadline_ns=now + 1), now, None) is None
    assert admission(Inbound(), now, None) is None
    limit = ConcurrencyLimit(1, retry_after_s=2.5)
    assert admission(Inbound(), now, limit) is None
    shed = admission(Inbound(), now, limit)
    assert shed is not None and shed.status == 503 and shed.headers == (("retry-after", "3"),)
    # An expired request never takes a permit.
    limit.release()
    assert admission(Inbound(deadline_ns=0), now, limit).status == 504  # type: ignore[union-attr]
    assert limit.in_flight == 0
    assert should_shed(4, 4) and not should_shed(3, 4)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_concurrency_limit_names_the_bad_value(bad: Any) -> None:
    with pytest.raises(SheddingError, match=f"max_concurrency must be an integer >= 1: {bad!r}"):
        meshclient.asgi.MeshMiddleware(lambda *a: None, max_concurrency=bad)  # type: ignore[arg-type,return-value]


# -- ASGI ----------------------------------------------------------------------------------

class Gate:
    """Lets a test hold a handler open, and know when it entered."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.ran = 0

    def wait_entered(self) -> None:
        assert self.entered.wait(5), "handler never entered"


def asgi_app(gate: Gate) -> Starlette:
    async def ctx(request: Request) -> JSONResponse:
        gate.ran += 1
        return JSONResponse(context_now())

    async def block(request: Request) -> JSONResponse:
        gate.entered.set()
        for _ in range(500):
            if gate.release.is_set():
                break
            await anyio.sleep(0.01)  # the scenario: the handler holds its request until released
        return JSONResponse({"ok": True})

    @meshclient.handler(route="/decorated/{id}")
    async def decorated(request: Request) -> JSONResponse:
        gate.ran += 1
        return JSONResponse(context_now())

    @meshclient.handler(max_concurrency=1)
    async def limited(request: Request) -> JSONResponse:
        return await block(request)

    @meshclient.handler
    def sync_decorated(request: Request) -> JSONResponse:
        return JSONResponse(context_now())

    return Starlette(routes=[Route("/ctx", ctx), Route("/block", block),
                             Route("/decorated/{id}", decorated),
                             Route("/limited", limited), Route("/sync", sync_decorated)])


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def asgi_url(gate: Gate) -> Iterator[str]:
    app = meshclient.asgi.MeshMiddleware(asgi_app(gate), max_concurrency=2)
    with serve_asgi(app) as url:
        yield url


@pytest.fixture
def plain_asgi_url(gate: Gate) -> Iterator[str]:
    """The same app without the middleware (the decorator alone)."""
    with serve_asgi(asgi_app(gate), host="127.0.0.3") as url:
        yield url


def test_asgi_context_deadline_attempt_and_server_span(asgi_url: str, otel: Otel) -> None:
    r = httpx.get(asgi_url + "/ctx", headers={"x-mesh-deadline-ms": "5000",
                                               "x-mesh-attempt": "2",
                                               "traceparent": TRACEPARENT})
    body = r.json()
    assert body["attempt"] == 2
    assert 4000 < body["remaining_ms"] <= 5000
    assert body["trace_id"] == TRACEPARENT.split("-")[1]
    (span,) = otel.wait_spans(1, SpanKind.SERVER)
    assert span.parent is not None and span.parent.span_id == int(TRACEPARENT.split("-")[2], 16)
    assert span.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] == 200
    assert span.attributes[semconv.URL_PATH] == "/ctx"
    (point,) = otel.points("http.server.request.duration",
                           **{semconv.HTTP_RESPONSE_STATUS_CODE: 200})
    assert point.count == 1


def test_asgi_expired_deadline_is_504_without_running_the_handler(asgi_url: str,
                                                                  gate: Gate) -> None:
    r = httpx.get(asgi_url + "/ctx", headers={"x-mesh-deadline-ms": "0"})
    assert r.status_code == 504
    assert gate.ran == 0
    assert httpx.get(asgi_url + "/ctx").json() == {"attempt": 1, "remaining_ms": None,
                                                   "trace_id": None}
    assert gate.ran == 1


def hold(url: str, gate: Gate, n: int = 1) -> list[threading.Thread]:
    threads = [threading.Thread(target=httpx.get, args=(url,), kwargs={"timeout": 10})
               for _ in range(n)]
    for t in threads:
        t.start()
    return threads


def check_limited_handler_sheds(url: str, gate: Gate) -> None:
    """A handler with `max_concurrent=1` at `url` (blocking on `gate`): a second request
    while one runs is 503 with `Retry-After: 2`, and the permit comes back after."""
    threads = hold(url, gate)
    try:
        gate.wait_entered()
        r = httpx.get(url)
        assert r.status_code == 503 and r.headers["retry-after"] == "2"
    finally:
        gate.release.set()
        threads[0].join(10)
    assert httpx.get(url).status_code == 200  # the permit came back


def check_guarded_handler(url: str, gate: Gate) -> None:
    """A handler at `url` guarded by the policy's authorization (caller header trusted,
    only `frontend-web` allowed): allowed runs it, denied or anonymous get an empty 403
    without running it."""
    r = httpx.get(url, headers={"x-caller": "frontend-web"})
    assert r.status_code == 200 and gate.ran == 1
    for headers in ({"x-caller": "batch-job"}, {}):
        r = httpx.get(url, headers=headers)
        assert r.status_code == 403 and r.content == b""
    assert gate.ran == 1  # the handler never ran for a denied caller


def test_asgi_sheds_beyond_the_limit_with_retry_after(asgi_url: str, gate: Gate,
                                                      otel: Otel) -> None:
    threads = hold(asgi_url + "/block", gate, 2)
    try:
        gate.wait_entered()
        refused: list[httpx.Response] = []

        def both_hold_a_permit() -> bool:
            r = httpx.get(asgi_url + "/ctx")
            refused.append(r)
            return r.status_code == 503

        wait_until(both_hold_a_permit)
        assert refused[-1].headers["retry-after"] == "1"
    finally:
        gate.release.set()
        for t in threads:
            t.join(10)
    assert httpx.get(asgi_url + "/ctx").status_code == 200
    (shed,) = otel.points("meshclient.server.rejections", **{"meshclient.reason": "shed"})
    assert shed.value >= 1


def test_decorator_on_starlette(plain_asgi_url: str, gate: Gate, otel: Otel) -> None:
    r = httpx.get(plain_asgi_url + "/decorated/7", headers={"x-mesh-attempt": "3",
                                                             "traceparent": TRACEPARENT})
    assert r.json()["attempt"] == 3 and r.json()["trace_id"] == TRACEPARENT.split("-")[1]
    (span,) = otel.wait_spans(1)
    assert span.name == "GET /decorated/{id}"
    assert span.attributes[semconv.HTTP_ROUTE] == "/decorated/{id}"
    r = httpx.get(plain_asgi_url + "/decorated/7", headers={"x-mesh-deadline-ms": "0"})
    assert r.status_code == 504 and gate.ran == 1
    r = httpx.get(plain_asgi_url + "/sync", headers={"x-mesh-attempt": "2"})
    assert r.json()["attempt"] == 2
    threads = hold(plain_asgi_url + "/limited", gate)
    try:
        gate.wait_entered()
        r = httpx.get(plain_asgi_url + "/limited")
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
    finally:
        gate.release.set()
        threads[0].join(10)


# Raw header bytes a hostile or broken caller may send; each reads as absent.
MALFORMED = [
    {"x-mesh-attempt": b"\xb2"},  # "²": str.isdigit() is true, int() raises
    {"x-mesh-attempt": "\u0663".encode()},  # an Arabic-Indic digit, as UTF-8
    {"x-mesh-attempt": b"9" * 5000},  # more digits than int() accepts
    {"x-mesh-deadline-ms": b"\xb3\xb9"},
    {"x-mesh-deadline-ms": b"1e3", "x-mesh-attempt": b"0x2"},
    {"traceparent": b"00-\xff\xfe-zz-01", "tracestate": b"=\xb2,,=", "baggage": b"%zz=\xb2;;"},
]


def check_malformed_headers_read_as_absent(url: str) -> None:
    for headers in MALFORMED:
        r = httpx.get(url, headers=headers)
        assert r.status_code == 200, (headers, r.status_code)
        seen = r.json()
        assert seen["attempt"] == 1 and seen["remaining_ms"] is None, headers


@pytest.mark.slow
def test_malformed_mesh_headers_on_asgi_middleware_and_decorator(
        asgi_url: str, plain_asgi_url: str) -> None:
    check_malformed_headers_read_as_absent(asgi_url + "/ctx")
    check_malformed_headers_read_as_absent(plain_asgi_url + "/decorated/7")
    check_malformed_headers_read_as_absent(plain_asgi_url + "/sync")


# -- WebSockets -----------------------------------------------------------------------------

WS_POLICY = {"authorization": {"default": "deny", "trust_caller_header": "x-caller",
                               "rules": [{"name": "chat", "action": "allow",
                                          "callers": ["frontend"]}]}}


async def ws_echo_caller(websocket: WebSocket) -> None:
    await websocket.accept()
    caller = websocket.scope["meshclient.caller"]
    await websocket.send_text(f"{caller.identity} {await websocket.receive_text()}")
    await websocket.close()


@pytest.mark.parametrize("wrap", ["mesh", "authorization"])
def test_websocket_without_a_permitted_caller_is_closed_with_1008(wrap: str) -> None:
    """A real WebSocket client against uvicorn: a denied caller's handshake is refused (the
    app closed it with 1008 before accepting; the server answers 403) and counted; a
    permitted caller reaches the app, which finds it in the scope."""
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    app = Starlette(routes=[WebSocketRoute("/ws", ws_echo_caller)])
    policy = meshclient.Policy.from_dict(WS_POLICY)
    wrapped: Any = (meshclient.asgi.MeshMiddleware(app, policy=policy) if wrap == "mesh"
                    else AuthorizationMiddleware(app, policy=policy))
    with serve_asgi(wrapped, host="127.0.0.7") as url:
        ws_url = url.replace("http://", "ws://") + "/ws"
        for headers in ({}, {"x-caller": "intruder"}):
            with pytest.raises(InvalidStatus) as info:
                connect(ws_url, additional_headers=headers, open_timeout=10).close()
            assert info.value.response.status_code == 403
        with connect(ws_url, additional_headers={"x-caller": "frontend"},
                     open_timeout=10) as ws:
            ws.send("hello")
            assert ws.recv(timeout=10) == "frontend hello"
    assert wrapped.denials.total == 2


# -- WSGI ----------------------------------------------------------------------------------

def wsgi_app(gate: Gate) -> Callable[..., Any]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ["PATH_INFO"] == "/block":
            gate.entered.set()
            gate.release.wait(5)
        gate.ran += 1
        body = json.dumps(context_now()).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]

    return app


@pytest.mark.slow
def test_wsgi_context_rejections_and_shedding(gate: Gate, otel: Otel) -> None:
    app = meshclient.wsgi.MeshMiddleware(wsgi_app(gate), max_concurrency=1,
                                         retry_after_s=2)
    with serve_wsgi(app) as url:
        body = httpx.get(url + "/ctx", headers={"x-mesh-deadline-ms": "3000",
                                                 "x-mesh-attempt": "2",
                                                 "traceparent": TRACEPARENT}).json()
        assert body["attempt"] == 2 and 2000 < body["remaining_ms"] <= 3000
        assert body["trace_id"] == TRACEPARENT.split("-")[1]
        assert httpx.get(url + "/ctx", headers={"x-mesh-deadline-ms": "0"}).status_code == 504
        assert gate.ran == 1
        threads = hold(url + "/block", gate)
        try:
            gate.wait_entered()
            r = httpx.get(url + "/ctx")
            assert r.status_code == 503 and r.headers["retry-after"] == "2"
        finally:
            gate.release.set()
            threads[0].join(10)
        assert httpx.get(url + "/ctx").status_code == 200
        check_malformed_headers_read_as_absent(url + "/ctx")
    servers = otel.wait_spans(5 + len(MALFORMED), SpanKind.SERVER)
    assert sorted(s.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] for s in servers) == [
        *[200] * (3 + len(MALFORMED)), 503, 504]
    assert inbound.get() is None  # nothing leaked into the test's context


def test_flask_decorator_and_middleware(gate: Gate) -> None:
    flask = pytest.importorskip("flask")
    app = flask.Flask("t")

    @app.get("/ctx")
    @meshclient.handler
    def ctx() -> Any:
        gate.ran += 1
        return context_now()

    with serve_wsgi(app) as url:
        assert httpx.get(url + "/ctx", headers={"x-mesh-attempt": "2"}).json()["attempt"] == 2
        r = httpx.get(url + "/ctx", headers={"x-mesh-deadline-ms": "0"})
        assert r.status_code == 504 and gate.ran == 1


def test_flask_decorator_marks_a_tuple_answer_after_spent_retries() -> None:
    """A handler returning Flask's `(body, status)` after its outbound call gave up on its
    retries (a refused connection, 3 attempts): the answer carries the count."""
    flask = pytest.importorskip("flask")
    app = flask.Flask("t")
    down = meshclient.Policy.from_dict({"services": {"down": {
        "endpoints": [f"127.0.0.8:{free_port('127.0.0.8')}"],
        "retry": {"attempts": 3, "backoff": {"base": "1ms", "max": "2ms"}}}}})

    @app.get("/page")
    @meshclient.handler
    def page() -> Any:
        with meshclient.Client(policy=down) as client:
            try:
                client.get("http://down/x")
            except httpx.ConnectError:
                return "down", 502
        return "up", 200

    with serve_wsgi(app) as url:
        r = httpx.get(url + "/page", timeout=10)
    assert r.status_code == 502 and r.headers["x-mesh-retries-spent"] == "3"


def test_generic_request_object() -> None:
    class Req:
        method = "POST"
        path = "/jobs"

        def __init__(self, headers: dict[str, str]) -> None:
            self.headers = headers

    @meshclient.handler
    def work(req: Req) -> dict[str, Any]:
        return context_now()

    assert work(Req({"X-Mesh-Attempt": "4"}))["attempt"] == 4
    with pytest.raises(HandlerRejected) as info:
        work(Req({"x-mesh-deadline-ms": "0"}))
    assert info.value.status == 504
    assert inbound.get() is None


# -- admin endpoint and `meshclient status` ------------------------------------------------

@pytest.mark.slow
def test_admin_endpoint_and_status_command(cluster: LoopbackCluster,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    policy = meshclient.Policy.from_dict({"version": "v9", "services": {
        "users": {"endpoints": cluster.addresses}}})
    transport = meshclient.MeshTransport(policy)
    with httpx.Client(transport=transport) as client, admin.serve("127.0.0.1", 0) as server:
        client.get("http://users/").read()
        doc = httpx.get(f"http://{server.address}/status").json()
        (reg,) = [r for r in doc["registries"] if "users" in r["services"]
                  and r["policy"] == "v9"]
        endpoints = reg["services"]["users"]["endpoints"]
        assert sorted(e["endpoint"] for e in endpoints) == sorted(cluster.addresses)
        assert httpx.get(f"http://{server.address}/nope").status_code == 404
        assert cli.main(["status", "--admin", server.address]) == 0
        out = capsys.readouterr().out
        assert "policy v9" in out and "users" in out and cluster.addresses[0] in out
        assert "in_flight" in out
        assert cli.main(["status", "--admin", server.address, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["pid"] == doc["pid"]
    assert cli.main(["status", "--admin", server.address]) == 1
    assert "cannot read" in capsys.readouterr().err


@pytest.mark.slow
def test_meshclient_admin_env_starts_the_endpoint(monkeypatch: pytest.MonkeyPatch,
                                                  cluster: LoopbackCluster) -> None:
    from tests.servers.ports import free_port

    port = free_port("127.0.0.1")
    monkeypatch.setenv("MESHCLIENT_ADMIN", f"127.0.0.1:{port}")
    admin.reset()
    try:
        meshclient.MeshTransport(cluster.policy("users"))
        assert cli.main(["status"]) == 0
    finally:
        admin.reset()


@pytest.mark.slow
def test_admin_port_taken_is_a_warning_not_a_crash(monkeypatch: pytest.MonkeyPatch,
                                                   cluster: LoopbackCluster,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    with admin.serve("127.0.0.1", 0) as taken:
        monkeypatch.setenv("MESHCLIENT_ADMIN", taken.address)
        admin.reset()
        try:
            meshclient.MeshTransport(cluster.policy("users"))
        finally:
            admin.reset()
    assert any("not started" in r.getMessage() for r in caplog.records)


def test_status_with_invalid_admin_env(monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MESHCLIENT_ADMIN", "nope")
    assert cli.main(["status"]) == 2
    assert "MESHCLIENT_ADMIN" in capsys.readouterr().err
