"""Per-endpoint live state and the balancer interface.

`EndpointState` is the history that must survive endpoint-set updates (keyed by
`Endpoint.key`, as Finagle's `update()` keeps its nodes); pickers are rebuilt around it.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from ..discovery._base import Endpoint


class EndpointState:
    """Live counters of one endpoint. Thread-safe: counters change under a small lock that
    is never held across I/O."""

    __slots__ = ("_lock", "endpoint", "failures", "health_ok", "in_flight", "requests")

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.in_flight = 0
        self.requests = 0
        self.failures = 0
        self.health_ok = True  # False: failing active health checks (treated as ejected)
        self._lock = threading.Lock()

    def set_health_check(self, ok: bool) -> None:
        """Active health checks (discovery/health.py) passed or failed for this endpoint."""
        self.health_ok = ok

    def begin(self, now_ns: int) -> int:
        """An attempt starts; returns the start time to hand back to `end`."""
        with self._lock:
            self.in_flight += 1
            self.requests += 1
        return now_ns

    def end(self, start_ns: int, now_ns: int, ok: bool) -> None:
        """The attempt finished (body closed, or failed)."""
        with self._lock:
            self.in_flight -= 1
            if not ok:
                self.failures += 1

    def snapshot(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint.key, "zone": self.endpoint.zone,
                "weight": self.endpoint.weight, "in_flight": self.in_flight,
                "requests": self.requests, "failures": self.failures}

    def __repr__(self) -> str:
        return (f"<EndpointState {self.endpoint.key} in_flight={self.in_flight} "
                f"requests={self.requests} failures={self.failures}>")


class Balancer(Protocol):
    """Picks an endpoint of one service. `update` replaces the endpoint set, keeping the
    state of survivors; `pick` never blocks and never does I/O."""

    def update(self, endpoints: tuple[Endpoint, ...]) -> None: ...

    def pick(self, exclude: frozenset[str] = frozenset()) -> EndpointState | None: ...

    def states(self) -> tuple[EndpointState, ...]: ...
