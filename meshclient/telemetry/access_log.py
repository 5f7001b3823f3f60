"""Access logs: one JSON line per inbound and per outbound request, as Envoy's access log
(and Mixer's log entries), when `MESHCLIENT_ACCESS_LOG` names `stdout`, `stderr` or a file.

Field names are Envoy's access-log operators in lower case (`%RESPONSE_FLAGS%` is
`response_flags`); where Envoy has none, OpenTelemetry's attribute names. The table is in
docs/access-log.md. An outbound line is written when the response body is closed (Envoy
logs at stream end) or the call fails; an inbound one when the handler is done or the
request was rejected.

Lines are written with one `os.write` each (a file opened with `O_APPEND`), so lines from
threads and processes sharing a file never interleave. With `MESHCLIENT_ACCESS_LOG_OTEL=1`
each entry is also emitted as an OpenTelemetry log record through the global logger
provider (the OTel Logs API; nothing is emitted if it is unavailable).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from opentelemetry import trace

from .._clock import RNG
from .._core.report import ATTEMPTS_ATTR, EXTENSION
from .._types import Rng
from ..errors import CheckDenied, CircuitOpen, DeadlineExceeded, NoEndpointsAvailable, RateLimited
from ..policy import AccessLogSettings, access_log_from_env
from .redact import redact_query

logger = logging.getLogger("meshclient.telemetry")
#: One encoder for every line (`json.dumps` with options builds a new one per call).
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)

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


def _trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return f"{ctx.trace_id:032x}" if ctx.is_valid else None


def safe_path(url: httpx.URL) -> str:
    """The path with the query's secrets redacted (`telemetry.redact`)."""
    query = url.query.decode("ascii", "replace")
    return url.path + (f"?{redact_query(query)}" if query else "")


