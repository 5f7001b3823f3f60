"""Spans for outbound calls: one span for the logical call, one CLIENT span per attempt.

The shells never call this module directly: `flow.instrument` drives a `Call` from the
actions the core yields. The shape, for any other driver:

```python
call = start_call(request, "users")        # None: nothing to record or propagate
call.attempt(send)                         # opens the attempt span, injects headers
call.outcome(outcome)                      # status or error of that attempt
call.end_attempt()                         # a discarded or failed attempt is over
call.hedge(primary, secondary)             # two racing attempts (both spans opened now)
call.hedge_outcome(winner, outcome, other, hedged)
on_close = call.finisher(done.on_close)    # ends the last attempt and the call at body close
call.fail(exc)                             # the call raised instead
```

The sampler is asked once per call, for the call's span. A call it does not sample records
no span at all (no attempt spans, no attributes beyond the ones the sampler is shown):
each attempt carries the call's trace context, with the sampled flag off, so downstream
services keep the trace and the decision (as a parent-based sampler expects). With no
meter either, such a call is `quiet`: the shells give it the untraced first attempt, its
headers written once (`inject`).

Attempt spans follow the HTTP semantic conventions (method, `url.full` with credentials
and sensitive query values redacted, `server.address` = the logical service, `network.peer.*` = the endpoint,
`http.response.status_code`, `error.type`, `http.request.resend_count` from the second
attempt). Trace context is injected with the global propagator into each attempt's
headers, except the fields the caller set on the logical request (those are kept).
A `Call` belongs to one request and is driven from one task or thread at a time.
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import httpx
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode

from . import providers
from . import semconv as sc
from ._attempt import Attempt
from ._otel_api import SHAPE
from ._propagation import Propagator, context_headers
from ._propagation import fields as propagation_fields
from .redact import redact_url

if TYPE_CHECKING:
    from .._core.actions import OnClose, Outcome, Send
    from .metrics import Instruments


# Where the API keeps the current context and the span in it (read on every request
# without an SDK), or None for an API that moved them (`_otel_api`: the public calls).
_SPAN_KEY = SHAPE.span_key
_CONTEXT = SHAPE.context_var


def url_without_credentials(url: httpx.URL) -> str:
    """`url.full` as recorded: userinfo and sensitive query values redacted (`redact.py`)."""
    return redact_url(url)


class _Attributes(Mapping[str, Any]):
    """The call span's attributes as the sampler is shown them, worked out when first
    read: a sampler that never reads them (a ratio of trace ids) costs nothing for them,
    and a sampled span's are the same dict the attempt spans copy."""

    __slots__ = ("_call",)

    def __init__(self, call: Call) -> None:
        self._call = call

    def __getitem__(self, key: str) -> Any:
        return self._call._base_attributes()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._call._base_attributes())

    def __len__(self) -> int:
        return len(self._call._base_attributes())

    def items(self) -> ItemsView[str, Any]:  # the SDK copies a sampled span's with it
        return self._call._base_attributes().items()


def start_call(request: httpx.Request, service: str | None) -> Call | None:
    """A `Call` for `request` (`service=None`: a passthrough request, traced as one CLIENT
    span), or None when there is nothing to record and no trace context to propagate."""
    p = providers  # the providers' answers while nothing they depend on changed
    s = p._state
    if (s[0] is p._tracer_override and s[1] is p._meter_override and p._HAS_GLOBALS
            and s[2] is p._TRACE_GLOBALS._TRACER_PROVIDER
            and s[3] is p._METRICS_GLOBALS._METER_PROVIDER and s[4] == len(p._ENV)):
        tracer, instruments = s[5], s[6]
    else:
        tracer, instruments = p.current()
    if tracer is None and instruments is None:
        # No SDK. Still forward a trace context we are inside of (an inbound request's),
        # so a downstream service with an SDK continues the trace.
        ctx = _CONTEXT.get() if _CONTEXT is not None else otel_context.get_current()
        if _SPAN_KEY is not None and ctx.get(_SPAN_KEY) is None:
            return None  # no span at all: nothing to propagate
        if not trace.get_current_span(ctx).get_span_context().is_valid:
            return None
    return Call(request, service, tracer, instruments)


