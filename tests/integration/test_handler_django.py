"""`@meshclient.handler` on Django views and `meshclient.wsgi.MeshMiddleware` around Django's
WSGI application, through real HTTP on a threading wsgiref server (no database: a minimal
project configured here, its URLconf a module built by the test).

Django runs an `async def` view under its WSGI handler too (`async_to_sync`, an event loop
per request), so every decorator behaviour is checked on a sync and an async view. The
same views also run under Django's ASGI handler on uvicorn."""

from __future__ import annotations

import asyncio
import sys
import threading
import types
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.trace import SpanKind, StatusCode

import meshclient
import meshclient.wsgi
from meshclient.policy import Policy, PolicyStore
from meshclient.telemetry import semconv
from tests.integration.test_server_middleware import (
    TRACEPARENT,
    Gate,
    check_guarded_handler,
    check_limited_handler_sheds,
    context_now,
    hold,
)
from tests.servers.otel import Otel, otel_fixture  # noqa: F401 (the `otel` fixture)
from tests.servers.threaded import serve_asgi, serve_wsgi

django = pytest.importorskip("django")

URLCONF = "tests_meshclient_django_urls"  # a module that exists only in sys.modules

#: callers named frontend-* may call; everyone else is denied (403)
AUTHORIZATION = {"default": "deny", "trust_caller_header": "x-caller",
                 "rules": [{"name": "frontends", "action": "allow", "callers": ["frontend-*"]}]}

PARENT_SPAN_ID = int(TRACEPARENT.split("-")[2], 16)
TRACE_ID = TRACEPARENT.split("-")[1]


def setup_django() -> None:
    """Configure Django once per process (settings are global and cannot be reconfigured)."""
    from django.conf import settings

    if not settings.configured:
        sys.modules.setdefault(URLCONF, types.ModuleType(URLCONF))
        settings.configure(DEBUG=False, SECRET_KEY="meshclient-tests", ROOT_URLCONF=URLCONF,
                           ALLOWED_HOSTS=["127.0.0.1"], MIDDLEWARE=[], INSTALLED_APPS=[],
                           DATABASES={}, USE_TZ=True)
        django.setup()
    if settings.ROOT_URLCONF != URLCONF:  # pragma: no cover - another test configured Django
        pytest.skip("Django was configured elsewhere in this process")


def views(gate: Gate, store: PolicyStore) -> list[Any]:
    """The URL patterns: each decorated view in a sync and an async form."""
    from django.http import Http404, JsonResponse
    from django.urls import path

    def ctx(request: Any, id: int) -> Any:
        gate.ran += 1
        return JsonResponse({"id": id, **context_now()})

    async def actx(request: Any, id: int) -> Any:
        gate.ran += 1
        return JsonResponse({"id": id, **context_now()})

    def block(request: Any) -> Any:
        gate.entered.set()
        gate.release.wait(5)
        return JsonResponse({"ok": True})

    async def ablock(request: Any) -> Any:
        gate.entered.set()
        for _ in range(500):  # at most 5 s
            if gate.release.is_set():
                break
            await asyncio.sleep(0.01)  # the scenario: holds its request until released
        return JsonResponse({"ok": True})

    def guarded(request: Any) -> Any:
        gate.ran += 1
        return JsonResponse({"ok": True})

    async def aguarded(request: Any) -> Any:
        gate.ran += 1
        return JsonResponse({"ok": True})

    def missing(request: Any) -> Any:
        raise Http404("no such thing")

    handler = meshclient.handler
    return [
        path("sync/ctx/<int:id>", handler(ctx)),
        path("async/ctx/<int:id>", handler(actx)),
        path("sync/limited", handler(max_concurrency=1, retry_after_s=2)(block)),
        path("async/limited", handler(max_concurrency=1, retry_after_s=2)(ablock)),
        path("sync/guarded", handler(policy=store)(guarded)),
        path("async/guarded", handler(policy=store)(aguarded)),
        path("sync/missing", handler(missing)),
        path("plain/ctx/<int:id>", ctx),  # undecorated: for the middleware
        path("plain/block", block),
    ]


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def application(gate: Gate) -> Iterator[Callable[..., Any]]:
    """Django's WSGI application serving this test's views."""
    setup_django()
    from django.core.wsgi import get_wsgi_application
    from django.urls import clear_url_caches

    sys.modules[URLCONF].urlpatterns = views(  # type: ignore[attr-defined]
        gate, PolicyStore(Policy.from_dict({"authorization": AUTHORIZATION})))
    clear_url_caches()
    yield get_wsgi_application()
    clear_url_caches()


@pytest.fixture
def asgi_application(application: Callable[..., Any]) -> Any:
    """Django's ASGI application over the same views."""
    from django.core.asgi import get_asgi_application

    return get_asgi_application()


@pytest.fixture
def url(application: Callable[..., Any]) -> Iterator[str]:
    with serve_wsgi(application) as base:
        yield base


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.slow
def test_view_continues_the_trace_and_reads_deadline_and_attempt(url: str, kind: str,
                                                                 otel: Otel) -> None:
    r = httpx.get(f"{url}/{kind}/ctx/7", headers={"x-mesh-deadline-ms": "5000",
                                                   "x-mesh-attempt": "2",
                                                   "traceparent": TRACEPARENT})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == 7 and body["attempt"] == 2
    assert 4000 < body["remaining_ms"] <= 5000
    assert body["trace_id"] == TRACE_ID
    (span,) = otel.wait_spans(1, SpanKind.SERVER)
    assert span.parent is not None and span.parent.span_id == PARENT_SPAN_ID
    assert span.context.trace_id == int(TRACE_ID, 16)
    assert span.name == f"GET /{kind}/ctx/<int:id>"  # Django's matched route
    assert span.attributes[semconv.HTTP_ROUTE] == f"/{kind}/ctx/<int:id>"
    assert span.attributes[semconv.URL_PATH] == f"/{kind}/ctx/7"
    assert span.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] == 200
    # without headers: attempt 1, no deadline, a new trace
    body = httpx.get(f"{url}/{kind}/ctx/8").json()
    assert body["attempt"] == 1 and body["remaining_ms"] is None and body["trace_id"] != TRACE_ID


