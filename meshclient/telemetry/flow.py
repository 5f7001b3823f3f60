"""Drive a `Call` from the actions a flow yields, so neither shell changes: the transport
base wraps the core's flow with `instrument(flow, call)` when telemetry is on.

While the core runs (between yields), the call is `CURRENT_CALL`, so events it emits
(retries, budget refusals, breaker fast-fails) land on the logical call's span. (A
context variable of our own, not an OpenTelemetry `attach` per resume: that was a
large part of the cost of a traced call.)
"""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager
from contextvars import ContextVar
from typing import Any

import httpx

from .._core.actions import Discard, Done, Outcome, Send, Sleep
from .._core.flow import Flow
from ..discovery.endpoint import Endpoint
from .tracing import Call

#: The call whose flow is running right now in this thread or task (else None).
CURRENT_CALL: ContextVar[Call | None] = ContextVar("meshclient_current_call", default=None)


def instrument(flow: Flow, call: Call) -> Flow:
    """`flow`, with `call` told about every attempt and the end of the call."""
    reply: Any = None
    first = True
    finished = False
    try:
        while True:
            token = CURRENT_CALL.set(call)
            try:
                action = next(flow) if first else flow.send(reply)
            finally:
                CURRENT_CALL.reset(token)
            first = False
            if isinstance(action, Send):
                call.attempt(action)
            elif isinstance(action, Done):
                finished = True  # the shell stops here; the body close ends the call
                yield Done(action.response, call.finisher(action.on_close), action.attempts)
                return
            elif isinstance(action, Sleep):
                call.end_attempt()
            elif _is_hedge(action):
                pair: Any = action
                call.hedge(pair.primary, pair.secondary)
            guard = (suppress_http_instrumentation(call)
                     if isinstance(action, Send) or _is_hedge(action) else None)
            if guard is None:
                reply = yield action
            else:  # the shell sends the attempt(s) now, in this context
                with guard:
                    reply = yield action
            if isinstance(action, Send):
                assert reply is not None
                call.outcome(reply)
            elif isinstance(action, Discard):
                call.end_attempt()
            elif _is_hedge(action):
                h: Any = reply
                call.hedge_outcome(h.winner, h.outcome, h.other, h.hedged)
    except GeneratorExit:
        if not finished:
            flow.close()
            call.fail(None)
        raise
    except BaseException as exc:
        call.fail(exc)
        raise


#: The module of OpenTelemetry's httpx instrumentation (`HTTPXClientInstrumentor`).
HTTPX_INSTRUMENTATION = "opentelemetry.instrumentation.httpx"


def suppress_http_instrumentation(call: Call) -> AbstractContextManager[None] | None:
    """While meshclient records a CLIENT span per attempt, OpenTelemetry's httpx
    instrumentation (which wraps `httpx.HTTPTransport`, the inner transport) would add a
    second one, parented to the application's span, and overwrite the attempt's
    `traceparent` with its own. The instrumentation libraries' own rule for a client
    built on another instrumented client applies: the outer one suppresses HTTP
    instrumentation below it (`suppress_http_instrumentation`). None: nothing to do (the
    instrumentation is not loaded, or this call records no spans and leaves them to it)."""
    if not call.traced or HTTPX_INSTRUMENTATION not in sys.modules:
        return None
    try:
        from opentelemetry.instrumentation.utils import suppress_http_instrumentation
    except ImportError:  # pragma: no cover - an instrumentation without the helper
        return None
    return suppress_http_instrumentation()


def _is_hedge(action: object) -> bool:
    """A hedged pair (`Hedge(primary, secondary, …)`, resumed with a `HedgeOutcome`),
    recognised by its two sends."""
    return isinstance(getattr(action, "primary", None), Send) and \
        isinstance(getattr(action, "secondary", None), Send)


def passthrough_flow(request: httpx.Request) -> Flow:
    """A request to a host outside the policy, as a one-attempt flow (traced like any call;
    errors reach the caller unchanged)."""
    url = request.url
    port = url.port or (443 if url.scheme == "https" else 80)
    outcome = yield Send(request, Endpoint(url.host, port, source="passthrough"),
                         url.host, 1)
    assert isinstance(outcome, Outcome)
    if outcome.response is None:
        assert outcome.error is not None
        raise outcome.error
    yield Done(outcome.response)
