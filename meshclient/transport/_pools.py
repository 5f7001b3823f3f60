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

Shards: httpcore's per-request work grows faster than linearly with the connections one
pool holds (for each idle connection it counts the idle ones again, and it polls each idle
socket for readability), so under concurrency one endpoint's pool is itself split into
shards of at most `SHARD` connections, each its own inner transport. `limits` are divided
among the shards (their `max_connections` add up to the endpoint's; the keep-alive
allowance goes to the first shards, the busiest), and a request goes to the first shard
with a free slot (fewer requests than its connections), so it never waits while another
shard has room; with every shard full it joins the least loaded one, as it would wait in
one pool. At concurrency 1 only the first shard is ever made. Like Envoy's connection pool
per worker thread, several pools to one host. Without a connection limit, or with
`http2=True` (one connection carries many requests), an endpoint has one pool.

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

import math
import threading
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

import httpx

T = TypeVar("T")

#: The most connections one shard (one httpcore pool) of an endpoint holds.
SHARD = 8
#: httpx's own default, when the transport was given no `limits`.
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
_NONE: list[Any] = []  # the load of a transport that is not httpx's (always "free")


def _pool_of(transport: Any) -> Any:
    """The httpcore pool inside an httpx transport (None: not an httpx transport)."""
    return getattr(transport, "_pool", None)


def _requests_of(transport: Any) -> list[Any]:
    """httpcore's list of the requests in flight or waiting on `transport`'s pool (the
    same list object for the pool's life; an empty one if it has none)."""
    requests = getattr(_pool_of(transport), "_requests", None)
    return requests if isinstance(requests, list) else _NONE


def shard_limits(limits: httpx.Limits, http2: bool = False,
                 size: int = SHARD) -> list[httpx.Limits]:
    """The limits of each shard of one endpoint's pool (one shard: `limits` itself)."""
    total = limits.max_connections
    if total is None or http2 or total <= size:
        return [limits]
    count = math.ceil(total / size)
    keep = limits.max_keepalive_connections
    out = []
    for i in range(count):
        cap = total // count + (1 if i < total % count else 0)
        idle = None if keep is None else max(0, min(cap, keep))
        if keep is not None:
            keep -= cap
        out.append(httpx.Limits(max_connections=cap, max_keepalive_connections=idle,
                                keepalive_expiry=limits.keepalive_expiry))
    return out


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


#: One shard: its transport, httpcore's list of its requests, its connection limit.
Shard = tuple[T, list[Any], int]


class EndpointPools(Generic[T]):
    """Inner transports by endpoint key ("host:port"), made on first use: `make(limits)`
    builds one shard's transport."""

    __slots__ = ("__weakref__", "_lock", "dirty", "make", "on_change", "plan", "pools",
                 "retiring")

    def __init__(self, make: Callable[[httpx.Limits], T],
                 on_change: Callable[[], None] | None = None,
                 limits: httpx.Limits | None = None, http2: bool = False) -> None:
        self.make = make
        self.on_change = on_change  # also told of a change (the transport's flag)
        #: each shard's limits, in the order shards are made
        self.plan = shard_limits(limits or DEFAULT_LIMITS, http2)
        #: endpoint key -> its shards (replaced whole, never changed in place: read
        #: without the lock on the request path)
        self.pools: dict[str, tuple[Shard[T], ...]] = {}
        #: transports of endpoints gone from every service, closed once quiet
        self.retiring: list[T] = []
        #: set (from any thread) when an endpoint set changed: `reconcile` is due
        self.dirty = False
        self._lock = threading.Lock()

    def _shard(self, index: int) -> Shard[T]:
        limits = self.plan[index]
        transport = self.make(limits)
        cap = limits.max_connections if len(self.plan) > 1 else None
        return (transport, _requests_of(transport), 1 << 62 if cap is None else cap)

    def get(self, key: str) -> T:
        """The transport for a request to endpoint `key`: its first shard with a free
        slot (shards and the endpoint's first are made on demand)."""
        shards = self.pools.get(key)
        if shards is not None:
            for transport, requests, cap in shards:
                if len(requests) < cap:
                    return transport
        with self._lock:
            shards = self.pools.get(key, ())
            for transport, requests, cap in shards:
                if len(requests) < cap:
                    return transport
            if len(shards) < len(self.plan):
                shard = self._shard(len(shards))
                self.pools[key] = (*shards, shard)
                return shard[0]
        return min(shards, key=lambda s: len(s[1]))[0]  # every shard full: it waits

    def transports(self, key: str) -> list[T]:
        """Every shard's transport of endpoint `key` (none if it has no pool)."""
        return [shard[0] for shard in self.pools.get(key, ())]

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
                self.retiring += [shard[0] for shard in self.pools.pop(key)]

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
            out = [shard[0] for shards in self.pools.values() for shard in shards]
            out += self.retiring
            self.pools, self.retiring = {}, []
        return out

    def forget(self) -> None:
        """In a forked child: drop every transport unclosed (they share the parent's
        sockets); fresh ones are made on first use."""
        self._lock = threading.Lock()
        self.pools, self.retiring, self.dirty = {}, [], False

    def stats(self) -> dict[str, dict[str, int]]:
        """Per endpoint key: `pool_stats` of its live pool (its shards summed)."""
        out = {}
        for key, shards in list(self.pools.items()):
            each = [pool_stats(shard[0]) for shard in shards]
            out[key] = {field: sum(s[field] for s in each)
                        for field in ("connections", "idle", "waiting")}
        return out

    def __repr__(self) -> str:
        return f"<EndpointPools endpoints={len(self.pools)} retiring={len(self.retiring)}>"
