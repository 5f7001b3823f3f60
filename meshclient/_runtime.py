"""Process-wide live state per service: balancer (and, as they land, budget, breakers,
endpoint cache). One `Registry` per `PolicyStore`, so every transport sharing a store
shares the state, and a test's private store has its own.
"""

from __future__ import annotations

import threading
from typing import Any

from ._clock import CLOCK, RNG
from ._types import Clock, Rng
from .balance import Balancer, RoundRobin
from .discovery._base import Endpoint, EndpointWaiter, split_address
from .discovery._feed import DiscoveryFeed
from .policy import PolicyStore, Service


def static_endpoints(service: Service) -> tuple[Endpoint, ...]:
    out = []
    for spec in service.endpoints:
        host, port = split_address(spec.address)
        out.append(Endpoint(host, port, spec.weight, spec.zone, spec.metadata, "static"))
    return tuple(out)


class ServiceRuntime:
    """Live state of one service. `service` is the policy snapshot it was last built from;
    `apply()` moves it to a newer one, keeping per-endpoint history."""

    def __init__(self, service: Service, clock: Clock, rng: Rng) -> None:
        self.name = service.name
        self.clock = clock
        self.rng = rng
        self.service = service
        self.balancer: Balancer = RoundRobin()
        # Static endpoints or discovery (cache + health checks) -> _publish() (issue-5)
        self.feed = DiscoveryFeed(service, self._publish, clock, rng)

    def _publish(self, endpoints: tuple[Endpoint, ...], unhealthy: frozenset[str]) -> None:
        """From the discovery feed, under its lock: the endpoints the balancer should hold
        (one SRV priority group) and those failing active health checks."""
        self.balancer.update(endpoints)
        for state in self.balancer.states():
            state.set_health_check(state.endpoint.key not in unhealthy)

    @property
    def discovery(self) -> EndpointWaiter | None:
        """The endpoint cache a request must first wait on; None once warm (or static)."""
        return self.feed.waiter

    def apply(self, service: Service) -> None:
        """Called under the registry lock when the policy snapshot changed."""
        self.feed.apply(service)
        self.service = service

    def close(self) -> None:
        self.feed.close()

    def snapshot(self) -> dict[str, Any]:
        return {"service": self.name,
                "endpoints": [s.snapshot() for s in self.balancer.states()],
                "discovery": self.feed.snapshot()}


class Registry:
    """`ServiceRuntime` by name. Lookups are a dict read plus an identity check; building or
    updating a runtime happens once per (service, policy snapshot), under a lock that no
    network I/O ever runs under."""

    def __init__(self, clock: Clock = CLOCK, rng: Rng = RNG) -> None:
        self.clock = clock
        self.rng = rng
        self._services: dict[str, ServiceRuntime] = {}
        self._lock = threading.Lock()

    def runtime(self, service: Service) -> ServiceRuntime:
        rt = self._services.get(service.name)
        if rt is not None and rt.service is service:
            return rt
        with self._lock:
            rt = self._services.get(service.name)
            if rt is None:
                rt = self._services[service.name] = ServiceRuntime(service, self.clock,
                                                                   self.rng)
            elif rt.service is not service:
                rt.apply(service)
            return rt

    def snapshot(self) -> dict[str, Any]:
        return {name: rt.snapshot() for name, rt in sorted(self._services.items())}

    def close(self) -> None:
        """Stop background work owned by the registry (discovery caches, health checks)."""
        with self._lock:
            runtimes = list(self._services.values())
        for rt in runtimes:
            rt.close()

    def __repr__(self) -> str:
        return f"<Registry services={sorted(self._services)}>"


def registry_for(store: PolicyStore) -> Registry:
    """The registry shared by every transport using `store`."""
    registry: Registry = store.attachment("registry", Registry)
    return registry
