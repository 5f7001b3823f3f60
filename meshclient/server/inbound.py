"""What every inbound entry point (decorator, ASGI, WSGI) does around a handler.

The decisions are pure (`admission`): an expired deadline is answered 504 without running
the handler; a full concurrency limit is answered 503 with `Retry-After`; then the shared
`security.inbound.InboundGate` (so the decorator and both middlewares enforce the same
rules): an invalid end-user token is answered 401 with `WWW-Authenticate`, a check's denial
with the check's answer, a caller the `authorization` section denies 403 with no body, and
one over the policy's `inbound_limits` 429 with `Retry-After`. `enter()` runs the gate in
the calling thread, `enter_async()` from a task. `ServerScope`
does the rest: extracts the trace context with the global propagator, opens a SERVER
span, sets `meshclient.context.inbound` (deadline, attempt) for the handler's outbound
calls, and records `http.server.request.duration` when the handler is done.

`enter()` and `exit()` must run in the same context (same thread call, same task).
"""

from __future__ import annotations

import contextvars
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from .._clock import CLOCK
from .._types import Clock
from ..context import (
    RETRIES_SPENT_HEADER,
    Inbound,
    RequestAuth,
    inbound,
    parse_inbound,
    request_auth,
    spent_mark,
)
from ..security.authz import Caller
from ..security.gate import Admitted, InboundRequest, Refused
from ..security.limitkey import Identity, identity
from ..telemetry import access_log, providers
from ..telemetry import semconv as sc
from .shedding import ConcurrencyLimit

if TYPE_CHECKING:
    from ..security.inbound import InboundGate
    from ..telemetry.access_log import AccessLog
    from ..telemetry.metrics import Instruments


@dataclass(frozen=True, slots=True)
class Rejection:
    """An answer given instead of running the handler."""

    status: int
    reason: str  # "deadline" | "shed" | "denied" | "unauthenticated" | "check" | "rate"
    headers: tuple[tuple[str, str], ...] = ()
    detail: bytes | None = None  # the body, when the gate or a check chose one

    @property
    def body(self) -> bytes:
        if self.detail is not None:
            return self.detail
        if self.reason == "denied":
            return b""  # no detail for a denied caller
        if self.reason == "rate":
            return b"rate limit exceeded\n"
        return (b"deadline exceeded before the handler ran\n" if self.reason == "deadline"
                else b"overloaded: concurrency limit reached\n")


def deadline_expired(request: Inbound, now_ns: int) -> bool:
    return request.deadline_ns is not None and request.deadline_ns <= now_ns


def admission(request: Inbound, now_ns: int, limit: ConcurrencyLimit | None) -> Rejection | None:
    """None to run the handler (a permit of `limit` is then held), else the rejection."""
    if deadline_expired(request, now_ns):
        return Rejection(504, "deadline")
    if limit is not None and not limit.try_acquire():
        retry_after = str(max(0, math.ceil(limit.retry_after_s)))
        return Rejection(503, "shed", (("retry-after", retry_after),))
    return None


def status_of(result: Any, default: int = 200) -> int:
    """The status code of a handler's return value, where it says one."""
    code = getattr(result, "status_code", None)
    if isinstance(code, int):
        return code
    if isinstance(result, tuple) and len(result) >= 2 and isinstance(result[1], int):
        return result[1]  # Flask's (body, status[, headers])
    return default


def trace_context(headers: Mapping[str, str]) -> otel_context.Context:
    """The caller's trace context, by the global propagator; a header it cannot read is
    absent (a new trace starts) rather than an error."""
    try:
        return propagate.extract(headers)
    except Exception:  # a third-party propagator's parser: malformed means absent
        return otel_context.Context()


def marked_headers(request: Inbound, status: int,
                   headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]] | None:
    """An answer's headers with `RETRIES_SPENT_HEADER` set (`context.spent_mark`), or None
    to leave them as they are. Every inbound entry point marks its answer with this."""
    if not request.spent:  # the usual answer: no outbound call gave up after retrying
        return None
    items = list(headers)
    forwarded = next((v for k, v in items if k.lower() == RETRIES_SPENT_HEADER), None)
    mark = spent_mark(request, status, forwarded)
    if mark is None:
        return None
    return [(k, v) for k, v in items if k.lower() != RETRIES_SPENT_HEADER] + [
        (RETRIES_SPENT_HEADER, mark)]


