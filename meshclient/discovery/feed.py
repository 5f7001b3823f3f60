"""Feeds one service's balancer: static endpoints or an endpoint cache, every SRV priority
group, marked by active health checks. The runtime's only discovery hook. The balancer
chooses the group per pick (`balance/balancer.py`: the lowest group with an available
endpoint, and a retry falls through to the next group), by the rule of `_select.py`.

The feed decides *what* the balancer should hold; the runtime's `publish(endpoints,
unhealthy)` puts it there (balancer update, health marks, breakers for new endpoints), so
the feed never holds a balancer that a policy change may replace."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .. import _fork
from .._types import Clock, Rng
from ..policy import Service
from .build import build_cache
from .cache import EndpointCache
from .endpoint import Endpoint, EndpointWaiter
from .health import HealthChecker
from .static import endpoints_from_specs

#: `publish(endpoints, unhealthy_keys)`: called under the feed's lock, never with I/O.
Publish = Callable[[tuple[Endpoint, ...], frozenset[str]], None]


class DiscoveryFeed:
    """Owned by a `ServiceRuntime`. `apply(service)` follows a new policy snapshot (a changed
    discovery URL or health section replaces the cache or checker); `close()` stops both.
    Thread-safe: updates come from the cache and health threads and the registry, serialised
    by a lock that no I/O runs under."""

    def __init__(self, service: Service, publish: Publish, clock: Clock, rng: Rng) -> None:
        self._publish = publish
        self.clock = clock
        self.rng = rng
        self.service = service
        self._cache: EndpointCache | None = None
        self.health: HealthChecker | None = None
        self._endpoints: tuple[Endpoint, ...] = ()
        self._unhealthy: frozenset[str] = frozenset()
        self._lock = threading.Lock()
        self._configure(None, service)
        _fork.track(self)

    @property
    def cache(self) -> EndpointCache | None:
        """The endpoint cache (None: static endpoints). Read by every request, so it is
        where a forked child restarts its background work (`meshclient/_fork.py`)."""
        if _fork.pending:
            _fork.resume()
        return self._cache

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()  # the cache and checker reset themselves

    def _resume_after_fork(self) -> None:
        pass

    @property
    def waiter(self) -> EndpointWaiter | None:
        """What a request must wait on before picking: the cache, until its first answer,
        unless endpoints are already known (a discovery URL changed: the old endpoints
        serve until the new source answers). None once warm, and for static endpoints."""
        cache = self._cache
        if cache is None or self._endpoints or cache.ready:
            return None
        return cache

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        """Every known endpoint (all priority groups, healthy or not)."""
        return self._endpoints

    def apply(self, service: Service) -> None:
        old, self.service = self.service, service
        self._configure(old, service)

    def _configure(self, old: Service | None, new: Service) -> None:
        if old is None or old.discovery != new.discovery:
            if self._cache is not None:
                self._cache.close(wait=False)  # its thread exits on its own; no join here
                self._cache = None
            if new.discovery is not None:
                cache = self._cache = build_cache(new.name, new.discovery, self.clock, self.rng)
                cache.subscribe(lambda resolution: self._set(resolution.endpoints, cache))
                cache.start()
        if new.discovery is None and (old is None or old.endpoints != new.endpoints
                                      or old.discovery is not None):
            self._set(endpoints_from_specs(new.endpoints))
        if old is None or old.health != new.health or old.scheme != new.scheme:
            if self.health is not None:
                self.health.close(wait=False)
                self.health = None
                self._mark(frozenset())
            if new.health is not None:
                self.health = HealthChecker(new.name, new.health, new.scheme,
                                            lambda: self._endpoints, self._mark)
                checker = self.health
                checker.on_change = lambda unhealthy: self._mark(unhealthy, checker)

    def _set(self, endpoints: tuple[Endpoint, ...], cache: EndpointCache | None = None) -> None:
        with self._lock:
            if cache is not None and cache is not self._cache:
                return  # a replaced cache's last answer: stale by definition
            self._endpoints = endpoints
            self._push()

    def _mark(self, unhealthy: frozenset[str], checker: HealthChecker | None = None) -> None:
        with self._lock:
            if checker is not None and checker is not self.health:
                return  # a replaced checker's last round
            self._unhealthy = unhealthy
            self._push()

    def _push(self) -> None:
        """Called under `_lock`."""
        self._publish(self._endpoints, self._unhealthy)

    def republish(self) -> None:
        """Push the current choice again (the runtime replaced its balancer)."""
        with self._lock:
            self._push()

    def snapshot(self) -> dict[str, Any]:
        """For status pages: where endpoints come from and how discovery is doing."""
        cache = self._cache
        if cache is None:
            return {"source": "static"}
        resolution = cache.resolution
        out = {"source": cache.resolver.source, "ready": cache.ready,
               "failures": cache.failures, "last_error": cache.last_error,
               "ttl_s": None if resolution is None else resolution.ttl_s,
               "known": len(self._endpoints), "unhealthy": sorted(self._unhealthy)}
        skipped = getattr(cache.resolver, "skipped", None)
        if isinstance(skipped, dict):  # values the registry holds that are not endpoints
            out["skipped"] = dict(skipped)
            out["skipped_total"] = getattr(cache.resolver, "skipped_total", len(skipped))
        return out

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
        if self.health is not None:
            self.health.close()

    def __repr__(self) -> str:
        return f"<DiscoveryFeed {self.service.name} cache={self.cache!r} health={self.health!r}>"
