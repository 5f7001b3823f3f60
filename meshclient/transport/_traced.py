"""A traced call's first attempt: the same `First` as an untraced call's, with telemetry
told about it as `telemetry.flow.instrument` tells it about a flow's attempts. A call that
records nothing (`Call.quiet`: its span not sampled and no meter, or no SDK inside a
trace) only carries its trace context: its first attempt is sent as an untraced call's."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from functools import partial
from typing import Any

import httpx

from .._core.actions import Outcome
from .._core.first import First, start_first
from .._core.flow import Flow
from .._runtime import ServiceRuntime
from ..context import Inbound
from ..routing import Decision
from ..telemetry.flow import CURRENT_CALL, instrument, suppress_http_instrumentation
from ..telemetry.tracing import Call

_NOTHING = nullcontext()  # stateless: one for every attempt


class TracedFirst(First):
    """A `First` whose call telemetry records (`call`)."""

    __slots__ = ("call",)

    traced = True

    def __init__(self, call: Call, *args: Any) -> None:
        super().__init__(*args)
        self.call = call

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]} {self.call!r}>"

    def sending(self) -> AbstractContextManager[None]:
        """OpenTelemetry's httpx instrumentation suppressed while meshclient records the
        attempt's span (see `instrument`)."""
        return suppress_http_instrumentation(self.call) or _NOTHING

    def finish(self, response: httpx.Response | None,
               error: Exception | None = None) -> Flow | None:
        call = self.call
        call.outcome(Outcome(response, error))
        token = CURRENT_CALL.set(call)
        try:
            flow = super().finish(response, error)
        except BaseException as exc:
            call.fail(exc)
            raise
        finally:
            CURRENT_CALL.reset(token)
        if flow is None:
            self.on_close = call.finisher(self.on_close)
            return None
        return instrument(flow, call)

    def cancelled(self) -> None:
        self.call.fail(None)


class QuietFirst(First):
    """A `First` whose call records nothing: the attempt's headers carry the call's trace
    context (written by `start_traced`) and the shell sends it as an untraced call's. If
    the flow takes over, it is instrumented, so later attempts carry the context too."""

    __slots__ = ("call",)

    def __init__(self, call: Call, *args: Any) -> None:
        super().__init__(*args)
        self.call = call

    def finish(self, response: httpx.Response | None,
               error: Exception | None = None) -> Flow | None:
        token = CURRENT_CALL.set(self.call)  # events the core emits: the call's (unsampled)
        try:
            flow = super().finish(response, error)
        finally:
            CURRENT_CALL.reset(token)
        return None if flow is None else instrument(flow, self.call)


def start_traced(request: httpx.Request, runtime: ServiceRuntime, inbound: Inbound | None,
                 decision: Decision | None, call: Call) -> First | None:
    """`start_first` for a traced call: run as the call's (`CURRENT_CALL`), the attempt
    told to `call`; an error starting it fails the call. A quiet call's attempt only gets
    the call's trace context."""
    quiet = call.quiet
    token = CURRENT_CALL.set(call)
    try:
        first = start_first(request, runtime, inbound, decision,
                            partial(QuietFirst if quiet else TracedFirst, call))
    except BaseException as exc:
        call.fail(exc)
        raise
    finally:
        CURRENT_CALL.reset(token)
    if first is not None:
        if quiet:
            call.inject(first.sent.headers)
        else:
            call.attempt(first.as_send())
    return first
