"""`SecurityRegistry`: the `ServiceGuard` of each service and the `Limiter` of each route
with `limits`, shared by every transport on one `PolicyStore` (like the runtime registry),
rebuilt only when their sections change. `admission()` is what a transport asks for a
routed request."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

from .._types import Clock, Rng
from ..errors import MeshError
from ..policy import LimitsPolicy, PolicyStore, Service
from ..routing import Decision
from .admission import Limiter
from .outbound import ServiceGuard
from .routes import Guard, RouteEntry

logger = logging.getLogger("meshclient.security")


class SecurityRegistry:
    """`ServiceGuard` by service name, shared by every transport on one `PolicyStore`. A
    guard is rebuilt only when the service's `tls`, `auth` or `limits` change, so bucket,
    throttle and token state survive unrelated policy updates. If a new policy's sections
    cannot be loaded (bad TLS file, missing secret), the service keeps its previous guard and
    one warning is logged."""

    def __init__(self, clock: Clock | None = None, rng: Rng | None = None) -> None:
        from .._clock import CLOCK, RNG

        self.clock = clock or CLOCK
        self.rng = rng or RNG
        self._guards: dict[str, ServiceGuard] = {}
        self._failed: dict[str, tuple[object, ...]] = {}
        self._routes: dict[tuple[str, str], RouteEntry] = {}
        self._routes_failed: dict[tuple[str, str], LimitsPolicy] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"<SecurityRegistry guards={sorted(self._guards)} "
                f"routes={sorted(self._routes)} failed={sorted(self._failed)}>")

    def admission(self, service: Service, decision: Decision) -> Guard | None:
        """What a request to `service`, routed by `decision`, must pass: the matched
        route's limiter (if the route has `limits`) in front of the guard of the
        destination (`decision.destination`: after a split, the service the request is
        sent to). None: nothing to apply (the no-guard fast path: no allocation, no lock)."""
        guard = self.guard(decision.destination)
        limits = decision.limits
        if limits is None:
            return guard
        label = decision.route if decision.route is not None else f"routes[{decision.index}]"
        entry = self._routes.get((service.name, label))
        if entry is None or (entry.limits is not limits and entry.limits != limits):
            entry = self._route_entry(service, label, limits)
        return entry.guard_for(decision.destination.name, guard)

    def _route_entry(self, service: Service, label: str, limits: LimitsPolicy) -> RouteEntry:
        """Build (or rebuild, when its limits changed) the limiter of one route; if the new
        one cannot be built, the previous one stays, with one warning."""
        key = (service.name, label)
        entry = self._routes.get(key)
        if entry is not None and self._routes_failed.get(key) == limits:
            return entry  # a newer policy's limits failed to load: the old ones stay
        with self._lock:
            entry = self._routes.get(key)
            if entry is not None and entry.limits == limits:
                return entry
            if entry is not None and self._routes_failed.get(key) == limits:
                return entry
            try:
                limiter = Limiter(service.name, limits, service.timeout.total, self.clock,
                                  self.rng, route=label)
            except MeshError as exc:
                if entry is None:
                    raise
                if self._routes_failed.get(key) != limits:
                    logger.warning("service %r route %r: %s; keeping its previous limits",
                                   service.name, label, exc)
                self._routes_failed[key] = limits
                return entry
            new = self._routes[key] = RouteEntry(limiter)
            self._routes_failed.pop(key, None)
        if entry is not None:
            entry.limiter.close()
        return new

    def guard(self, service: Service) -> ServiceGuard | None:
        if service.tls is None and service.auth is None and service.limits is None:
            return None
        guard = self._guards.get(service.name)
        sections = (service.tls, service.auth, service.limits)
        if guard is not None and guard.sections == sections:
            return guard
        if guard is not None and self._failed.get(service.name) == sections:
            return guard  # a newer policy's sections failed to load: the old ones stay
        with self._lock:
            guard = self._guards.get(service.name)
            if guard is None or guard.sections != sections:
                old = guard
                try:
                    guard = ServiceGuard(service, self.clock, self.rng)
                except MeshError as exc:
                    if old is None:
                        raise  # start-up, or a new service: nothing to fall back to
                    if self._failed.get(service.name) != sections:
                        logger.warning("service %r: %s; keeping its previous security "
                                       "settings", service.name, exc)
                    self._failed[service.name] = sections
                    return old
                self._guards[service.name] = guard
                self._failed.pop(service.name, None)
                if old is not None:
                    old.close()
            return guard

    def prepare(self, services: Mapping[str, Service]) -> None:
        """Build every guard now, so bad TLS files or missing secrets fail at start-up."""
        for service in services.values():
            self.guard(service)
            for index, rule in enumerate(service.routes):
                if rule.limits is not None:
                    self._route_entry(service, rule.name if rule.name is not None
                                      else f"routes[{index}]", rule.limits)

    def close(self) -> None:
        with self._lock:
            guards, self._guards = list(self._guards.values()), {}
            routes, self._routes = list(self._routes.values()), {}
        for guard in guards:
            guard.close()
        for entry in routes:
            entry.limiter.close()


def security_for(store: PolicyStore) -> SecurityRegistry:
    """The security registry shared by every transport using `store`."""
    registry: SecurityRegistry = store.attachment("security", SecurityRegistry)
    return registry