class ServerScope:
    """One inbound request, from `enter()` to `exit()`. `headers` has lower-case keys."""

    __slots__ = ("_address", "_auth_token", "_clock", "_gate", "_headers", "_identity",
                 "_instruments", "_limit", "_local_ip", "_log", "_method", "_otel_token", "_path",
                 "_permit",
                 "_port", "_query", "_reason", "_route", "_scheme", "_span", "_start", "_tls",
                 "_token", "admitted", "caller", "inbound")

    def __init__(self, headers: Mapping[str, str], method: str, path: str | None = None, *,
                 route: str | None = None, scheme: str = "http",
                 limit: ConcurrencyLimit | None = None, clock: Clock = CLOCK,
                 gate: InboundGate | None = None, address: str | None = None,
                 tls: Mapping[str, Any] | None = None, query: str = "",
                 port: int | None = None, local_ip: str | None = None) -> None:
        self._headers = headers
        self._query = query
        self._port = port
        self._local_ip = local_ip
        self._auth_token: contextvars.Token[RequestAuth | None] | None = None
        self.admitted: Admitted | None = None  # the gate's header edits, once admitted
        self._method = method
        self._path = path
        self._route = route
        self._scheme = scheme
        self._limit = limit
        self._clock = clock
        self._gate = gate
        self._address = address
        self._tls = tls
        self.caller: Caller | None = None  # who called, once `enter()` admitted the request
        self._span: trace.Span | None = None
        self._otel_token: object | None = None
        self._token: contextvars.Token[Inbound | None] | None = None
        self._permit = False
        self._identity: contextvars.Token[Identity | None] | None = None
        self._log: AccessLog | None = None  # sampled for the access log
        self._reason: str | None = None
        self._start = 0
        self._instruments: Instruments | None = None
        self.inbound = Inbound()

    def __repr__(self) -> str:
        state = ("admitted" if self.caller is not None or self._token is not None
                 else "entered" if self._start else "new")
        caller = self.caller.label if self.caller is not None else None
        return (f"<ServerScope {self._method} {self._path} {state} caller={caller!r} "
                f"permit={self._permit} limit={self._limit!r} {self.inbound!r}>")

    def enter(self) -> Rejection | None:
        """Set up the request's context; None to run the handler, else a rejection to send
        (call `exit(rejection.status)` after sending it). The gate runs in this thread."""
        rejection = self._begin()
        if rejection is None and self._gate is not None and not self._gate.idle:
            rejection = self._admit(self._gate.decide_sync(self._request()))
        return self._counted(self._limited() if rejection is None else rejection)

    async def enter_async(self) -> Rejection | None:
        """`enter()` from a task: JWKS fetches and checks are awaited."""
        rejection = self._begin()
        if rejection is None and self._gate is not None and not self._gate.idle:
            rejection = self._admit(await self._gate.decide_async(self._request()))
        return self._counted(self._limited() if rejection is None else rejection)

    def _request(self) -> InboundRequest:
        return InboundRequest(self._headers, self._method, self._path or "/", self._query,
                              self._address, self._tls, self._port, self._local_ip)

    def _admit(self, outcome: Admitted | Refused) -> Rejection | None:
        if isinstance(outcome, Refused):
            detail = outcome.body if outcome.reason != "denied" else None
            return Rejection(outcome.status, outcome.reason, outcome.headers, detail)
        self.caller = outcome.caller
        self.admitted = outcome
        if outcome.auth is not None:
            self._auth_token = request_auth.set(outcome.auth)
        return None

    def _counted(self, rejection: Rejection | None) -> Rejection | None:
        if rejection is not None:
            self._reason = rejection.reason  # for the access log
            if self._instruments is not None:
                self._instruments.server_rejections.add(
                    1, {"meshclient.reason": rejection.reason})
        return rejection

    def _begin(self) -> Rejection | None:
        self._start = time.perf_counter_ns()
        self._instruments = providers.instruments()  # the same provider from end to end
        log = access_log.current()
        if log is not None and log.sampled():
            self._log = log
        self.inbound = parse_inbound(self._headers, self._clock.now_ns())
        ctx = trace_context(self._headers)
        tracer = providers.tracer()
        if tracer is not None:
            name = f"{self._method} {self._route}" if self._route else self._method
            span = tracer.start_span(name, ctx, SpanKind.SERVER)
            if span.is_recording():
                attrs: dict[str, Any] = {sc.HTTP_REQUEST_METHOD: sc.method_attr(self._method),
                                         sc.URL_SCHEME: self._scheme}
                if self._path is not None:
                    attrs[sc.URL_PATH] = self._path
                if self._route:
                    attrs[sc.HTTP_ROUTE] = self._route
                span.set_attributes(attrs)
            self._span = span
            ctx = trace.set_span_in_context(span, ctx)
        self._otel_token = otel_context.attach(ctx)
        self._token = inbound.set(self.inbound)
        rejection = admission(self.inbound, self._clock.now_ns(), self._limit)
        self._permit = rejection is None and self._limit is not None
        if rejection is None and self._gate is not None:
            self.caller = Caller(None, "none", self._address)
        return rejection

    def _limited(self) -> Rejection | None:
        """After admission, the inbound rate limit (`inbound_limits`): a 429 with
        `Retry-After`, or None. The caller's principal and verified claims are kept for the
        handler's outbound calls (keyed limits there)."""
        if self._gate is None or self.caller is None:
            return None
        auth = self.admitted.auth if self.admitted is not None else None
        claims = auth.claims if auth is not None else {}
        principal = self.caller.identity
        retry_after = self._gate.limits.admit(
            headers=self._headers, address=self._address, principal=principal,
            claims=claims, route=self._route or self._path)
        if retry_after is not None:
            return Rejection(429, "rate", (("retry-after", str(retry_after)),))
        if principal is not None or claims:
            self._identity = identity.set(Identity(principal, claims))
        return None

    def _logged(self, log: AccessLog, status: int, route: str | None) -> None:
        """The request's access-log line (once)."""
        self._log = None
        duration = time.perf_counter_ns() - self._start
        span = self._span
        ctx = span.get_span_context() if span is not None else None
        log.write(access_log.inbound_entry(
            start_ns=time.time_ns() - duration, duration_ns=duration, method=self._method,
            path=self._path, status=status, reason=self._reason,
            principal=self.caller.identity if self.caller is not None else None,
            address=self._address, trace_id=(f"{ctx.trace_id:032x}" if ctx is not None
                                             and ctx.is_valid else None),
            bytes_received=_length(self._headers), route=route))

    def exit(self, status: int | None, error: BaseException | None = None, *,
             route: str | None = None) -> None:
        """The handler finished (or was never run); `status` None means unknown (500)."""
        if self._permit and self._limit is not None:
            self._permit = False
            self._limit.release()
        status = 500 if status is None else status
        err_type = sc.error_type(None, error) or (str(status) if status >= 500 else None)
        route = route or self._route
        instruments = self._instruments
        if instruments is not None:
            attrs: dict[str, Any] = {sc.HTTP_REQUEST_METHOD: sc.method_attr(self._method),
                                     sc.URL_SCHEME: self._scheme,
                                     sc.HTTP_RESPONSE_STATUS_CODE: status}
            if route:
                attrs[sc.HTTP_ROUTE] = route
            if err_type is not None:
                attrs[sc.ERROR_TYPE] = err_type
            instruments.server_duration.record(
                (time.perf_counter_ns() - self._start) / 1e9, attrs)
        if self._log is not None:
            self._logged(self._log, status, route)
        span = self._span
        if span is not None:
            self._span = None
            if span.is_recording():
                span.set_attribute(sc.HTTP_RESPONSE_STATUS_CODE, status)
                if route and not self._route:
                    span.set_attribute(sc.HTTP_ROUTE, route)
                    span.update_name(f"{self._method} {route}")
                if err_type is not None:
                    span.set_attribute(sc.ERROR_TYPE, err_type)
                    span.set_status(Status(StatusCode.ERROR, err_type))
                if error is not None:
                    span.record_exception(error)
            span.end()
        if self._auth_token is not None:
            request_auth.reset(self._auth_token)
            self._auth_token = None
        if self._token is not None:
            inbound.reset(self._token)
            self._token = None
        if self._identity is not None:
            identity.reset(self._identity)
            self._identity = None
        if self._otel_token is not None:
            otel_context.detach(self._otel_token)  # type: ignore[arg-type]
            self._otel_token = None


def _length(headers: Mapping[str, str]) -> int:
    value = headers.get("content-length", "")
    return int(value) if value.isdigit() and len(value) < 16 else 0
