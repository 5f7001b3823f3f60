"""`SecurityRegistry`: the `ServiceGuard` of each service, shared by every transport on one
`PolicyStore` (like the runtime registry), rebuilt only when a service's security sections
change."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

from .._types import Clock, Rng
from ..errors import MeshError
from ..policy import PolicyStore, Service
from .outbound import ServiceGuard

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
        self._lock = threading.Lock()

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

    def close(self) -> None:
        with self._lock:
            guards, self._guards = list(self._guards.values()), {}
        for guard in guards:
            guard.close()


def security_for(store: PolicyStore) -> SecurityRegistry:
    """The security registry shared by every transport using `store`."""
    registry: SecurityRegistry = store.attachment("security", SecurityRegistry)
    return registry
