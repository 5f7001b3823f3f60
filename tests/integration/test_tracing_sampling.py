"""Sampling: the sampler decides once per call; a call it does not sample records no span
(no attempt span either), still carries its trace context (sampled flag off) on every
attempt, and still records its duration when a meter is configured. Through both shells
against real loopback backends."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import httpx
import pytest
from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

from meshclient import telemetry
from meshclient.telemetry import semconv
from meshclient.testing import LoopbackCluster
from tests.servers.caller import Caller
from tests.servers.otel import get_in_context


class Counting(Sampler):
    """`ParentBased(ALWAYS_OFF)` (sample only under a sampled parent), counting how often
    it is asked and keeping the attributes it was shown."""

    def __init__(self) -> None:
        self.inner = ParentBased(ALWAYS_OFF)
        self.asked = 0
        self.shown: list[dict[str, Any]] = []

    def should_sample(self, parent_context: Context | None, trace_id: int, name: str,
                      kind: SpanKind | None = None, attributes: Attributes = None,
                      links: Sequence[Link] | None = None,
                      trace_state: Any = None) -> SamplingResult:
        self.asked += 1
        self.shown.append(dict(attributes or {}))
        return self.inner.should_sample(parent_context, trace_id, name, kind, attributes,
                                        links)

    def get_description(self) -> str:
        return "Counting"


class Sdk:
    def __init__(self, meters: bool) -> None:
        self.sampler = Counting()
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(sampler=self.sampler)
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meters = MeterProvider(metric_readers=[self.reader]) if meters else None

    def install(self) -> None:
        telemetry.configure(self.provider, self.meters)

    def close(self) -> None:
        telemetry.configure(None, None)
        self.provider.shutdown()
        if self.meters is not None:
            self.meters.shutdown()

    def durations(self) -> list[Any]:
        data = self.reader.get_metrics_data()
        return [p for rm in (data.resource_metrics if data else ())
                for sm in rm.scope_metrics for m in sm.metrics
                if m.name == "http.client.request.duration" for p in m.data.data_points]


@pytest.fixture
def sdk() -> Iterator[Callable[..., Sdk]]:
    made: list[Sdk] = []

    def make(meters: bool = False) -> Sdk:
        s = Sdk(meters)
        s.install()
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def traceparent_in(headers: Mapping[str, Any]) -> str:
    """The `traceparent` among `headers` (any case)."""
    value = next((v for k, v in headers.items() if k.lower() == "traceparent"), None)
    assert value is not None, f"no traceparent in {headers}"
    return str(value)


def sent_traceparent(backend: Any) -> str:
    return traceparent_in(backend.requests[-1][2])


def flags(traceparent: str) -> int:
    version, trace_id, span_id, flag = traceparent.split("-")
    assert version == "00" and len(trace_id) == 32 and len(span_id) == 16
    assert int(trace_id, 16) != 0 and int(span_id, 16) != 0
    return int(flag, 16)


def get_under(caller: Caller, url: str, traceparent: str | None) -> httpx.Response:
    """GET `url`, inside the remote context `traceparent` names (None: no context)."""
    ctx = propagate.extract({"traceparent": traceparent}) if traceparent else None
    return get_in_context(caller, url, ctx)


def test_an_unsampled_call_asks_once_records_nothing_and_carries_its_context(
        mesh: Callable[..., Caller], cluster: LoopbackCluster, sdk: Callable[..., Sdk]) -> None:
    s = sdk()
    caller = mesh(cluster.policy("users"))
    for i in range(3):
        r = caller.get(f"http://users/u/{i}?x=1")
        assert r.status_code == 200
        sent = traceparent_in(r.json()["headers"])
        assert flags(sent) & 0x01 == 0  # the sampled flag off: downstream keeps the decision
    # one decision per call (the call span's): no attempt span asked about
    assert s.sampler.asked == 3
    assert s.exporter.get_finished_spans() == ()
    # the sampler is shown the call span's attributes
    assert s.sampler.shown[0][semconv.URL_FULL] == "http://users/u/0?x=1"
    assert s.sampler.shown[0][semconv.SERVER_ADDRESS] == "users"


def test_an_unsampled_remote_parent_is_honoured_and_its_trace_continued(
        mesh: Callable[..., Caller], cluster: LoopbackCluster, sdk: Callable[..., Sdk]) -> None:
    s = sdk()
    caller = mesh(cluster.policy("users"))
    incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
    r = get_under(caller, "http://users/", incoming)
    sent = traceparent_in(r.json()["headers"])
    assert sent.split("-")[1] == "0af7651916cd43dd8448eb211c80319c"
    assert sent.split("-")[2] != "b7ad6b7169203331"  # the call's own span, not sampled
    assert flags(sent) & 0x01 == 0
    assert s.sampler.asked == 1 and s.exporter.get_finished_spans() == ()


def test_a_sampled_remote_parent_records_both_spans(
        mesh: Callable[..., Caller], cluster: LoopbackCluster, sdk: Callable[..., Sdk]) -> None:
    s = sdk()
    caller = mesh(cluster.policy("users"))
    incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    r = get_under(caller, "http://users/", incoming)
    spans = {sp.name: sp for sp in s.exporter.get_finished_spans()}
    assert set(spans) == {"GET users", "GET"}
    assert s.sampler.asked == 2  # the call span and its attempt span
    sent = traceparent_in(r.json()["headers"])
    assert flags(sent) & 0x01 == 1
    assert int(sent.split("-")[2], 16) == spans["GET"].context.span_id


def test_every_attempt_of_an_unsampled_call_carries_its_context(
        mesh: Callable[..., Caller], cluster: LoopbackCluster, sdk: Callable[..., Sdk]) -> None:
    s = sdk()
    cluster.set(0, status=503)
    caller = mesh(cluster.policy("users", balancer={"kind": "round-robin"}))
    for _ in range(3):  # round robin: some call meets the failing endpoint first
        assert caller.get("http://users/r").status_code == 200
    failing = cluster.backends[0]
    assert failing.requests, "no call was retried"
    retried = sent_traceparent(failing)
    # the retry that followed it went to another endpoint, with the same trace context
    others = [sent_traceparent(b) for b in cluster.backends[1:] if b.requests]
    assert retried.split("-")[1] in {t.split("-")[1] for t in others}
    assert all(flags(t) & 0x01 == 0 for t in [retried, *others])
    assert s.sampler.asked == 3 and s.exporter.get_finished_spans() == ()


def test_an_unsampled_call_still_records_its_duration(
        mesh: Callable[..., Caller], cluster: LoopbackCluster, sdk: Callable[..., Sdk]) -> None:
    s = sdk(meters=True)
    caller = mesh(cluster.policy("users"))
    caller.get("http://users/").read()
    (point,) = s.durations()
    assert point.count == 1 and point.attributes[semconv.SERVER_ADDRESS] == "users"
    assert s.sampler.asked == 1 and s.exporter.get_finished_spans() == ()


def test_a_provider_configured_after_the_transport_was_built_is_used(
        mesh: Callable[..., Caller], cluster: LoopbackCluster, sdk: Callable[..., Sdk]) -> None:
    telemetry.configure(None, None)
    caller = mesh(cluster.policy("users"))
    caller.get("http://users/").read()  # no SDK yet: nothing recorded, nothing sent
    seen = [h for b in cluster.backends for _m, _p, h, _b in b.requests]
    assert len(seen) == 1 and "traceparent" not in {k.lower() for k in seen[0]}
    s = sdk()
    incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    get_under(caller, "http://users/", incoming)
    assert {sp.name for sp in s.exporter.get_finished_spans()} == {"GET users", "GET"}
    s2 = sdk()  # and a later one replaces it
    get_under(caller, "http://users/", incoming)
    assert len(s2.exporter.get_finished_spans()) == 2
    assert len(s.exporter.get_finished_spans()) == 2
