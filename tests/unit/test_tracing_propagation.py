"""The trace-context headers an attempt carries, without I/O: the W3C fast path writes
what OpenTelemetry's own propagators write (property tests against them), and is taken
only for the default propagators."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import baggage, propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from meshclient.telemetry import _propagation
from meshclient.telemetry._propagation import Propagator, context_headers, is_w3c_default
from tests.servers.otel import Custom, Louder

DEFAULT = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])

keys = st.from_regex(r"[a-z][a-z0-9_\-*/]{0,20}", fullmatch=True)
values = st.from_regex(r"[!-+\--<>-~]{1,20}", fullmatch=True)  # printable, no ',' or '='
span_contexts = st.builds(
    SpanContext,
    trace_id=st.integers(0, 2**128 - 1), span_id=st.integers(0, 2**64 - 1),
    is_remote=st.booleans(), trace_flags=st.integers(0, 255).map(TraceFlags),
    trace_state=st.lists(st.tuples(keys, values), max_size=4,
                         unique_by=lambda kv: kv[0]).map(TraceState))
baggages = st.dictionaries(st.from_regex(r"[a-z]{1,8}", fullmatch=True),
                           st.from_regex(r"[a-z0-9]{0,8}", fullmatch=True), max_size=3)


def injected(propagator: TextMapPropagator, sc: SpanContext, parent: Context) -> dict[str, str]:
    carrier: dict[str, str] = {}
    propagator.inject(carrier, trace.set_span_in_context(NonRecordingSpan(sc), parent))
    return carrier


def with_baggage(entries: dict[str, str]) -> Context:
    ctx = Context()
    for name, value in entries.items():
        ctx = baggage.set_baggage(name, value, ctx)
    return ctx


@settings(max_examples=300, deadline=None)
@given(span_contexts)
def test_the_fast_path_writes_what_the_trace_context_propagator_writes(sc: SpanContext) -> None:
    fast = Propagator(DEFAULT)
    assert fast.fast
    assert context_headers(NonRecordingSpan(sc), Context(), fast) == \
        injected(TraceContextTextMapPropagator(), sc, Context())


@settings(max_examples=100, deadline=None)
@given(span_contexts, baggages)
def test_with_baggage_the_headers_are_the_default_propagators(sc: SpanContext,
                                                             entries: dict[str, str]) -> None:
    parent = with_baggage(entries)
    assert context_headers(NonRecordingSpan(sc), parent, Propagator(DEFAULT)) == \
        injected(DEFAULT, sc, parent)


@pytest.mark.parametrize(("propagator", "default"), [
    (DEFAULT, True),
    (TraceContextTextMapPropagator(), True),
    (CompositePropagator([W3CBaggagePropagator(), TraceContextTextMapPropagator()]), True),
    (CompositePropagator([TraceContextTextMapPropagator()]), True),
    (CompositePropagator([W3CBaggagePropagator()]), False),
    (CompositePropagator([]), False),
    (CompositePropagator([TraceContextTextMapPropagator(), Custom()]), False),
    (CompositePropagator([TraceContextTextMapPropagator(), TraceContextTextMapPropagator()]),
     False),
    (CompositePropagator([Louder(), W3CBaggagePropagator()]), False),
    (Louder(), False),
    (Custom(), False),
])
def test_only_the_default_propagators_take_the_fast_path(propagator: Any,
                                                        default: bool) -> None:
    assert is_w3c_default(propagator) is default
    sc = SpanContext(0xA1, 0xB2, False, TraceFlags(1))
    parent = with_baggage({"user": "alice"}) if default else Context()
    # whichever path: what the propagator itself writes
    assert context_headers(NonRecordingSpan(sc), parent, Propagator(propagator)) == \
        injected(propagator, sc, parent)


def test_the_preset_fields_are_found_in_any_case() -> None:
    headers = httpx.Headers([("TraceParent", "x"), ("Baggage", "a=1"), ("x-other", "1")])
    propagator, preset = _propagation.fields(headers, Context())
    assert propagator.propagator is propagate.get_global_textmap()
    assert preset == {"traceparent", "baggage"}
    assert _propagation.fields(httpx.Headers({"accept": "*/*"}), Context())[1] == frozenset()


def test_a_traceparent_naming_the_current_span_is_not_preset() -> None:
    sc = SpanContext(0xA1, 0xB2, False, TraceFlags(1))
    ctx = trace.set_span_in_context(NonRecordingSpan(sc))
    mine = httpx.Headers({"traceparent": f"00-{0xA1:032x}-{0xB2:016x}-01"})
    other = httpx.Headers({"traceparent": f"00-{0xA1:032x}-{0xB3:016x}-01"})
    assert _propagation.fields(mine, ctx)[1] == frozenset()
    assert _propagation.fields(other, ctx)[1] == {"traceparent"}
