"""The trace context an attempt carries, and which propagation fields (`traceparent`, …) on
a request the caller set on purpose (an attempt's context is written around them).

`context_headers` is what `propagate.inject` writes for a span. While the global
propagator is provably OpenTelemetry's default (W3C trace context, alone or in a composite
with W3C baggage, those exact classes) and the context holds no baggage, it formats the
`traceparent` (and `tracestate`) itself, as `TraceContextTextMapPropagator.inject` does,
without the composite's calls; anything else goes through the propagator's own `inject`.
"""

from __future__ import annotations

from typing import Any

import httpx
from opentelemetry import propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.trace.span import DEFAULT_TRACE_STATE, SpanContext, TraceFlags, TraceState

from ._otel_api import SHAPE

_BAGGAGE_KEY: str = SHAPE.baggage_key or ""  # "": not found (then never `fast`)
_DEFAULT_PARTS = frozenset({TraceContextTextMapPropagator, W3CBaggagePropagator})
_INVALID = trace.INVALID_SPAN_CONTEXT
_NO_STATE = DEFAULT_TRACE_STATE


def _unpacks() -> bool:
    """Whether a `SpanContext` is the tuple its type declares, (trace_id, span_id,
    is_remote, trace_flags, trace_state, is_valid): `context_headers` unpacks it instead
    of reading five properties. Checked once; if not, no fast path."""
    state = TraceState([("k", "v")])
    sc = SpanContext(0xA, 0xB, False, TraceFlags(1), state)
    try:
        trace_id, span_id, _remote, flags, got_state, _valid = sc
    except (TypeError, ValueError):
        return False
    return (trace_id, span_id, flags, got_state) == (sc.trace_id, sc.span_id,
                                                     sc.trace_flags, sc.trace_state)


_UNPACKS = _unpacks()


def is_w3c_default(propagator: object) -> bool:
    """Whether `propagator` writes exactly what the W3C trace-context propagator writes
    when the context has no baggage: that propagator itself, or a composite of it and
    (optionally) the W3C baggage propagator, exact classes, each once."""
    if type(propagator) is TraceContextTextMapPropagator:
        return True
    if type(propagator) is not CompositePropagator:
        return False
    parts = getattr(propagator, "_propagators", None)  # private: checked, else not sure
    if not isinstance(parts, (list, tuple)):
        return False
    kinds = [type(p) for p in parts]
    return (TraceContextTextMapPropagator in kinds and len(set(kinds)) == len(kinds)
            and _DEFAULT_PARTS.issuperset(kinds))


class Propagator:
    """What meshclient needs to know about one global propagator, worked out once."""

    __slots__ = ("fast", "fields", "propagator")

    def __init__(self, propagator: Any) -> None:
        self.propagator = propagator
        #: its fields, lowercased, by their bytes (request headers are read raw)
        self.fields = {f.lower().encode(): f.lower() for f in propagator.fields}
        #: `context_headers` may format the W3C headers itself (`is_w3c_default`)
        self.fast = bool(_BAGGAGE_KEY) and _UNPACKS and is_w3c_default(propagator)


_current = Propagator(propagate.get_global_textmap())


def fields(headers: httpx.Headers, context: Context) -> tuple[Propagator, frozenset[str]]:
    """The global propagator, and the fields of it set on `headers` on purpose (not a
    `traceparent` naming the current span in `context`: see `names_current_span`)."""
    global _current
    propagator = propagate.get_global_textmap()
    seen = _current
    if seen.propagator is not propagator:
        seen = _current = Propagator(propagator)
    preset = preset_fields(headers, seen)
    if preset and names_current_span(headers, context):
        preset = frozenset()
    return seen, preset


def context_headers(span: trace.Span, parent: Context, propagator: Propagator
                    ) -> dict[str, str]:
    """The fields `propagator` (the global one when the call began) writes for `span` as
    the current span in `parent` (a context without it)."""
    if propagator.fast and not parent.get(_BAGGAGE_KEY):
        sc = span.get_span_context()
        if sc == _INVALID:
            return {}
        trace_id, span_id, _remote, flags, state, _valid = sc  # see `_unpacks`
        # "%" formatting: the same text as the propagator's f-string, in half the time
        out = {"traceparent": "00-%032x-%016x-%02x" % (trace_id, span_id, flags)}  # noqa: UP031
        if state is not _NO_STATE and state:
            out["tracestate"] = state.to_header()
        return out
    carrier: dict[str, str] = {}
    propagator.propagator.inject(carrier, trace.set_span_in_context(span, parent))
    return carrier


def preset_fields(headers: httpx.Headers, propagator: Propagator) -> frozenset[str]:
    """The propagation fields (e.g. `traceparent`) set on `headers`."""
    fields = propagator.fields
    found: list[str] = []
    for raw, _ in headers.raw:
        name = fields.get(raw.lower())
        if name is not None:
            found.append(name)
    return frozenset(found)


def names_current_span(headers: httpx.Headers, context: Context) -> bool:
    """Whether the request's `traceparent` names the current span in `context`: written
    by an instrumentation around this transport (`HTTPXClientInstrumentor.instrument_client`
    on a mesh client), not set on purpose; then each attempt writes its own context, a
    child of that span, like a request with no trace headers."""
    value = headers.get("traceparent")
    if value is None:
        return False
    current = trace.get_current_span(context).get_span_context()
    if not current.is_valid:
        return False
    parts = value.split("-")
    return len(parts) >= 3 and parts[1] == format(current.trace_id, "032x") and \
        parts[2] == format(current.span_id, "016x")