def test_expired_deadline_is_504_without_running_the_view(url: str, kind: str, gate: Gate,
                                                          otel: Otel) -> None:
    r = httpx.get(f"{url}/{kind}/ctx/1", headers={"x-mesh-deadline-ms": "0"})
    assert r.status_code == 504
    assert r.headers["content-type"].startswith("text/plain")
    assert gate.ran == 0
    (span,) = otel.wait_spans(1, SpanKind.SERVER)
    assert span.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] == 504
    (point,) = otel.points("meshclient.server.rejections", **{"meshclient.reason": "deadline"})
    assert point.value == 1


def test_full_concurrency_limit_is_503_with_retry_after(url: str, kind: str,
                                                        gate: Gate) -> None:
    check_limited_handler_sheds(f"{url}/{kind}/limited", gate)


def test_authorization_is_enforced(url: str, kind: str, gate: Gate) -> None:
    check_guarded_handler(f"{url}/{kind}/guarded", gate)


def test_http404_is_recorded_as_404_not_a_failure(url: str, otel: Otel) -> None:
    assert httpx.get(f"{url}/sync/missing").status_code == 404
    (span,) = otel.wait_spans(1, SpanKind.SERVER)
    assert span.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] == 404
    assert span.status.status_code is not StatusCode.ERROR


def test_wsgi_middleware_around_the_django_application(application: Callable[..., Any],
                                                       gate: Gate, otel: Otel) -> None:
    app = meshclient.wsgi.MeshMiddleware(
        application, max_concurrency=1, retry_after_s=3,
        policy=PolicyStore(Policy.from_dict({"authorization": AUTHORIZATION})))
    ok = {"x-caller": "frontend-web"}
    with serve_wsgi(app) as url:
        r = httpx.get(f"{url}/plain/ctx/3", headers={**ok, "x-mesh-deadline-ms": "3000",
                                                      "x-mesh-attempt": "4",
                                                      "traceparent": TRACEPARENT})
        body = r.json()
        assert body["attempt"] == 4 and 2000 < body["remaining_ms"] <= 3000
        assert body["trace_id"] == TRACE_ID and gate.ran == 1
        r = httpx.get(f"{url}/plain/ctx/3", headers={**ok, "x-mesh-deadline-ms": "0"})
        assert r.status_code == 504 and gate.ran == 1
        r = httpx.get(f"{url}/plain/ctx/3", headers={"x-caller": "batch-job"})
        assert r.status_code == 403 and gate.ran == 1
        threads = hold(f"{url}/plain/block", gate)  # no caller header: denied, never enters
        threads[0].join(10)
        assert not gate.entered.is_set()
        threads = [threading.Thread(target=httpx.get, args=(f"{url}/plain/block",),
                                    kwargs={"headers": ok, "timeout": 10})]
        threads[0].start()
        try:
            gate.wait_entered()
            r = httpx.get(f"{url}/plain/ctx/3", headers=ok)
            assert r.status_code == 503 and r.headers["retry-after"] == "3"
        finally:
            gate.release.set()
            threads[0].join(10)
    spans = otel.wait_spans(6, SpanKind.SERVER)
    assert sorted(s.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] for s in spans) == [
        200, 200, 403, 403, 503, 504]
    (first,) = [s for s in spans if s.parent is not None]
    assert first.parent.span_id == PARENT_SPAN_ID  # type: ignore[union-attr]


@pytest.mark.slow
def test_views_under_django_asgi_on_uvicorn(asgi_application: Any, gate: Gate,
                                            otel: Otel) -> None:
    headers = {"x-mesh-deadline-ms": "5000", "x-mesh-attempt": "3", "traceparent": TRACEPARENT}
    with serve_asgi(asgi_application) as url:
        for kind in ("sync", "async"):
            body = httpx.get(f"{url}/{kind}/ctx/5", headers=headers).json()
            assert body["attempt"] == 3 and 4000 < body["remaining_ms"] <= 5000
            assert body["trace_id"] == TRACE_ID
            r = httpx.get(f"{url}/{kind}/ctx/5", headers={"x-mesh-deadline-ms": "0"})
            assert r.status_code == 504
            r = httpx.get(f"{url}/{kind}/guarded", headers={"x-caller": "batch-job"})
            assert r.status_code == 403
    assert gate.ran == 2
    spans = otel.wait_spans(6, SpanKind.SERVER)
    assert sorted(s.name for s in spans if s.parent is not None) == [
        "GET /async/ctx/<int:id>", "GET /sync/ctx/<int:id>"]


def test_the_gates_header_edits_reach_a_django_request() -> None:
    """`META` is edited and the request's cached `headers` view dropped."""
    from django.http import HttpRequest

    from meshclient.security.authz import Caller
    from meshclient.security.gate import Admitted
    from meshclient.server.request_edits import edit_request

    setup_django()
    req = HttpRequest()
    req.META["HTTP_AUTHORIZATION"] = "Bearer t"
    assert req.headers.get("Authorization") == "Bearer t"  # cached view
    edits = Admitted(Caller(None, "none"), None, (("x-user", "alice"),), ("authorization",))
    assert edit_request(req, edits)
    assert req.headers.get("X-User") == "alice" and req.headers.get("Authorization") is None
