"""State changes the mesh reports: one in-process bus, no I/O.

Components (balancer, breakers, budget, discovery, control) call `emit(kind, service,
**attrs)` on a state change; telemetry (logs, metrics, span events) subscribes with
`subscribe(listener)`. With no listener, `emit` costs one truthiness check.
Listeners must be fast and must not raise; an exception is swallowed and logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("meshclient")

# Event kinds (the `kind` argument).
RETRY = "retry"
BUDGET_EXHAUSTED = "budget_exhausted"
BREAKER_STATE = "breaker_state"  # attrs: endpoint, old, new
BREAKER_FAST_FAIL = "breaker_fast_fail"
EJECTED = "ejected"  # attrs: endpoint, until_s
RETURNED = "returned"  # attrs: endpoint
PANIC = "panic"  # attrs: active (bool), healthy, total
POLICY_APPLIED = "policy_applied"  # attrs: version, summary
POLICY_REJECTED = "policy_rejected"  # attrs: errors, source
DISCOVERY_REFRESH = "discovery_refresh"  # attrs: endpoints, source
DISCOVERY_ERROR = "discovery_error"  # attrs: error, stale_s
RATE_LIMITED = "rate_limited"  # attrs: reason ("rate", "quota", "concurrency", "adaptive")
QUOTA_FALLBACK = "quota_fallback"  # attrs: key, active (bool: True when Redis is unreachable)
XDS_UPDATE = "xds_update"  # attrs: type (lds/rds/cds/eds), version, resources
XDS_NACK = "xds_nack"  # attrs: type, version (the one kept), error
XDS_CONNECTION = "xds_connection"  # attrs: server, state ("connected", "disconnected")
AUTHZ_DENIED = "authz_denied"  # attrs: caller, rule, first (bool: first for this caller+rule)

Listener = Callable[[str, str, dict[str, Any]], None]
_listeners: tuple[Listener, ...] = ()


def subscribe(listener: Listener) -> Callable[[], None]:
    """Call `listener(kind, service, attrs)` for every event; returns an unsubscribe function."""
    global _listeners
    _listeners = (*_listeners, listener)

    def unsubscribe() -> None:
        global _listeners
        _listeners = tuple(x for x in _listeners if x is not listener)

    return unsubscribe


def emit(kind: str, service: str, **attrs: Any) -> None:
    listeners = _listeners
    if not listeners:
        return
    for listener in listeners:
        try:
            listener(kind, service, attrs)
        except Exception:
            logger.exception("meshclient event listener %r failed", listener)
