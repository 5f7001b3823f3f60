"""Which propagation fields (`traceparent`, …) on a request the caller set on purpose:
an attempt's trace context is written around them.
"""

from __future__ import annotations

import httpx
from opentelemetry import propagate, trace

_fields_cache: tuple[object, dict[bytes, str]] = (None, {})


def preset_fields(headers: httpx.Headers) -> frozenset[str]:
    """The propagation fields (e.g. `traceparent`) the caller set on purpose."""
    global _fields_cache
    propagator = propagate.get_global_textmap()
    cached = _fields_cache
    if cached[0] is not propagator:
        cached = _fields_cache = (propagator, {f.lower().encode(): f.lower()
                                               for f in propagator.fields})
    fields = cached[1]
    found = [fields[k] for k in (raw.lower() for raw, _ in headers.raw) if k in fields]
    return frozenset(found) if found else frozenset()


def names_current_span(headers: httpx.Headers) -> bool:
    """Whether the request's `traceparent` names the current span: written by an
    instrumentation around this transport (`HTTPXClientInstrumentor.instrument_client` on
    a mesh client), not set on purpose; then each attempt writes its own context, a child
    of that span, like a request with no trace headers."""
    value = headers.get("traceparent")
    if value is None:
        return False
    current = trace.get_current_span().get_span_context()
    if not current.is_valid:
        return False
    parts = value.split("-")
    return len(parts) >= 3 and parts[1] == format(current.trace_id, "032x") and \
        parts[2] == format(current.span_id, "016x")
