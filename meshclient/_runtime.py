"""Process-wide live state per service: balancer, resilience (budget, breakers),
endpoint cache. One `Registry` per `PolicyStore`, so every transport sharing a store
shares the state, and a test's private store has its own.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any, Protocol

from . import _fork
from ._clock import CLOCK, RNG
from ._types import Clock, Rng
from .balance import LoadBalancer, build_balancer
from .discovery.endpoint import Endpoint, EndpointWaiter, split_address
from .discovery.feed import DiscoveryFeed
from .policy import PolicyStore, Service, settings_from_env
from .resilience.state import ServiceResilience


def static_endpoints(service: Service) -> tuple[Endpoint, ...]:
    out = []
    for spec in service.endpoints:
        host, port = split_address(spec.address)
        out.append(Endpoint(host, port, spec.weight, spec.zone, spec.metadata, "static"))
    return tuple(out)


class ServiceRuntime:
    """Live state of one service. `service` is the policy snapshot it was last built from;
    `apply()` moves it to a newer one, keeping per-endpoint history."""

    def __init__(self, service: Service, clock: Clock, rng: Rng,
                 zone: str | None = None, on_change: Callable[[], None] | None = None) -> None:
        self.name = service.name
        self._on_change = on_change  # told after every endpoint set published
        self.clock = clock
        self.rng = rng
        self.zone = zone
        self.service = service
        self.balancer: LoadBalancer = build_balancer(
            service.name, service.balancer, service.outlier, clock=clock, rng=rng, zone=zone)
        #: more than one endpoint to choose from: the stall monitors are worth running
        #: (with one endpoint no latency sample decides a pick)
        self.choosing = False
        # Retry rules, the process-wide budget, latency, breakers.
        self.resilience = ServiceResilience(service, clock, rng=rng)
        # Static endpoints or discovery (cache + health checks) -> _publish()
        self.feed = DiscoveryFeed(service, self._publish, clock, rng)

    def _publish(self, endpoints: tuple[Endpoint, ...], unhealthy: frozenset[str]) -> None:
        """From the discovery feed, under its lock: the endpoints the balancer should hold
        (every SRV priority group) and those failing active health checks."""
        balancer = self.balancer
        balancer.update(endpoints)
        states = balancer.states()
        self.choosing = len(states) > 1
        for state in states:
            state.set_health_check(state.key not in unhealthy)
        self.resilience.attach_breakers(states)  # new endpoints get their breaker
        if self._on_change is not None:
            self._on_change()

    @property
    def discovery(self) -> EndpointWaiter | None:
        """The endpoint cache a request must first wait on; None once warm (or static)."""
        return self.feed.waiter

    def apply(self, service: Service) -> None:
        """Called under the registry lock when the policy snapshot changed."""
        if (service.balancer != self.service.balancer
                or service.outlier != self.service.outlier):
            # a new picker/detector around the same endpoint states (history kept by key)
            old = self.balancer.states()
            self.balancer = build_balancer(
                service.name, service.balancer, service.outlier, clock=self.clock,
                rng=self.rng, zone=self.zone, carry=old)
            self.balancer.update(tuple(s.endpoint for s in old))
            self.feed.republish()  # a feed update may have gone to the old balancer
        self.feed.apply(service)  # endpoints, discovery source, health checks
        self.resilience.apply(service, self.balancer.states())
        self.service = service

    def close(self) -> None:
        self.feed.close()

    def snapshot(self) -> dict[str, Any]:
        res = self.resilience
        balance = self.balancer.snapshot()
        extra = {s.key: res.endpoint_snapshot(s) for s in self.balancer.states()}
        endpoints = [{**e, **extra.get(e["endpoint"], {})} for e in balance.pop("endpoints")]
        return {"service": self.name, **balance, **res.snapshot(), "endpoints": endpoints,
                "discovery": self.feed.snapshot()}

    def __repr__(self) -> str:
        return (f"<ServiceRuntime {self.name} endpoints={len(self.balancer.states())} "
                f"discovery={self.feed.snapshot()['source']} {self.balancer!r} "
                f"{self.resilience!r}>")


class PoolOwner(Protocol):
    """A mesh transport's per-endpoint pools (`transport/_pools.py`), as the registry sees them."""

    def changed(self) -> None: ...

    def stats(self) -> dict[str, dict[str, int]]: ...


class Registry:
    """`ServiceRuntime` by name. Lookups are a dict read plus an identity check; building or
    updating a runtime happens once per (service, policy snapshot), under a lock that no
    network I/O ever runs under."""

    def __init__(self, clock: Clock = CLOCK, rng: Rng = RNG, zone: str | None = None) -> None:
        self.clock = clock
        self.rng = rng
        self.zone = zone if zone is not None else settings_from_env().zone
        self._services: dict[str, ServiceRuntime] = {}
        self._lock = threading.Lock()
        # the per-endpoint pools of every transport sharing this registry: told when an
        # endpoint set changes, read by `snapshot` (weakly: a transport may just be dropped)
        self._pools: weakref.WeakSet[PoolOwner] = weakref.WeakSet()
        _fork.track(self)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()  # another thread may have held it at the fork

    def _resume_after_fork(self) -> None:
        pass

    def runtime(self, service: Service) -> ServiceRuntime:
        rt = self._services.get(service.name)
        if rt is not None and rt.service is service:
            return rt
        with self._lock:
            rt = self._services.get(service.name)
            if rt is None:
                rt = self._services[service.name] = ServiceRuntime(
                    service, self.clock, self.rng, self.zone, self._endpoints_changed)
            elif rt.service is not service:
                rt.apply(service)
            return rt

    def add_pools(self, pools: PoolOwner) -> None:
        """Tell `pools` of every endpoint set change; show their stats in `snapshot`."""
        self._pools.add(pools)

    def _endpoints_changed(self) -> None:
        for pools in list(self._pools):
            pools.changed()

    def endpoint_keys(self) -> set[str]:
        """The keys of every endpoint some service holds now."""
        return {state.key for rt in list(self._services.values())
                for state in rt.balancer.states()}

    def pool_stats(self) -> dict[str, dict[str, int]]:
        """Per endpoint key: its pools' connections, idle ones and waiting requests,
        summed over the transports sharing this registry."""
        out: dict[str, dict[str, int]] = {}
        for pools in list(self._pools):
            for key, stats in pools.stats().items():
                into = out.setdefault(key, dict.fromkeys(stats, 0))
                for name, value in stats.items():
                    into[name] = into.get(name, 0) + value
        return out

    def snapshot(self) -> dict[str, Any]:
        pools = self.pool_stats()
        out = {name: rt.snapshot() for name, rt in sorted(self._services.items())}
        if pools:
            for svc in out.values():
                for entry in svc["endpoints"]:
                    stats = pools.get(entry.get("endpoint", ""))
                    if stats is not None:
                        entry.update(stats)
        return out

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
