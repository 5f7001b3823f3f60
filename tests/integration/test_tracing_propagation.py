"""What an attempt carries downstream, sampled or not, through both shells against real
loopback backends: the W3C headers written directly while the global propagator is the
default one (the propagator is then not asked per call), any other global propagator
honoured, baggage carried, an unsampled parent's trace id, flags and tracestate kept."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from opentelemetry import baggage, propagate
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from meshclient import telemetry
from meshclient.testing import LoopbackCluster
from tests.servers.caller import Caller
from tests.servers.otel import Custom, Louder, get_in_context

W3C = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"


@pytest.fixture
def spans() -> Iterator[Callable[[bool], InMemorySpanExporter]]:
    """`spans(sampled)`: an SDK whose root calls are sampled or not (a remote parent's
    flag decides under it), installed with `telemetry.configure`; its exporter."""
    providers: list[TracerProvider] = []

    def make(sampled: bool) -> InMemorySpanExporter:
        exporter = InMemorySpanExporter()
        provider = TracerProvider(sampler=ParentBased(ALWAYS_ON if sampled else ALWAYS_OFF))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        telemetry.configure(provider)
        providers.append(provider)
        return exporter

    yield make
    telemetry.configure(None, None)
    for provider in providers:
        provider.shutdown()


@pytest.fixture
def textmap() -> Iterator[Callable[[TextMapPropagator], None]]:
    """Set the global propagator for one test (`propagate.set_global_textmap`)."""
    before = propagate.get_global_textmap()
    yield propagate.set_global_textmap
    propagate.set_global_textmap(before)


def get_in(caller: Caller, url: str, ctx: Context) -> dict[str, str]:
    """GET `url` with `ctx` as the current context; the headers the backend received."""
    r = get_in_context(caller, url, ctx)
    assert r.status_code == 200
    return {k.lower(): v for k, v in r.json()["headers"].items()}


def remote(flags: str, tracestate: str | None = None, ctx: Context | None = None) -> Context:
    carrier = {"traceparent": f"00-{TRACE_ID}-{PARENT}-{flags}"}
    if tracestate is not None:
        carrier["tracestate"] = tracestate
    return W3C.extract(carrier, ctx)  # not the global one: some tests replace it


def test_an_unsampled_call_keeps_its_parents_trace_id_flags_and_tracestate(
        mesh: Callable[..., Caller], cluster: LoopbackCluster,
        spans: Callable[[bool], InMemorySpanExporter]) -> None:
    exporter = spans(True)  # a root would be sampled: the parent's 00 decides
    caller = mesh(cluster.policy("users"))
    sent = get_in(caller, "http://users/", remote("00", "vendor=abc,other=1"))
    version, trace_id, span_id, flags = sent["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", TRACE_ID, "00")
    assert span_id not in (PARENT, "0" * 16)  # the call's own (unrecorded) span
    assert sent["tracestate"] == "vendor=abc,other=1"
    assert "baggage" not in sent and exporter.get_finished_spans() == ()


@pytest.mark.parametrize("sampled", [False, True], ids=["unsampled", "sampled"])
def test_the_default_propagator_is_not_asked_per_call(
        mesh: Callable[..., Caller], cluster: LoopbackCluster,
        spans: Callable[[bool], InMemorySpanExporter], monkeypatch: pytest.MonkeyPatch,
        sampled: bool) -> None:
    exporter = spans(sampled)
    asked: list[object] = []
    default = propagate.get_global_textmap()
    inject = default.inject
    monkeypatch.setattr(default, "inject", lambda *a, **k: asked.append(a) or inject(*a, **k))
    caller = mesh(cluster.policy("users"))
    sent = get_in(caller, "http://users/", Context())
    _, trace_id, span_id, flags = sent["traceparent"].split("-")
    assert asked == []  # the same header, written directly
    assert int(flags, 16) & 0x01 == int(sampled)
    if sampled:
        attempt = next(s for s in exporter.get_finished_spans() if s.name == "GET")
        assert (int(trace_id, 16), int(span_id, 16)) == (attempt.context.trace_id,
                                                         attempt.context.span_id)
    else:
        assert exporter.get_finished_spans() == ()


@pytest.mark.parametrize("sampled", [False, True], ids=["unsampled", "sampled"])
def test_another_global_propagator_is_honoured(
        mesh: Callable[..., Caller], cluster: LoopbackCluster,
        spans: Callable[[bool], InMemorySpanExporter],
        textmap: Callable[[TextMapPropagator], None], sampled: bool) -> None:
    spans(sampled)
    caller = mesh(cluster.policy("users"))
    assert "traceparent" in get_in(caller, "http://users/", remote("01" if sampled else "00"))
    textmap(Custom())  # set after the first call: noticed on the next
    sent = get_in(caller, "http://users/", remote("01" if sampled else "00"))
    assert sent["x-trace"] == TRACE_ID.lstrip("0") and "traceparent" not in sent
    textmap(CompositePropagator([Louder()]))  # a subclass of the W3C one: its own inject
    sent = get_in(caller, "http://users/", remote("01" if sampled else "00"))
    assert sent["x-louder"] == "1" and sent["traceparent"].split("-")[1] == TRACE_ID


@pytest.mark.parametrize("sdk", ["unsampled", "sampled", "none"])
def test_baggage_is_carried_with_the_trace_context(
        mesh: Callable[..., Caller], cluster: LoopbackCluster,
        spans: Callable[[bool], InMemorySpanExporter], sdk: str) -> None:
    if sdk != "none":
        spans(sdk == "sampled")
    caller = mesh(cluster.policy("users"))
    ctx = baggage.set_baggage("tenant", "acme", remote("01" if sdk == "sampled" else "00"))
    sent = get_in(caller, "http://users/", ctx)
    assert sent["baggage"] == "tenant=acme"
    assert sent["traceparent"].split("-")[1] == TRACE_ID
    if sdk == "none":  # no SDK: the caller's span context is forwarded as it is
        assert sent["traceparent"] == f"00-{TRACE_ID}-{PARENT}-00"


def test_a_span_in_progress_without_an_sdk_is_forwarded(
        mesh: Callable[..., Caller], cluster: LoopbackCluster) -> None:
    caller = mesh(cluster.policy("users"))
    sent = get_in(caller, "http://users/", remote("01", "k=v"))
    assert sent["traceparent"] == f"00-{TRACE_ID}-{PARENT}-01"
    assert sent["tracestate"] == "k=v" and "baggage" not in sent
