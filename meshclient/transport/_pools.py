"""A connection pool per endpoint, for one mesh transport.

httpcore keeps one pool per transport and, for every request, scans all its connections
(twice) to find one for the request's origin: with a mesh's connections to every endpoint
in one pool, that scan grows with the fleet and dominates the profile under concurrency.
The mesh knows the endpoint before httpcore does, so each endpoint gets its own inner
transport (an `httpx.HTTPTransport` / `httpx.AsyncHTTPTransport` built with the mesh
transport's own arguments: `limits`, `verify`, `cert`, `proxy`, `http2` …), and the scan is
over that endpoint's connections only.

`limits` apply per endpoint, as Finagle's per-host connection limit and gRPC's
per-address subchannels do: with N endpoints a client may hold up to N x `max_connections`.

Lifecycle: a pool is made on the first attempt to its endpoint. The registry tells every
transport when discovery or a policy change published a new endpoint set (`changed`); on
its next request the transport moves the pools of endpoints no service holds any more to
`retiring` (`reconcile`), and closes each retiring pool once no request is in flight or
waiting on it (`closable`), on that request or a later one, or at the latest when the
transport closes. A forked child forgets every pool (`forget`: they share sockets with the
parent) and builds fresh ones on first use.

Generic over the shell: `T` is the sync or the async inner transport. Nothing here does
I/O: closing is the shell's (`close` / `aclose` on what `closable` and `take_all` return).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def _pool_of(transport: Any) -> Any:
    """The httpcore pool inside an httpx transport (None: not an httpx transport)."""
    return getattr(transport, "_pool", None)


def pool_stats(transport: Any) -> dict[str, int]:
    """Connections (open, of which idle) and requests waiting for one, read from httpcore's
    pool without taking its lock (a snapshot for `status`, not an exact count)."""
    pool = _pool_of(transport)
    if pool is None:
        return {"connections": 0, "idle": 0, "waiting": 0}
    connections = list(getattr(pool, "connections", ()))
    requests = list(getattr(pool, "_requests", ()))
    idle = sum(1 for c in connections if c.is_idle())
    waiting = sum(1 for r in requests if getattr(r, "connection", None) is None)
    return {"connections": len(connections), "idle": idle, "waiting": waiting}


def _quiet(transport: Any) -> bool:
    """No request in flight or waiting on `transport`'s pool: it can be closed."""
    pool = _pool_of(transport)
    if pool is None:
        return True
    if getattr(pool, "_requests", ()):
        return False
    return all(c.is_idle() for c in list(getattr(pool, "connections", ())))


class EndpointPools(Generic[T]):
    """Inner transports by endpoint key ("host:port"), made by `make()` on first use."""

    __slots__ = ("__weakref__", "_lock", "dirty", "make", "on_change", "pools", "retiring")

    def __init__(self, make: Callable[[], T],
                 on_change: Callable[[], None] | None = None) -> None:
        self.make = make
        self.on_change = on_change  # also told of a change (the transport's flag)
        #: endpoint key -> its transport; read without the lock on the request path
        self.pools: dict[str, T] = {}
        #: transports of endpoints gone from every service, closed once quiet
        self.retiring: list[T] = []
        #: set (from any thread) when an endpoint set changed: `reconcile` is due
        self.dirty = False
        self._lock = threading.Lock()

    def get(self, key: str) -> T:
        """The transport for endpoint `key` (made on the first call for it)."""
        pool = self.pools.get(key)
        if pool is None:
            with self._lock:
                pool = self.pools.get(key)
                if pool is None:
                    pool = self.pools[key] = self.make()
        return pool

    def changed(self) -> None:
        """An endpoint set changed somewhere (the registry calls this; any thread)."""
        self.dirty = True
        if self.on_change is not None:
            self.on_change()

    def reconcile(self, live: Iterable[str]) -> None:
        """Retire the pools of endpoints not in `live` (the keys some service still holds)."""
        keep = set(live)
        with self._lock:
            self.dirty = False
            gone = [key for key in self.pools if key not in keep]
            for key in gone:
                self.retiring.append(self.pools.pop(key))

    def closable(self) -> list[T]:
        """Take the retiring transports that are quiet now (the caller closes them)."""
        with self._lock:
            quiet = [t for t in self.retiring if _quiet(t)]
            if quiet:
                self.retiring = [t for t in self.retiring if t not in quiet]
        return quiet

    def take_all(self) -> list[T]:
        """Every transport, live and retiring, removed (the caller closes them)."""
        with self._lock:
            out = [*self.pools.values(), *self.retiring]
            self.pools, self.retiring = {}, []
        return out

    def forget(self) -> None:
        """In a forked child: drop every transport unclosed (they share the parent's
        sockets); fresh ones are made on first use."""
        self._lock = threading.Lock()
        self.pools, self.retiring, self.dirty = {}, [], False

    def stats(self) -> dict[str, dict[str, int]]:
        """Per endpoint key: `pool_stats` of its live pool."""
        return {key: pool_stats(t) for key, t in list(self.pools.items())}

    def __repr__(self) -> str:
        return f"<EndpointPools endpoints={len(self.pools)} retiring={len(self.retiring)}>"
