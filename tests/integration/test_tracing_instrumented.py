"""meshclient under OpenTelemetry's httpx instrumentation (`HTTPXClientInstrumentor`,
which wraps `httpx.HTTPTransport`, the mesh's inner transport): one CLIENT span per
attempt, meshclient's, and the `traceparent` the backend receives names it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry import context as otel_context
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.trace import SpanKind

from meshclient import telemetry
from meshclient.telemetry import semconv
from meshclient.testing import LoopbackCluster
from tests.servers.otel import Otel, otel_fixture  # noqa: F401 (the `otel` fixture)

INSTRUMENTATION_SCOPE = "opentelemetry.instrumentation.httpx"


@pytest.fixture
def instrumented(otel: Otel) -> Iterator[HTTPXClientInstrumentor]:
    instrumentor = HTTPXClientInstrumentor()
    instrumentor.instrument(tracer_provider=otel.tracer_provider)
    try:
        yield instrumentor
    finally:
        instrumentor.uninstrument()


def in_span(caller: Any, otel: Otel, url: str) -> httpx.Response:
    """GET `url` inside an application span (carried into the async portal's task)."""
    tracer = otel.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("handle"):
        ctx = otel_context.get_current()

        async def get(client: httpx.AsyncClient) -> httpx.Response:
            token = otel_context.attach(ctx)
            try:
                r = await client.get(url)
                await r.aread()
                return r
            finally:
                otel_context.detach(token)

        if caller.kind == "sync":
            r = caller.get(url)
            r.read()
            return r  # type: ignore[no-any-return]
        return caller.call(get)  # type: ignore[no-any-return]


def sent_span_id(r: httpx.Response) -> int:
    headers = {k.lower(): v for k, v in r.json()["headers"].items()}
    return int(headers["traceparent"].split("-")[2], 16)


def test_one_client_span_per_attempt_under_the_instrumentation(
        mesh, cluster: LoopbackCluster, otel: Otel, instrumented: Any) -> None:
    caller = mesh(cluster.policy("users"))
    r = in_span(caller, otel, "http://users/v1/x")
    assert r.status_code == 200
    clients = [s for s in otel.spans() if s.kind == SpanKind.CLIENT]
    assert [s.instrumentation_scope.name for s in clients] == ["meshclient"]
    (attempt,) = clients
    (call,) = otel.named("GET users")
    (app,) = otel.named("handle")
    assert call.parent is not None and call.parent.span_id == app.context.span_id
    assert attempt.parent is not None and attempt.parent.span_id == call.context.span_id
    assert sent_span_id(r) == attempt.context.span_id  # downstream continues the attempt


@pytest.mark.slow
def test_retries_and_passthrough_stay_single_spans(mesh, cluster: LoopbackCluster,
                                                   otel: Otel, instrumented: Any) -> None:
    cluster.set(0, status=503)
    caller = mesh(cluster.policy("users", balancer={"kind": "round-robin"}))
    for _ in range(3):
        in_span(caller, otel, "http://users/r")
    in_span(caller, otel, cluster[1].url + "/outside")
    scopes = {s.instrumentation_scope.name for s in otel.spans() if s.kind == SpanKind.CLIENT}
    assert scopes == {"meshclient"}
    attempts = otel.named("GET")
    calls = otel.named("GET users")
    assert len(attempts) == sum(c.attributes[semconv.MESH_ATTEMPTS] for c in calls) + 1


@pytest.mark.slow
def test_the_instrumentation_records_when_meshclient_does_not_trace(
        mesh, cluster: LoopbackCluster, otel: Otel, instrumented: Any) -> None:
    """Spans are meshclient's only while it records them: with telemetry off (no provider
    for meshclient), the instrumentation's own CLIENT span is left alone."""
    telemetry.configure(None, None)
    caller = mesh(cluster.policy("users"))
    r = in_span(caller, otel, "http://users/v1/x")
    (span,) = [s for s in otel.spans() if s.kind == SpanKind.CLIENT]
    assert span.instrumentation_scope.name == INSTRUMENTATION_SCOPE
    assert sent_span_id(r) == span.context.span_id


def test_a_mesh_client_instrumented_itself_still_sends_the_attempts_context(
        mesh, cluster: LoopbackCluster, otel: Otel) -> None:
    """`instrument_client` wraps the mesh transport itself: its span encloses the call and
    its `traceparent` lands on the logical request. That header names the current span,
    so it is not the caller's on purpose: each attempt still sends its own context."""
    caller = mesh(cluster.policy("users"))
    HTTPXClientInstrumentor.instrument_client(caller.client,
                                              tracer_provider=otel.tracer_provider)
    try:
        r = in_span(caller, otel, "http://users/v1/x")
    finally:
        HTTPXClientInstrumentor.uninstrument_client(caller.client)
    (attempt,) = [s for s in otel.named("GET") if s.instrumentation_scope.name == "meshclient"]
    (call,) = otel.named("GET users")
    (outer,) = [s for s in otel.spans()
                if s.instrumentation_scope.name == INSTRUMENTATION_SCOPE]
    assert call.parent is not None and call.parent.span_id == outer.context.span_id
    assert sent_span_id(r) == attempt.context.span_id
