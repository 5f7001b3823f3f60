"""Access logs: one JSON line per inbound and per outbound request, as Envoy's access log
(and Mixer's log entries), when `MESHCLIENT_ACCESS_LOG` names `stdout`, `stderr` or a file.

Field names are Envoy's access-log operators in lower case (`%RESPONSE_FLAGS%` is
`response_flags`); where Envoy has none, OpenTelemetry's attribute names. The table is in
docs/access-log.md. An outbound line is taken when the response body is closed (Envoy
logs at stream end) or the call fails; an inbound one when the handler is done or the
request was rejected.

The request path only captures a line's values (`OutboundEntry`, `InboundRecord`: slots);
the log's writer (`_log_writer`) makes the JSON lines on its own thread and writes them in
batches, at least once per flush interval (1 s), each batch with one `os.write` on a file
opened with `O_APPEND`, so lines from threads and processes sharing a file never
interleave. `flush()` writes what is queued at once (it also runs at exit). With
`MESHCLIENT_ACCESS_LOG_OTEL=1` each entry is also emitted as an OpenTelemetry log record
through the global logger provider, from the writer thread (the OTel Logs API; nothing is
emitted if it is unavailable).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from opentelemetry import trace
from opentelemetry.trace import Span

from .._clock import RNG
from .._types import Rng
from ..policy import AccessLogSettings, access_log_from_env
from ._log_records import (
    ENCODER,
    INBOUND_REASONS,
    InboundRecord,
    OutboundEntry,
    Record,
    error_flags,
    inbound_entry,
    safe_path,
    start_time,
)
from ._log_writer import LineWriter, file_sink, flush_all

__all__ = ["INBOUND_REASONS", "AccessLog", "InboundRecord", "OutboundEntry", "Record",
           "configure", "current", "error_flags", "flush", "inbound_entry", "reset",
           "safe_path", "start_time"]

logger = logging.getLogger("meshclient.telemetry")

def _stdio_sink(destination: str) -> Callable[[str], object]:
    def write(text: str) -> None:
        stream = sys.stdout if destination == "stdout" else sys.stderr
        stream.write(text)
        stream.flush()

    return write


class AccessLog:
    """Queues entries for `destination` (sampled) to its writer (`_log_writer`), which
    formats and writes them off the caller's path, as the settings' `flush_interval` and
    `buffer` say. Thread- and task-safe."""

    def __init__(self, settings: AccessLogSettings, rng: Rng = RNG) -> None:
        destination = settings.destination
        if destination is None:
            raise ValueError("an access log needs a destination")
        self.settings = settings
        self._sample = settings.sample
        self._rng = rng
        self._otel: Any = _otel_logger() if settings.otel else None
        sink = (_stdio_sink(destination) if destination in ("stdout", "stderr")
                else file_sink(destination))
        self._writer = LineWriter(self._render, sink, name=destination,
                                  flush_interval=settings.flush_interval,
                                  buffer=settings.buffer)
        self.put = self._writer.put

    @property
    def dropped(self) -> int:
        """Lines dropped because the writer's queue was full."""
        return self._writer.dropped

    def sampled(self) -> bool:
        return self._sample >= 1.0 or self._rng.random() < self._sample

    def write(self, entry: dict[str, Any] | Record) -> None:
        """Queue one line: a dict of fields, or a record (`OutboundEntry`, `InboundRecord`).
        With the OTel bridge on, the current span goes with it (for its log record)."""
        if self._otel is not None:
            self._writer.put((entry, trace.get_current_span()))
        else:
            self._writer.put(entry)

    def flush(self) -> None:
        """Write every queued line now."""
        self._writer.flush()

    def _render(self, records: Sequence[Any]) -> str:
        """The writer's side: the JSON lines of `records` (dicts, records, or either with
        its span), and their OTel log records."""
        otel = self._otel
        lines = []
        for item in records:
            span: Span | None = None
            if type(item) is tuple:  # queued with its span by `write`
                item, span = item
            line = ENCODER.encode(item) if isinstance(item, dict) else item.line()
            lines.append(line)
            if otel is not None:
                if isinstance(item, dict):
                    _emit(otel, item, None, span)
                else:
                    _emit(otel, json.loads(line), item.ended_ns(),
                          span if span is not None else getattr(item, "span", None))
        lines.append("")
        return "\n".join(lines)

    def outbound(self, request: httpx.Request) -> OutboundEntry | None:
        """Start an outbound entry (None: not sampled)."""
        sample = self._sample
        if sample >= 1.0 or self._rng.random() < sample:
            return OutboundEntry(self, request)
        return None


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
    """Write what is queued, and forget the access log; the next `current()` reads the
    environment again."""
    global _current
    flush_all()
    with _lock:
        _current = None


def flush() -> None:
    """Write every access log's queued lines now (on this thread)."""
    flush_all()


def _otel_logger() -> Any:
    try:  # the OTel Logs API is still under `_logs`: use it only when it is there
        from opentelemetry import _logs
    except ImportError:  # pragma: no cover - every supported opentelemetry-api has it
        logger.warning("MESHCLIENT_ACCESS_LOG_OTEL: the OpenTelemetry Logs API is missing")
        return None
    return _logs.get_logger("meshclient.access")


def _emit(otel: Any, entry: dict[str, Any], ended_ns: int | None, span: Span | None) -> None:
    """One OTel log record (on the writer thread): timestamped when the request ended, in
    the context of the span that was current then, as if emitted on the request path."""
    try:
        from opentelemetry._logs import LogRecord, SeverityNumber

        otel.emit(LogRecord(timestamp=ended_ns or time.time_ns(),
                            context=trace.set_span_in_context(span) if span else None,
                            severity_number=SeverityNumber.INFO, severity_text="INFO",
                            body="access",
                            attributes={k: v for k, v in entry.items() if v is not None}))
    except Exception as exc:  # the bridge must never fail a request
        logger.debug("access log to OpenTelemetry failed: %s", exc)
