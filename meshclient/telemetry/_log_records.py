"""An access-log line's values, captured on the request path (`OutboundEntry`,
`InboundRecord`: slots, no formatting), and the fields the writer makes of them: Envoy's
access-log operators in lower case, Envoy's response flags (`error_flags`), its start-time
format (`start_time`), and the path without the query's secrets (`safe_path`)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import httpx
from opentelemetry import trace
from opentelemetry.trace import Span

from .._core.report import ATTEMPTS_ATTR, EXTENSION
from ..errors import CheckDenied, CircuitOpen, DeadlineExceeded, NoEndpointsAvailable, RateLimited
from .redact import redact_query

if TYPE_CHECKING:
    from .access_log import AccessLog

#: One encoder for lines given as dicts and for odd values (`json.dumps` with options
#: builds a new one per call).
ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)
_escape: Callable[[str], str] = json.encoder.encode_basestring_ascii


def _j(value: object) -> str:
    """`value` as JSON (what `ENCODER` writes), quickly for the usual str, int and None."""
    if value is None:
        return "null"
    kind = type(value)
    if kind is str:
        return _escape(value)  # type: ignore[arg-type]
    if kind is int:
        return int.__repr__(value)
    return ENCODER.encode(value)


def _content_length(headers: httpx.Headers) -> int:
    try:
        return int(headers.get("content-length") or 0)
    except ValueError:  # a malformed header: count nothing rather than lose the line
        return 0


#: Envoy's response flags for the errors a mesh call can end with (first match wins).
_ERROR_FLAGS: tuple[tuple[type[BaseException], str], ...] = (
    (CircuitOpen, "UO"),  # upstream overflow: the breaker refused
    (NoEndpointsAvailable, "UH"),  # no healthy upstream
    (RateLimited, "RL"),  # rate limited (locally)
    (CheckDenied, "UAEX"),  # unauthorized by an external (or outbound) check
    (DeadlineExceeded, "UT"),
    (httpx.TimeoutException, "UT"),  # upstream request timeout
    (httpx.ConnectError, "UF"),  # upstream connection failure
    (httpx.TransportError, "UC"),  # upstream connection termination
)
#: Inbound rejections (`server.inbound.Rejection.reason`) -> (flags, response_code_details).
INBOUND_REASONS = {"rate": ("RL", "local_rate_limited"), "shed": ("OM", "overload_manager"),
                   "denied": ("-", "rbac_access_denied"),
                   "deadline": ("-", "deadline_exceeded")}


def error_flags(error: BaseException) -> str:
    """The response flags of a call that failed with `error` (`URX` added after retries)."""
    flag = next((f for kind, f in _ERROR_FLAGS if isinstance(error, kind)), "-")
    attempts = error.__dict__.get(ATTEMPTS_ATTR, 1) if hasattr(error, "__dict__") else 1
    if attempts > 1 and flag != "-":
        return f"{flag},URX"
    return "URX" if attempts > 1 else flag


_second: tuple[int, str] = (-1, "")


def start_time(ns: int) -> str:
    """ISO 8601 in UTC with milliseconds (Envoy's `%START_TIME%` default format)."""
    global _second
    seconds, rest = divmod(ns, 1_000_000_000)
    held = _second
    if held[0] != seconds:  # formatted once a second
        held = _second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
    return f"{held[1]}.{rest // 1_000_000:03d}Z"


def _trace_id(span: Span) -> str | None:
    ctx = span.get_span_context()
    return f"{ctx.trace_id:032x}" if ctx.is_valid else None


def safe_path(url: httpx.URL) -> str:
    """The path with the query's secrets redacted (`telemetry.redact`)."""
    query = url.query.decode("ascii", "replace")
    return url.path + (f"?{redact_query(query)}" if query else "")


class Record(Protocol):
    """A line's values captured on the request path; `line()` (on the writer thread) makes
    the JSON line from them, `fields()` the same as a dict."""

    def line(self) -> str: ...

    def fields(self) -> dict[str, Any]: ...

    def ended_ns(self) -> int:
        """When the request ended (the wall clock, ns)."""
        ...


class OutboundEntry:
    """One outbound call's line. The request path only captures values: at the start
    (`__init__`), and when the body closes (`closed`, or `on_close` as the body's callback)
    or the call fails (`failed`); the line is made from them on the writer thread."""

    __slots__ = ("_attempts", "_bytes", "_cluster", "_end", "_error_type", "_flags",
                 "_headers", "_host", "_log", "_method", "_response", "_span", "_start",
                 "_status", "_url")
    # set when the call ends (`closed` or `failed`)
    _end: int
    _status: int
    _flags: str
    _cluster: str | None
    _host: str | None
    _attempts: int
    _bytes: int
    _error_type: str | None

    def __init__(self, log: AccessLog, request: httpx.Request) -> None:
        self._log = log
        self._method = request.method
        self._url = request.url
        self._headers = request.headers  # its Content-Length is read by the writer
        self._start = time.perf_counter_ns()
        self._span = trace.get_current_span()  # its trace id is read by the writer
        self._response: httpx.Response | None = None

    def on_close(self, response: httpx.Response) -> Callable[[BaseException | None], None]:
        """The callback to run when `response`'s body closes (it writes the line)."""
        self._response = response
        return self._closed

    def _closed(self, error: BaseException | None) -> None:
        response, self._response = self._response, None
        if response is not None:
            self.closed(response, error)

    def closed(self, response: httpx.Response, error: BaseException | None) -> None:
        """The body of `response` was closed (`error`: the body's, if reading failed)."""
        self._end = time.perf_counter_ns()
        info = response.extensions.get(EXTENSION)
        if info is not None:
            self._cluster, self._host, self._attempts = info
        else:
            self._cluster = self._host = None
            self._attempts = 1
        self._status = response.status_code
        self._flags = (error_flags(error) if error is not None
                       else "URX" if self._attempts > 1 and self._status >= 500 else "-")
        self._bytes = response.num_bytes_downloaded
        self._error_type = None
        self._log.put(self)

    def failed(self, error: BaseException) -> None:
        """The call raised `error` (no response)."""
        self._end = time.perf_counter_ns()
        self._attempts = (error.__dict__.get(ATTEMPTS_ATTR, 1) if hasattr(error, "__dict__")
                          else 1)
        self._status = self._bytes = 0
        self._flags = error_flags(error)
        self._cluster, self._host = getattr(error, "service", None), None
        self._error_type = type(error).__name__
        self._log.put(self)

    @property
    def span(self) -> Span:
        """The span current when the call started."""
        return self._span

    def ended_ns(self) -> int:
        return time.time_ns() - (time.perf_counter_ns() - self._end)

    def line(self) -> str:
        """The JSON line (without its newline)."""
        start, url, error_type = self._start, self._url, self._error_type
        started_ns = time.time_ns() - (time.perf_counter_ns() - start)  # the wall clock then
        escape = _escape  # the ints and non-null strings here are ours: written directly
        return (f'{{"start_time":"{start_time(started_ns)}","direction":"outbound",'
                f'"method":{escape(self._method)},"path":{escape(safe_path(url))},'
                f'"authority":{escape(url.host)},"duration":{(self._end - start) // 1_000_000},'
                f'"bytes_sent":{_content_length(self._headers)},'
                f'"trace_id":{_j(_trace_id(self._span))},"response_code":{self._status},'
                f'"response_flags":{escape(self._flags)},'
                f'"upstream_cluster":{_j(self._cluster)},"upstream_host":{_j(self._host)},'
                f'"upstream_request_attempt_count":{_j(self._attempts)},'
                f'"bytes_received":{self._bytes}'
                + ("}" if error_type is None else f',"error_type":{escape(error_type)}}}'))

    def fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = json.loads(self.line())
        return fields


class InboundRecord:
    """An inbound line's values (see `inbound_entry`)."""

    __slots__ = ("_values",)

    def __init__(self, values: tuple[Any, ...]) -> None:
        self._values = values

    def ended_ns(self) -> int:
        start_ns, duration_ns = self._values[:2]
        return int(start_ns + duration_ns)

    def line(self) -> str:
        """The JSON line (without its newline)."""
        (start_ns, duration_ns, method, path, status, reason, principal, address,
         bytes_received, trace_id, route) = self._values
        flags, details = INBOUND_REASONS.get(reason or "", ("-", "via_upstream"))
        return (f'{{"start_time":"{start_time(start_ns)}","direction":"inbound",'
                f'"method":{_j(method)},"path":{_j(path)},"route":{_j(route)},'
                f'"response_code":{_j(status)},"response_flags":"{flags}",'
                f'"response_code_details":"{details}",'
                f'"duration":{duration_ns // 1_000_000},'
                f'"bytes_received":{_j(bytes_received)},'
                f'"downstream_remote_address":{_j(address)},'
                f'"downstream_peer_principal":{_j(principal)},"trace_id":{_j(trace_id)}}}')

    def fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = json.loads(self.line())
        return fields


def inbound_entry(*, start_ns: int, duration_ns: int, method: str, path: str | None,
                  status: int, reason: str | None, principal: str | None,
                  address: str | None, bytes_received: int, trace_id: str | None,
                  route: str | None) -> InboundRecord:
    """An inbound line (`reason`: the rejection's, or None when the handler ran), for
    `AccessLog.write`; its fields are made on the writer thread."""
    return InboundRecord((start_ns, duration_ns, method, path, status, reason, principal,
                          address, bytes_received, trace_id, route))
