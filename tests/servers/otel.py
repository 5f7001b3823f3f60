"""The OpenTelemetry SDK wired to in-memory exporters, installed with
`meshclient.telemetry.configure` (never the process-global providers); two propagators
that are not the default one."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from opentelemetry import context, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import CarrierT, Setter, TextMapPropagator, default_setter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from meshclient import telemetry
from tests.servers.caller import Caller


@dataclass
class Otel:
    tracer_provider: TracerProvider
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def wait_spans(self, n: int, kind: SpanKind | None = None,
                   timeout: float = 10.0) -> list[ReadableSpan]:
        """The finished spans (of `kind`) once there are `n`: a server ends its span just
        after sending the response, so the client may be faster."""
        deadline = time.monotonic() + timeout
        while True:
            spans = [s for s in self.spans() if kind is None or s.kind == kind]
            if len(spans) >= n or time.monotonic() > deadline:
                return spans
            time.sleep(0.005)  # polls, bounded by the deadline

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.name == name]

    def points(self, metric: str, **attrs: Any) -> list[Any]:
        """Data points of `metric` whose attributes include `attrs`."""
        data = self.reader.get_metrics_data()
        out = []
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name != metric:
                        continue
                    for p in m.data.data_points:
                        if all(p.attributes.get(k) == v for k, v in attrs.items()):
                            out.append(p)
        return out


@pytest.fixture(name="otel")
def otel_fixture() -> Iterator[Otel]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    telemetry.configure(provider, meters)
    try:
        yield Otel(provider, exporter, reader)
    finally:
        telemetry.configure(None, None)
        provider.shutdown()
        meters.shutdown()


class Custom(TextMapPropagator):
    """Writes the trace id alone, under a header of its own."""

    def extract(self, carrier: CarrierT, context: Context | None = None,
                getter: Any = None) -> Context:
        return context or Context()

    def inject(self, carrier: CarrierT, context: Context | None = None,
               setter: Setter[CarrierT] = default_setter) -> None:
        sc = trace.get_current_span(context).get_span_context()
        setter.set(carrier, "x-trace", f"{sc.trace_id:x}")

    @property
    def fields(self) -> set[str]:
        return {"X-Trace"}


class Louder(TraceContextTextMapPropagator):
    """The W3C propagator, and one header more."""

    def inject(self, carrier: CarrierT, context: Context | None = None,
               setter: Setter[CarrierT] = default_setter) -> None:
        super().inject(carrier, context, setter)
        setter.set(carrier, "x-louder", "1")


def get_in_context(caller: Caller, url: str, ctx: Context | None) -> httpx.Response:
    """GET `url` with `ctx` as the current context (None: the current one as it is), in
    either shell (the async portal's task does not see this thread's context: it is passed
    along)."""
    token = context.attach(ctx) if ctx is not None else None
    try:
        if caller.kind == "sync":
            return caller.get(url)
        current = context.get_current()

        async def get(client: httpx.AsyncClient) -> httpx.Response:
            inner = context.attach(current)
            try:
                return await client.get(url)
            finally:
                context.detach(inner)
        return caller.call(get)
    finally:
        if token is not None:
            context.detach(token)
