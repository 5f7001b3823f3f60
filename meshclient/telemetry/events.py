"""What each mesh event (`meshclient._events`) becomes: a metric, a span event on the
current span where it concerns one request, and a log line per state change.

Logging uses the `meshclient` logger: no line per request by default (per-request events
log at DEBUG); one line per state change (breaker open/close, ejection, return, panic,
policy swap or rejection, discovery failure) at INFO or WARNING.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from opentelemetry import trace

from .. import _events as ev
from . import providers
from .metrics import Instruments
from .semconv import MESH_ENDPOINT, MESH_SERVICE

logger = logging.getLogger("meshclient")

#: Events about one request: added to the current span as a span event.
SPAN_EVENTS = frozenset({ev.RETRY, ev.BUDGET_EXHAUSTED, ev.BREAKER_FAST_FAIL, ev.EJECTED})


def _attrs(service: str, attrs: dict[str, Any], *keys: str) -> dict[str, Any]:
    out: dict[str, Any] = {MESH_SERVICE: service} if service else {}
    for key in keys:
        value = attrs.get(key)
        if value is not None:
            out[MESH_ENDPOINT if key == "endpoint" else f"meshclient.{key}"] = \
                value if isinstance(value, (str, bool, int, float)) else str(value)
    return out


#: Attribute of `meshclient.retries.exhausted`: why a call stopped retrying.
REASON = "meshclient.reason"


def _give_up_reason(attrs: dict[str, Any]) -> str:
    """`attempts` (the attempt limit was reached) or `budget` (the budget refused): the
    `budget_exhausted` event reports both; without a reason it is the budget's refusal."""
    return "attempts" if attrs.get("reason") == "attempts" else "budget"


def _span_event_name(kind: str, attrs: dict[str, Any]) -> str:
    if kind == ev.BUDGET_EXHAUSTED and _give_up_reason(attrs) == "attempts":
        return "meshclient.attempts_exhausted"  # no budget ran out
    return f"meshclient.{kind}"


def _record(kind: str, service: str, attrs: dict[str, Any], m: Instruments) -> None:
    if kind == ev.RETRY:
        m.retries.add(1, _attrs(service, attrs))
    elif kind == ev.BUDGET_EXHAUSTED:
        reason = _give_up_reason(attrs)
        a = _attrs(service, attrs)
        if reason == "budget":  # the budget counter counts the budget's refusals only
            m.budget_exhausted.add(1, a)
        a[REASON] = reason
        m.retries_exhausted.add(1, a)
    elif kind == ev.BREAKER_STATE:
        a = _attrs(service, attrs, "endpoint")
        a["meshclient.breaker.state"] = str(attrs.get("new"))
        m.breaker_transitions.add(1, a)
    elif kind == ev.BREAKER_FAST_FAIL:
        m.breaker_fast_fails.add(1, _attrs(service, attrs, "endpoint"))
    elif kind == ev.EJECTED:
        m.ejections.add(1, _attrs(service, attrs, "endpoint"))
    elif kind == ev.RETURNED:
        m.returns.add(1, _attrs(service, attrs, "endpoint"))
    elif kind == ev.PANIC:
        a = _attrs(service, attrs)
        a["meshclient.panic.active"] = bool(attrs.get("active"))
        m.panic.add(1, a)
    elif kind == ev.POLICY_APPLIED:
        m.policy_applied.add(1, {})
    elif kind == ev.POLICY_REJECTED:
        m.policy_rejected.add(1, _attrs("", attrs, "source"))
    elif kind == ev.XDS_UPDATE:
        m.xds_updates.add(1, {"meshclient.xds.type": str(attrs.get("type"))})
    elif kind == ev.XDS_NACK:
        m.xds_nacks.add(1, {"meshclient.xds.type": str(attrs.get("type"))})
    elif kind == ev.DISCOVERY_REFRESH:
        m.discovery_refreshes.add(1, _attrs(service, attrs))
        m.discovery_staleness.set(0.0, _attrs(service, attrs))
    elif kind == ev.DISCOVERY_ERROR:
        m.discovery_errors.add(1, _attrs(service, attrs))
        stale = attrs.get("stale_s")
        if isinstance(stale, (int, float)):
            m.discovery_staleness.set(float(stale), _attrs(service, attrs))


def _log_line(kind: str, service: str, a: dict[str, Any]) -> tuple[int, str] | None:
    """(level, message) for an event; None for events with no line of their own here.

    Ejections, returns and panic are logged by the balancer, policy swaps and rejections by
    the store and the control refresher, discovery failure streaks (start and end) by the
    endpoint cache, where the detail is: one line per state change."""
    ep = a.get("endpoint")
    if kind == ev.BREAKER_STATE:
        level = logging.WARNING if str(a.get("new")) == "open" else logging.INFO
        return level, f"breaker {service}/{ep}: {a.get('old')} -> {a.get('new')}"
    return None


def on_event(kind: str, service: str, attrs: dict[str, Any]) -> None:
    """The `_events` listener telemetry installs on import."""
    m = providers.instruments()
    if m is not None:
        _record(kind, service, attrs, m)
    if kind in SPAN_EVENTS:
        span = _current_span()
        if span.is_recording():
            span.add_event(_span_event_name(kind, attrs),
                           _attrs(service, attrs, "endpoint", "reason"))
    line = _log_line(kind, service, attrs)
    if line is None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s %s %s", kind, service, attrs)
    else:
        logger.log(line[0], line[1], extra={"meshclient_event": kind,
                                            "meshclient_service": service})


def _current_span() -> trace.Span:
    """The span of the mesh call whose flow emitted the event, else OpenTelemetry's current
    span (an event from outside any call: a handler's, a background thread's)."""
    from .flow import CURRENT_CALL  # imported late: flow imports the core

    call = CURRENT_CALL.get()
    span = call.span if call is not None else None
    return span if span is not None else trace.get_current_span()


_unsubscribe: Callable[[], None] | None = None


def install() -> None:
    """Subscribe `on_event` once per process (idempotent)."""
    global _unsubscribe
    if _unsubscribe is None:
        _unsubscribe = ev.subscribe(on_event)
