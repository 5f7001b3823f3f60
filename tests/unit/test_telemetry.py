"""Telemetry without I/O: the flow instrumentation driven by scripted flows, the
semantic-convention helpers, the fast path."""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest
from opentelemetry.trace import SpanKind

from meshclient._core.actions import Done, Outcome, Send
from meshclient._core.flow import Flow
from meshclient.discovery.endpoint import Endpoint
from meshclient.telemetry import semconv, start_call
from meshclient.telemetry.flow import instrument
from meshclient.telemetry.tracing import url_without_credentials
from tests.servers.otel import Otel, otel_fixture  # noqa: F401 (the `otel` fixture)

A = Endpoint("10.0.0.1", 80)
B = Endpoint("10.0.0.2", 80)


@dataclass(frozen=True)
class Hedge:  # the shape issue-4's Hedge action has
    primary: Send
    secondary: Send
    delay_s: float
    good: Callable[[Outcome], bool]


@dataclass(frozen=True)
class HedgeOutcome:
    winner: int
    outcome: Outcome
    other: Outcome | None
    hedged: bool


def send(request: httpx.Request, ep: Endpoint, n: int) -> Send:
    return Send(httpx.Request("GET", f"http://{ep.key}/x", headers=request.headers), ep,
                "users", n)


def hedged_flow(request: httpx.Request, sent: list[Send]) -> Flow:
    pair = Hedge(send(request, A, 1), send(request, B, 2), 0.01, lambda o: True)
    sent += [pair.primary, pair.secondary]
    reply = yield pair  # type: ignore[misc]
    yield Done(reply.outcome.response, attempts=2)  # type: ignore[union-attr]


def drive(flow: Flow, replies: list[object]) -> Done:
    action = next(flow)
    for reply in replies:
        action = flow.send(reply)  # type: ignore[arg-type]
    assert isinstance(action, Done)
    return action


def test_hedge_winner_stays_open_loser_ends(otel: Otel) -> None:
    request = httpx.Request("GET", "http://users/x")
    call = start_call(request, "users")
    assert call is not None
    sent: list[Send] = []
    won = httpx.Response(200)
    done = drive(instrument(hedged_flow(request, sent), call),
                 [HedgeOutcome(1, Outcome(response=won), None, True)])
    # both attempts carried their own span's traceparent
    assert sent[0].request.headers["traceparent"] != sent[1].request.headers["traceparent"]
    (loser,) = otel.named("GET")
    assert loser.attributes[semconv.ERROR_TYPE] == "cancelled"
    assert loser.attributes[semconv.NETWORK_PEER_ADDRESS] == "10.0.0.1"
    assert done.on_close is not None
    done.on_close(None)
    spans = otel.named("GET")
    assert len(spans) == 2
    winner = next(s for s in spans if s is not loser)
    assert winner.attributes[semconv.HTTP_REQUEST_RESEND_COUNT] == 1
    assert winner.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] == 200
    (logical,) = otel.named("GET users")
    assert logical.attributes[semconv.MESH_ATTEMPTS] == 2


def test_unsent_hedge_is_dropped(otel: Otel) -> None:
    request = httpx.Request("GET", "http://users/x")
    call = start_call(request, "users")
    assert call is not None
    done = drive(instrument(hedged_flow(request, []), call),
                 [HedgeOutcome(0, Outcome(response=httpx.Response(200)), None, False)])
    done.on_close(None)  # type: ignore[misc]
    (attempt,) = otel.named("GET")
    assert attempt.attributes[semconv.NETWORK_PEER_ADDRESS] == "10.0.0.1"
    assert otel.named("GET users")[0].attributes[semconv.MESH_ATTEMPTS] == 1


def one_attempt(request: httpx.Request) -> Flow:
    outcome = yield Send(request, A, "users", 1)
    assert outcome is not None
    yield Done(outcome.response)  # type: ignore[arg-type]


def test_abandoned_generator_after_done_does_not_end_the_call(otel: Otel) -> None:
    request = httpx.Request("GET", "http://users/x")
    call = start_call(request, "users")
    assert call is not None
    flow = instrument(one_attempt(request), call)
    done = drive(flow, [Outcome(response=httpx.Response(200))])
    del flow
    gc.collect()
    assert otel.spans() == []  # the shell stopped at Done; the body is still open
    done.on_close(None)  # type: ignore[misc]
    assert {s.kind for s in otel.spans()} == {SpanKind.CLIENT, SpanKind.INTERNAL}


def test_flow_error_ends_everything_with_error_type(otel: Otel) -> None:
    request = httpx.Request("GET", "http://users/x")
    call = start_call(request, "users")
    assert call is not None
    flow = instrument(one_attempt(request), call)
    next(flow)
    with pytest.raises(TypeError):
        flow.throw(TypeError("boom"))
    assert {s.attributes[semconv.ERROR_TYPE] for s in otel.spans()} == {"TypeError"}


@pytest.mark.parametrize(("status", "error", "expected"), [
    (200, None, None), (404, None, "404"), (503, None, "503"),
    (None, httpx.ConnectError("x"), "httpx.ConnectError"), (None, TimeoutError(), "TimeoutError"),
])
def test_error_type(status: int | None, error: BaseException | None,
                    expected: str | None) -> None:
    assert semconv.error_type(status, error) == expected


def test_url_without_credentials_and_methods() -> None:
    assert url_without_credentials(httpx.URL("http://u:p@users/x?q=1")) == \
        "http://REDACTED:REDACTED@users/x?q=1"
    assert semconv.method_attr("GET") == "GET"
    assert semconv.method_attr("PURGE") == "_OTHER"


def test_fast_path_without_providers() -> None:
    assert start_call(httpx.Request("GET", "http://users/"), "users") is None


def test_global_providers_are_otels(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shortcut around OTel's per-call environment lookup answers what OTel answers,
    also after the environment changed."""
    from opentelemetry import metrics, trace

    from meshclient.telemetry import providers

    for _ in range(2):
        assert providers._global_tracer_provider() is trace.get_tracer_provider()
        assert providers._global_meter_provider() is metrics.get_meter_provider()
        monkeypatch.setenv("MESHCLIENT_TEST_UNRELATED", "1")
