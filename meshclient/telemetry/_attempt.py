"""One physical attempt's telemetry: its CLIENT span (if tracing) and its duration."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import httpx
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from . import semconv as sc

if TYPE_CHECKING:
    from .._core.actions import Send
    from .metrics import Instruments

CANCELLED = "cancelled"  # error.type of a hedged attempt that lost and never answered


class Attempt:
    __slots__ = ("_error", "_metric_attrs", "_span", "_start", "_status", "send")

    def __init__(self, send: Send, span: trace.Span | None,
                 metric_attrs: dict[str, Any] | None) -> None:
        self.send = send
        self._span = span
        self._metric_attrs = metric_attrs
        self._start = time.perf_counter_ns()
        self._status: int | None = None
        self._error: BaseException | None = None

    def __repr__(self) -> str:
        error = type(self._error).__name__ if self._error is not None else None
        return (f"<Attempt {self.send.service} #{self.send.attempt} "
                f"endpoint={self.send.endpoint.key} status={self._status} error={error} "
                f"ended={self._start == 0}>")

    def observe(self, response: httpx.Response | None, error: BaseException | None) -> None:
        if response is not None:
            self._status = response.status_code
        self._error = error

    def drop(self) -> None:
        """Never sent: nothing is recorded (an SDK span never ended is never exported)."""
        self._span = None
        self._start = 0

    def end(self, instruments: Instruments | None, error: BaseException | None = None,
            cancelled: bool = False) -> None:
        if self._start == 0:
            return
        elapsed_s = (time.perf_counter_ns() - self._start) / 1e9
        self._start = 0
        error = error or self._error
        status = self._status
        err_type = CANCELLED if cancelled else sc.error_type(status, error) if (
            error is not None or (status is not None and status >= 400)) else None
        span, self._span = self._span, None
        if span is not None:
            if span.is_recording():
                if err_type is not None:
                    span.set_status(Status(StatusCode.ERROR, err_type))
                    if status is not None:
                        span.set_attributes({sc.HTTP_RESPONSE_STATUS_CODE: status,
                                             sc.ERROR_TYPE: err_type})
                    else:
                        span.set_attribute(sc.ERROR_TYPE, err_type)
                elif status is not None:
                    span.set_attribute(sc.HTTP_RESPONSE_STATUS_CODE, status)
            span.end()
        attrs = self._metric_attrs
        if instruments is not None and attrs is not None:
            if status is not None:
                attrs[sc.HTTP_RESPONSE_STATUS_CODE] = status
            if err_type is not None:
                attrs[sc.ERROR_TYPE] = err_type
            instruments.client_duration.record(elapsed_s, attrs)