class Call:
    """The telemetry of one logical request."""

    __slots__ = ("_attrs", "_carrier", "_context", "_hedged", "_instruments", "_open",
                 "_parent", "_preset", "_propagator", "_request", "_service", "_span",
                 "_status", "_tracer", "attempts", "quiet", "traced")

    def __init__(self, request: httpx.Request, service: str | None,
                 tracer: trace.Tracer | None, instruments: Instruments | None) -> None:
        self._request = request
        self._service = service if service is not None else request.url.host
        self._instruments = instruments
        self._preset: frozenset[str] | None = None  # worked out before the first write
        self._propagator: Propagator | None = None
        self._open: Attempt | None = None
        self._hedged: tuple[Attempt, Attempt] | None = None
        self._status: int | None = None
        self.attempts = 0
        self._span: trace.Span | None = None
        self._attrs: dict[str, Any] | None = None
        self._carrier: dict[str, str] | None = None  # the call's own context, injected
        parent = _CONTEXT.get() if _CONTEXT is not None else otel_context.get_current()
        self._parent = parent  # the caller's context: the call span's parent
        self._context: Context | None = parent  # None: with the call span, when asked
        if tracer is not None and service is not None:
            # the sampler's one decision for the whole call (a passthrough call is one
            # CLIENT span: its decision is made in `_start`)
            span = tracer.start_span(f"{request.method} {service}", parent,
                                     SpanKind.INTERNAL, _Attributes(self))
            self._span = span
            self._context = None
            if not span.is_recording():
                tracer = None  # not sampled: no attempt spans
        self._tracer = tracer
        #: Whether this call records spans (its own CLIENT span per attempt).
        self.traced = tracer is not None
        #: Whether this call records nothing (no span sampled, no meter): it only carries
        #: the trace context it runs in (`inject`).
        self.quiet = tracer is None and instruments is None

    @property
    def context(self) -> Context:
        """The context calls made on this request's behalf run in (the logical span's)."""
        ctx = self._context
        if ctx is None:
            assert self._span is not None
            ctx = self._context = trace.set_span_in_context(self._span, self._parent)
        return ctx

    def _fields(self) -> tuple[Propagator, frozenset[str]]:
        """The global propagator, and the fields of it the caller set on the logical
        request (kept on every attempt), worked out before the first attempt is written."""
        propagator, preset = self._propagator, self._preset
        if propagator is None or preset is None:
            propagator, preset = self._propagator, self._preset = propagation_fields(
                self._request.headers, self._parent)
        return propagator, preset

    def inject(self, headers: httpx.Headers) -> None:
        """Write the call's trace context into an attempt's `headers` (the propagator's
        fields the caller set on the logical request are kept). Worked out once per call."""
        propagator, preset = self._fields()
        carrier = self._carrier
        if carrier is None:
            span = self._span
            carrier = self._carrier = context_headers(
                span if span is not None else trace.get_current_span(self._parent),
                self._parent, propagator)
        for name, value in carrier.items():
            if name not in preset:
                headers[name] = value

    @property
    def span(self) -> trace.Span | None:
        """The logical call's span while it is open (None: not tracing, or ended)."""
        return self._span

    def __repr__(self) -> str:
        state = "open" if self._open is not None else "hedged" if self._hedged else "idle"
        return (f"<Call {self._request.method} {self._service} attempts={self.attempts} "
                f"status={self._status} attempt={state} traced={self._span is not None}>")

    def _base_attributes(self) -> dict[str, Any]:
        if self._attrs is None:
            url = self._request.url
            self._attrs = {sc.HTTP_REQUEST_METHOD: sc.method_attr(self._request.method),
                           sc.URL_FULL: url_without_credentials(url),
                           sc.SERVER_ADDRESS: self._service,
                           sc.SERVER_PORT: url.port or (443 if url.scheme == "https" else 80)}
        return self._attrs

    def _start(self, send: Send) -> Attempt:
        self.attempts += 1
        span = None
        tracer = self._tracer
        if tracer is not None:
            ctx = self.context
            attrs = dict(self._base_attributes())
            attrs[sc.NETWORK_PEER_ADDRESS] = send.endpoint.host
            attrs[sc.NETWORK_PEER_PORT] = send.endpoint.port
            if send.attempt > 1:
                attrs[sc.HTTP_REQUEST_RESEND_COUNT] = send.attempt - 1
            span = tracer.start_span(send.request.method, ctx, SpanKind.CLIENT, attrs)
            propagator, preset = self._fields()
            headers = send.request.headers
            # `_parent`, not `ctx`: the same context but for the span, which is `span`'s
            for name, value in context_headers(span, self._parent, propagator).items():
                if name not in preset:
                    headers[name] = value
        else:
            self.inject(send.request.headers)  # no span of its own: the call's context
        return Attempt(send, span, self._metric_attributes(send))

    def _metric_attributes(self, send: Send) -> dict[str, Any] | None:
        if self._instruments is None:
            return None
        # The conventions' required attributes (server.port among them); the resend count
        # belongs on the attempt span, not here (one series per count).
        url = self._request.url
        return {sc.HTTP_REQUEST_METHOD: sc.method_attr(self._request.method),
                sc.SERVER_ADDRESS: self._service,
                sc.SERVER_PORT: url.port or (443 if url.scheme == "https" else 80),
                sc.MESH_ENDPOINT: send.endpoint.key}

    def attempt(self, send: Send) -> None:
        """Attempt `send.attempt` is about to go out: open its span, inject its headers."""
        self.end_attempt()
        self._open = self._start(send)

    def outcome(self, outcome: Outcome) -> None:
        """What the open attempt produced (a failed attempt ends here)."""
        attempt = self._open
        if attempt is None:
            return
        attempt.observe(outcome.response, outcome.error)
        if outcome.response is not None:
            self._status = outcome.response.status_code
        else:
            self.end_attempt()

    def hedge(self, primary: Send, secondary: Send) -> None:
        """Two racing attempts. Both are prepared now (the secondary's headers must be
        ready before the shell sends it), so the secondary's span starts early by the
        hedge delay; if it is never sent, its span is dropped, not exported."""
        self.end_attempt()
        self._hedged = (self._start(primary), self._start(secondary))

    def hedge_outcome(self, winner: int, outcome: Outcome, other: Outcome | None,
                      hedged: bool) -> None:
        """How the race ended: the winner stays open like a single attempt; the loser ends
        now (with its outcome, or `error.type` = `cancelled` if it never answered)."""
        pair, self._hedged = self._hedged, None
        if pair is None:
            return
        if not hedged:
            self.attempts -= 1
            pair[1].drop()
        else:
            loser = pair[1 - winner]
            if other is not None:
                loser.observe(other.response, other.error)
                loser.end(self._instruments)
            else:
                loser.end(self._instruments, cancelled=True)
        self._open = pair[winner]
        self.outcome(outcome)

    def end_attempt(self, error: BaseException | None = None) -> None:
        """The open attempt (if any) is over: its span ends and its duration is recorded."""
        attempt, self._open = self._open, None
        if attempt is not None:
            attempt.end(self._instruments, error)

    def _end_call(self, error: BaseException | None) -> None:
        span = self._span
        if span is None:
            return
        self._span = None
        if self.traced:  # sampled (recording since it started: only this ends it)
            status = self._status
            err_type = sc.error_type(status, error) if error is not None or (
                status is not None and status >= 400) else None
            attrs: dict[str, Any] = {sc.MESH_ATTEMPTS: self.attempts}
            if status is not None:
                attrs[sc.HTTP_RESPONSE_STATUS_CODE] = status
            if err_type is not None:
                attrs[sc.ERROR_TYPE] = err_type
                span.set_status(Status(StatusCode.ERROR, err_type))
            span.set_attributes(attrs)  # one call: the SDK locks once
            if error is not None:
                span.record_exception(error)
        span.end()

    def finisher(self, on_close: OnClose | None) -> OnClose:
        """The callback for the returned response's body close: runs `on_close`, then ends
        the last attempt and the call."""

        def finish(error: BaseException | None) -> None:
            try:
                if on_close is not None:
                    on_close(error)
            finally:
                self.end_attempt(error)
                self._end_call(error)

        return finish

    def fail(self, error: BaseException | None) -> None:
        """The call ended without a response (the flow raised `error`, or was closed)."""
        pair, self._hedged = self._hedged, None
        for attempt in pair or ():
            attempt.end(self._instruments, error)
        self.end_attempt(error)
        self._end_call(error)