def _sink(destination: str) -> Callable[[bytes], object]:
    if destination in ("stdout", "stderr"):
        def write(line: bytes) -> None:
            stream = sys.stdout if destination == "stdout" else sys.stderr
            stream.write(line.decode())
            stream.flush()

        return write
    fd = os.open(destination, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    return lambda line: os.write(fd, line)


class AccessLog:
    """Writes entries to `destination` (sampled). Thread- and task-safe."""

    def __init__(self, settings: AccessLogSettings, rng: Rng = RNG) -> None:
        if settings.destination is None:
            raise ValueError("an access log needs a destination")
        self.settings = settings
        self._write = _sink(settings.destination)
        self._sample = settings.sample
        self._rng = rng
        self._otel: Any = _otel_logger() if settings.otel else None
        self._lock = threading.Lock()  # stdout/stderr: a line is written and flushed whole
        self._locked = settings.destination in ("stdout", "stderr")

    def sampled(self) -> bool:
        return self._sample >= 1.0 or self._rng.random() < self._sample

    def write(self, entry: dict[str, Any]) -> None:
        line = (_ENCODER.encode(entry) + "\n").encode()
        try:
            if self._locked:
                with self._lock:
                    self._write(line)
            else:  # one os.write on an O_APPEND file: whole lines, no lock needed
                self._write(line)
        except OSError as exc:  # a full disk must not fail requests
            logger.warning("access log %s: %s", self.settings.destination, exc)
        if self._otel is not None:
            _emit(self._otel, entry)

    def outbound(self, request: httpx.Request) -> OutboundEntry | None:
        """Start an outbound entry (None: not sampled)."""
        return OutboundEntry(self, request) if self.sampled() else None


class OutboundEntry:
    """One outbound call's line, written by `answered` (when the body closes) or
    `failed`."""

    __slots__ = ("_log", "_request", "_start", "_start_ns", "_trace_id")

    def __init__(self, log: AccessLog, request: httpx.Request) -> None:
        self._log = log
        self._request = request
        self._start_ns = time.time_ns()
        self._start = time.perf_counter_ns()
        self._trace_id = _trace_id()

    def _entry(self) -> dict[str, Any]:
        request = self._request
        return {"start_time": start_time(self._start_ns), "direction": "outbound",
                "method": request.method, "path": safe_path(request.url),
                "authority": request.url.host,
                "duration": (time.perf_counter_ns() - self._start) // 1_000_000,
                "bytes_sent": int(request.headers.get("content-length") or 0),
                "trace_id": self._trace_id}

    def closed(self, response: httpx.Response, error: BaseException | None) -> None:
        info = response.extensions.get(EXTENSION)
        attempts = info.attempts if info is not None else 1
        flags = "URX" if attempts > 1 and response.status_code >= 500 else "-"
        if error is not None:
            flags = error_flags(error)
        entry = self._entry()
        entry.update(response_code=response.status_code, response_flags=flags,
                     upstream_cluster=info.service if info is not None else None,
                     upstream_host=info.endpoint if info is not None else None,
                     upstream_request_attempt_count=attempts,
                     bytes_received=response.num_bytes_downloaded)
        self._log.write(entry)

    def failed(self, error: BaseException) -> None:
        entry = self._entry()
        attempts = error.__dict__.get(ATTEMPTS_ATTR, 1) if hasattr(error, "__dict__") else 1
        entry.update(response_code=0, response_flags=error_flags(error),
                     upstream_cluster=getattr(error, "service", None), upstream_host=None,
                     upstream_request_attempt_count=attempts, bytes_received=0,
                     error_type=type(error).__name__)
        self._log.write(entry)


def inbound_entry(*, start_ns: int, duration_ns: int, method: str, path: str | None,
                  status: int, reason: str | None, principal: str | None,
                  address: str | None, bytes_received: int, trace_id: str | None,
                  route: str | None) -> dict[str, Any]:
    """An inbound line (`reason`: the rejection's, or None when the handler ran)."""
    flags, details = INBOUND_REASONS.get(reason or "", ("-", "via_upstream"))
    return {"start_time": start_time(start_ns), "direction": "inbound", "method": method,
            "path": path, "route": route, "response_code": status, "response_flags": flags,
            "response_code_details": details, "duration": duration_ns // 1_000_000,
            "bytes_received": bytes_received, "downstream_remote_address": address,
            "downstream_peer_principal": principal, "trace_id": trace_id}


# -- the process's access log ----------------------------------------------------------

_current: tuple[AccessLog | None] | None = None
_lock = threading.Lock()


def current() -> AccessLog | None:
    """The process's access log per the environment (read once), or None when off."""
    held = _current
    if held is None:
        held = configure(access_log_from_env())
    return held[0]


def configure(settings: AccessLogSettings | None) -> tuple[AccessLog | None]:
    """Set the process's access log (None or no destination: off); returns it held."""
    global _current
    log = AccessLog(settings) if settings is not None and settings.destination else None
    with _lock:
        _current = (log,)
        return _current


def reset() -> None:
    """Forget the access log; the next `current()` reads the environment again."""
    global _current
    with _lock:
        _current = None


def _otel_logger() -> Any:
    try:  # the OTel Logs API is still under `_logs`: use it only when it is there
        from opentelemetry import _logs
    except ImportError:  # pragma: no cover - every supported opentelemetry-api has it
        logger.warning("MESHCLIENT_ACCESS_LOG_OTEL: the OpenTelemetry Logs API is missing")
        return None
    return _logs.get_logger("meshclient.access")


def _emit(otel: Any, entry: dict[str, Any]) -> None:
    try:
        from opentelemetry._logs import LogRecord, SeverityNumber

        otel.emit(LogRecord(timestamp=time.time_ns(), severity_number=SeverityNumber.INFO,
                            severity_text="INFO", body="access",
                            attributes={k: v for k, v in entry.items() if v is not None}))
    except Exception as exc:  # the bridge must never fail a request
        logger.debug("access log to OpenTelemetry failed: %s", exc)
