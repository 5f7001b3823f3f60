"""A traced call's first attempt: the same `First` as an untraced call's, with telemetry
told about it as `telemetry._flow.instrument` tells it about a flow's attempts."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import httpx

from .._core.actions import Outcome
from .._core.first import First, start_first
from .._core.flow import Flow
from .._runtime import ServiceRuntime
from ..context import Inbound
from ..routing import Decision
from ..telemetry._flow import CURRENT_CALL, _suppress_http_instrumentation, instrument
from ..telemetry.tracing import Call


class TracedFirst:
    """`First.traced` for a call telemetry records (`Call`)."""

    __slots__ = ("call",)

    def __init__(self, call: Call) -> None:
        self.call = call

    def sending(self) -> AbstractContextManager[None]:
        """Around the attempt's send: OpenTelemetry's httpx instrumentation suppressed while
        meshclient records the attempt's span (see `instrument`)."""
        return _suppress_http_instrumentation(self.call) or nullcontext()

    def finish(self, first: First, response: httpx.Response | None,
               error: Exception | None) -> Flow | None:
        call = self.call
        call.outcome(Outcome(response, error))
        token = CURRENT_CALL.set(call)
        try:
            flow = first.settle(response, error)
        except BaseException as exc:
            call.fail(exc)
            raise
        finally:
            CURRENT_CALL.reset(token)
        if flow is None:
            first.on_close = call.finisher(first.on_close)
            return None
        return instrument(flow, call)

    def cancelled(self) -> None:
        self.call.fail(None)

    def __repr__(self) -> str:
        return f"<TracedFirst attempts={self.call.attempts}>"


def start_traced(request: httpx.Request, runtime: ServiceRuntime, inbound: Inbound | None,
                 decision: Decision | None, call: Call) -> First | None:
    """`start_first` for a traced call: run as the call's (`CURRENT_CALL`), the attempt
    told to `call`; an error starting it fails the call."""
    token = CURRENT_CALL.set(call)
    try:
        first = start_first(request, runtime, inbound, decision)
    except BaseException as exc:
        call.fail(exc)
        raise
    finally:
        CURRENT_CALL.reset(token)
    if first is not None:
        first.traced = TracedFirst(call)
        call.attempt(first.as_send())
    return first
