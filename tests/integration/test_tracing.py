"""Spans, propagation and metrics of outbound calls, with the SDK's in-memory exporter and
metric reader, through both shells against real loopback backends."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import httpx
import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

import meshclient
from meshclient import _events, telemetry
from meshclient._core.actions import Discard, Done, Send, Sleep
from meshclient._core.address import address_request
from meshclient._core.first import First
from meshclient._core.flow import Flow
from meshclient.discovery.endpoint import Endpoint, split_address
from meshclient.telemetry import semconv
from meshclient.telemetry.flow import instrument
from meshclient.testing import LoopbackCluster
from tests.servers.otel import Otel, otel_fixture  # noqa: F401 (the `otel` fixture)


def header(headers: dict[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name), None)


def trace_id_of(traceparent: str) -> int:
    return int(traceparent.split("-")[1], 16)


def test_one_call_one_logical_span_and_one_attempt_span(mesh, cluster: LoopbackCluster,
                                                        otel: Otel) -> None:
    caller = mesh(cluster.policy("users"))
    r = caller.get("http://users/v1/users/42?x=1")
    assert r.status_code == 200
    (call,) = otel.named("GET users")
    (attempt,) = otel.named("GET")
    assert call.kind == SpanKind.INTERNAL and attempt.kind == SpanKind.CLIENT
    assert attempt.parent is not None and attempt.parent.span_id == call.context.span_id
    a = attempt.attributes
    assert a[semconv.HTTP_REQUEST_METHOD] == "GET"
    assert a[semconv.URL_FULL] == "http://users/v1/users/42?x=1"
    assert a[semconv.SERVER_ADDRESS] == "users"
    peer = f"{a[semconv.NETWORK_PEER_ADDRESS]}:{a[semconv.NETWORK_PEER_PORT]}"
    assert peer in cluster.addresses
    assert a[semconv.HTTP_RESPONSE_STATUS_CODE] == 200
    assert semconv.HTTP_REQUEST_RESEND_COUNT not in a
    assert call.attributes[semconv.MESH_ATTEMPTS] == 1
    # The backend received a traceparent of this trace, naming the attempt span.
    sent = header(r.json()["headers"], "traceparent")
    assert sent is not None
    assert trace_id_of(sent) == call.context.trace_id
    assert int(sent.split("-")[2], 16) == attempt.context.span_id


def test_spans_and_duration_end_when_the_body_closes(mesh, cluster: LoopbackCluster,
                                                     otel: Otel) -> None:
    caller = mesh(cluster.policy("users"))
    seen: dict[str, int] = {}
    if caller.kind == "sync":
        def read(client: httpx.Client) -> None:
            with client.stream("GET", "http://users/stream?chunks=3") as r:
                seen["before"] = len(otel.spans())
                r.read()
    else:
        async def read(client: httpx.AsyncClient) -> None:  # type: ignore[misc]
            async with client.stream("GET", "http://users/stream?chunks=3") as r:
                seen["before"] = len(otel.spans())
                await r.aread()
    caller.call(read)
    assert seen["before"] == 0  # headers arrived, nothing ended yet
    assert len(otel.spans()) == 2
    (point,) = otel.points("http.client.request.duration", **{semconv.SERVER_ADDRESS: "users"})
    assert point.count == 1
    assert list(point.explicit_bounds) == list(semconv.DURATION_BUCKETS)


def test_duration_metric_per_service_and_endpoint(mesh, cluster: LoopbackCluster,
                                                  otel: Otel) -> None:
    caller = mesh(cluster.policy("orders", balancer={"kind": "round-robin"}))
    for _ in range(6):
        caller.get("http://orders/x").read()
    for address in cluster.addresses:
        (point,) = otel.points("http.client.request.duration",
                               **{semconv.SERVER_ADDRESS: "orders",
                                  semconv.MESH_ENDPOINT: address,
                                  semconv.HTTP_RESPONSE_STATUS_CODE: 200})
        assert point.count == 2
        assert 0 < point.sum < 5


def test_explicit_traceparent_is_kept(mesh, cluster: LoopbackCluster, otel: Otel) -> None:
    caller = mesh(cluster.policy("users"))
    mine = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    r = caller.get("http://users/", headers={"traceparent": mine})
    assert header(r.json()["headers"], "traceparent") == mine


def test_passthrough_is_one_client_span(mesh, cluster: LoopbackCluster, otel: Otel) -> None:
    caller = mesh(cluster.policy("users"))
    r = caller.get(cluster[1].url + "/direct")
    r.read()
    (span,) = otel.spans()
    assert span.kind == SpanKind.CLIENT and span.parent is None
    assert span.attributes[semconv.SERVER_ADDRESS] == cluster[1].host
    assert trace_id_of(header(r.json()["headers"], "traceparent") or "") == \
        span.context.trace_id


def test_error_attempt_sets_error_type(mesh, otel: Otel) -> None:
    port = _closed_port()
    caller = mesh(meshclient.Policy.from_dict(
        {"services": {"gone": {"endpoints": [f"127.0.0.1:{port}"]}}}))
    with pytest.raises(httpx.ConnectError):
        caller.get("http://gone/")
    (call,) = otel.named("GET gone")
    attempts = otel.named("GET")  # one, or more where the flow retries connect errors
    assert len(attempts) == call.attributes[semconv.MESH_ATTEMPTS] >= 1
    for attempt in attempts:
        assert attempt.status.status_code == StatusCode.ERROR
        assert attempt.attributes[semconv.ERROR_TYPE] == "httpx.ConnectError"
    assert call.attributes[semconv.ERROR_TYPE] == "httpx.ConnectError"
    points = otel.points("http.client.request.duration", **{semconv.SERVER_ADDRESS: "gone"})
    assert points and all(p.attributes[semconv.ERROR_TYPE] == "httpx.ConnectError"
                          for p in points)


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# A call with one retry. The flow on this branch makes one attempt (retries are issue-4's);
# this scripted flow yields what a retrying flow yields, through the real shells.
def _retry_once(request: httpx.Request, service: Any, eps: list[Endpoint]) -> Flow:
    outcome = yield Send(address_request(request, service, eps[0]), eps[0], "users", 1)
    assert outcome is not None and outcome.response is not None
    _events.emit(_events.RETRY, "users", endpoint=eps[0].key)
    yield Discard(outcome.response)
    yield Sleep(0.001)
    outcome = yield Send(address_request(request, service, eps[1]), eps[1], "users", 2)
    assert outcome is not None and outcome.response is not None
    yield Done(outcome.response, attempts=2)


class _Scripted:
    eps: list[Endpoint]

    store: meshclient.PolicyStore

    def _open(self, request: httpx.Request, begun: Any) -> Flow | None:
        service = self.store.current.resolved.get(request.url.host)
        assert service is not None and service.name == "users"
        call = telemetry.start_call(request, "users")
        assert call is not None
        return instrument(_retry_once(request, service, self.eps), call)


class ScriptedSync(_Scripted, meshclient.MeshTransport):
    pass


class ScriptedAsync(_Scripted, meshclient.AsyncMeshTransport):
    pass


def _get(shell: str, transport: Any, url: str) -> httpx.Response:
    if shell == "sync":
        with httpx.Client(transport=transport) as client:
            r = client.get(url)
            r.read()
            return r

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport) as client:
            r = await client.get(url)
            await r.aread()
            return r

    return anyio.run(go)


def test_one_retry_two_attempt_spans_with_resend_count(shell: str, cluster: LoopbackCluster,
                                                       otel: Otel) -> None:
    cluster.set(0, status=503)
    transport = (ScriptedSync if shell == "sync" else ScriptedAsync)(cluster.policy("users"))
    transport.eps = [Endpoint(*split_address(a)) for a in cluster.addresses[:2]]
    r = _get(shell, transport, "http://users/retry")
    assert r.status_code == 200
    (call,) = otel.named("GET users")
    attempts = sorted(otel.named("GET"), key=lambda s: s.start_time or 0)
    assert len(attempts) == 2
    first, second = attempts
    assert first.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] == 503
    assert first.attributes[semconv.ERROR_TYPE] == "503"
    assert semconv.HTTP_REQUEST_RESEND_COUNT not in first.attributes
    assert second.attributes[semconv.HTTP_REQUEST_RESEND_COUNT] == 1
    assert second.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] == 200
    assert all(s.parent is not None and s.parent.span_id == call.context.span_id
               for s in attempts)
    assert (first.end_time or 0) <= (second.start_time or 0)  # ended at the discard
    assert call.attributes[semconv.MESH_ATTEMPTS] == 2
    assert [e.name for e in call.events] == ["meshclient.retry"]
    # Each backend saw its own attempt's span as parent, all in one trace.
    sent = [header(b.requests[-1][2], "traceparent") or "" for b in cluster.backends[:2]]
    assert [int(t.split("-")[2], 16) for t in sent] == [s.context.span_id for s in attempts]
    assert {trace_id_of(t) for t in sent} == {call.context.trace_id}
    (retries,) = otel.points("meshclient.retries", **{semconv.MESH_SERVICE: "users"})
    assert retries.value == 1
    points = otel.points("http.client.request.duration", **{semconv.SERVER_ADDRESS: "users"})
    # the resend count is on the attempt spans, not a metric attribute (one series per
    # count); server.port is one of the metric's required attributes
    assert sorted(p.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] for p in points) == [200, 503]
    assert all(semconv.HTTP_REQUEST_RESEND_COUNT not in p.attributes for p in points)
    assert {p.attributes[semconv.SERVER_PORT] for p in points} == {80}


def test_real_retries_one_span_per_attempt(mesh, cluster: LoopbackCluster, otel: Otel) -> None:
    """The same invariants with the core's own retrying flow (round robin, so calls keep
    landing on the failing endpoint first)."""
    cluster.set(0, status=503)
    caller = mesh(cluster.policy("users", balancer={"kind": "round-robin"}))
    for _ in range(6):
        caller.get("http://users/r").read()
    calls = otel.named("GET users")
    assert len(calls) == 6
    attempts = otel.named("GET")
    assert len(attempts) == sum(c.attributes[semconv.MESH_ATTEMPTS] for c in calls)
    assert len(attempts) > len(calls)  # some calls were retried
    for call in calls:
        mine = sorted((a for a in attempts if a.parent and a.parent.span_id ==
                       call.context.span_id), key=lambda a: a.start_time or 0)
        assert [a.attributes.get(semconv.HTTP_REQUEST_RESEND_COUNT, 0) for a in mine] == \
            list(range(len(mine)))
        assert mine[-1].attributes[semconv.HTTP_RESPONSE_STATUS_CODE] == 200
        assert all(a.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] == 503 for a in mine[:-1])
        # the retry event the flow emits lands on the call span
        assert [e.name for e in call.events].count("meshclient.retry") == len(mine) - 1


def test_state_events_become_metrics_span_events_and_one_log_line(
        otel: Otel, caplog: pytest.LogCaptureFixture) -> None:
    tracer = otel.tracer_provider.get_tracer("test")
    with caplog.at_level(logging.INFO, logger="meshclient"):
        with tracer.start_as_current_span("request"):
            _events.emit(_events.BUDGET_EXHAUSTED, "svc-ev")
            _events.emit(_events.BREAKER_FAST_FAIL, "svc-ev", endpoint="10.0.0.1:80")
        _events.emit(_events.BREAKER_STATE, "svc-ev", endpoint="10.0.0.1:80", old="closed",
                     new="open")
        _events.emit(_events.EJECTED, "svc-ev", endpoint="10.0.0.2:80", until_s=30)
        _events.emit(_events.PANIC, "svc-ev", active=True, healthy=1, total=5)
        _events.emit(_events.POLICY_APPLIED, "", version="v2", summary="1 service")
        _events.emit(_events.DISCOVERY_ERROR, "svc-ev", error="timeout", stale_s=12.5)
    (span,) = otel.named("request")
    assert [e.name for e in span.events] == ["meshclient.budget_exhausted",
                                             "meshclient.breaker_fast_fail"]
    svc = {semconv.MESH_SERVICE: "svc-ev"}
    assert otel.points("meshclient.retry_budget.exhausted", **svc)[0].value == 1
    assert otel.points("meshclient.breaker.fast_fails", **svc)[0].value == 1
    (tr,) = otel.points("meshclient.breaker.transitions", **svc)
    assert tr.attributes["meshclient.breaker.state"] == "open"
    assert otel.points("meshclient.endpoint.ejections", **svc)[0].value == 1
    assert otel.points("meshclient.panic.transitions", **svc)[0].attributes[
        "meshclient.panic.active"] is True
    assert otel.points("meshclient.policy.refreshes")[0].value >= 1
    assert otel.points("meshclient.discovery.errors", **svc)[0].value == 1
    assert otel.points("meshclient.discovery.staleness", **svc)[0].value == 12.5
    # ejections, panic, policy swaps and discovery failure streaks are logged where they
    # happen (balancer, store, endpoint cache): telemetry adds the lines no component
    # writes, so each state change is one line
    lines = [r.getMessage() for r in caplog.records if r.name == "meshclient"]
    assert lines == ["breaker svc-ev/10.0.0.1:80: closed -> open"]


def test_no_sdk_fast_path(cluster: LoopbackCluster) -> None:
    telemetry.configure(None, None)
    assert trace.get_tracer_provider().__class__.__name__ in (
        "ProxyTracerProvider", "NoOpTracerProvider"), "a global SDK leaked into the tests"
    request = httpx.Request("GET", "http://users/")
    assert telemetry.start_call(request, "users") is None
    transport = meshclient.MeshTransport(cluster.policy("users"))
    flow = transport._open(request, transport._route(request))
    assert isinstance(flow, First)  # not wrapped: the first attempt without the generator
    outside = httpx.Request("GET", cluster[0].url)
    assert transport._open(outside, transport._route(outside)) is None


def test_a_traced_call_takes_the_same_first_attempt_path(mesh, cluster: LoopbackCluster,
                                                         otel: Otel) -> None:
    transport = meshclient.MeshTransport(cluster.policy("users"))
    request = httpx.Request("GET", "http://users/")
    opened = transport._open(request, transport._route(request))
    assert isinstance(opened, First) and opened.traced  # one path, traced or not
    opened.cancelled()  # not sent: the call's spans end
    transport.close()
    caller = mesh(cluster.policy("users"))
    assert caller.get("http://users/").status_code == 200
    assert len(otel.named("GET users")) == 2 and len(otel.named("GET")) == 2


def test_no_sdk_still_forwards_an_inbound_trace_context(mesh, cluster: LoopbackCluster) -> None:
    from opentelemetry import context, propagate

    incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    caller = mesh(cluster.policy("users"))
    token = context.attach(propagate.extract({"traceparent": incoming}))
    try:
        if caller.kind == "sync":
            r = caller.get("http://users/")
        else:  # the portal's task does not see this thread's context: pass it along
            ctx = context.get_current()

            async def get(client: httpx.AsyncClient) -> httpx.Response:
                token2 = context.attach(ctx)
                try:
                    return await client.get("http://users/")
                finally:
                    context.detach(token2)
            r = caller.call(get)
    finally:
        context.detach(token)
    sent = header(r.json()["headers"], "traceparent") or ""
    assert trace_id_of(sent) == trace_id_of(incoming)


def test_url_full_redacts_secrets_in_query_and_userinfo(mesh, cluster: LoopbackCluster,
                                                        otel: Otel) -> None:
    caller = mesh(cluster.policy("users"))
    secret_query = ("access_token=tok-123&page=2&X-Goog-Signature=sig-456&API_KEY=k-789"
                    "&sig=s-000")
    r = caller.get(f"http://alice:pw-111@users/v1/users/42?{secret_query}")
    assert r.status_code == 200
    # the backend still got every value: only what is recorded is redacted
    assert "access_token=tok-123" in r.json()["path"]
    expected = ("http://REDACTED:REDACTED@users/v1/users/42?access_token=REDACTED&page=2"
                "&X-Goog-Signature=REDACTED&API_KEY=REDACTED&sig=REDACTED")
    spans = otel.spans()
    assert len(spans) == 2
    for span in spans:
        assert span.attributes[semconv.URL_FULL] == expected
        text = repr(dict(span.attributes))
        for secret in ("tok-123", "sig-456", "k-789", "s-000", "pw-111", "alice"):
            assert secret not in text


def test_url_full_redacts_added_keys(mesh, cluster: LoopbackCluster, otel: Otel,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from meshclient.telemetry import redact

    monkeypatch.setattr(redact, "_keys", redact.sensitive_query_keys())  # restored after
    telemetry.add_sensitive_query_keys("X-Session")
    caller = mesh(cluster.policy("users"))
    caller.get("http://users/a?x-session=abc&q=1").read()
    (attempt,) = otel.named("GET")
    assert attempt.attributes[semconv.URL_FULL] == "http://users/a?x-session=REDACTED&q=1"


def test_running_out_of_attempts_is_not_a_budget_refusal(mesh, cluster: LoopbackCluster,
                                                         otel: Otel) -> None:
    for i in range(3):
        cluster.set(i, status=503)
    caller = mesh(cluster.policy("users", retry={"attempts": 2,
                                                 "backoff": {"base": 0.001, "max": 0.002}}))
    assert caller.get("http://users/x").status_code == 503
    assert sum(cluster.hits()) == 2
    svc = {semconv.MESH_SERVICE: "users"}
    assert otel.points("meshclient.retry_budget.exhausted", **svc) == []  # no budget ran out
    (gave_up,) = otel.points("meshclient.retries.exhausted", **svc)
    assert gave_up.value == 1 and gave_up.attributes["meshclient.reason"] == "attempts"
    (call,) = otel.named("GET users")
    assert [e.name for e in call.events] == ["meshclient.retry",
                                             "meshclient.attempts_exhausted"]


def test_a_budget_refusal_counts_in_both(mesh, cluster: LoopbackCluster, otel: Otel) -> None:
    for i in range(3):
        cluster.set(i, status=503)
    caller = mesh(cluster.policy("users", retry={"budget": {"ratio": 0, "min_per_second": 0.1,
                                                            "ttl": 10}}))
    assert caller.get("http://users/x").status_code == 503
    assert sum(cluster.hits()) == 2  # the budget's one retry, then a refusal
    svc = {semconv.MESH_SERVICE: "users"}
    (refused,) = otel.points("meshclient.retry_budget.exhausted", **svc)
    (gave_up,) = otel.points("meshclient.retries.exhausted", **svc)
    assert refused.value == gave_up.value == 1
    assert gave_up.attributes["meshclient.reason"] == "budget"
    assert "meshclient.reason" not in refused.attributes
