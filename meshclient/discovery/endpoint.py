"""Endpoints and the full snapshots resolvers publish (never deltas, as grpc-go's resolver.State)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from .._addresses import split_address as split_address  # re-exported: its users import it here
from ..errors import MeshError


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One place a service can be reached. Immutable; `key` identifies it across updates."""

    host: str
    port: int
    weight: int = 1
    zone: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)
    source: str = "static"
    priority: int = 0  # SRV priority: lower groups are used first (see discovery/_select.py)
    #: "host:port" ("[v6]:port"): identifies the endpoint across updates (made once: it is
    #: read on every attempt).
    key: str = field(init=False, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"[{self.host}]:{self.port}" if ":" in self.host
                           else f"{self.host}:{self.port}")

    def __str__(self) -> str:
        return self.key


@dataclass(frozen=True, slots=True)
class Resolution:
    """One complete answer from a resolver: the whole endpoint set, never a delta.

    `ttl_s` is how long the answer may be cached (None: the source pushes changes, as a
    watch does). `exists` is False when the registry says the name is gone (NXDOMAIN, an
    empty etcd prefix, an empty file): the cache keeps a working set for a grace period
    before it believes that. Immutable.
    """

    endpoints: tuple[Endpoint, ...]
    source: str
    ttl_s: float | None = None
    exists: bool = True

    @property
    def empty(self) -> bool:
        return not self.endpoints


class Resolver(Protocol):
    """A source of endpoints. `resolve()` blocks (it runs on the cache's refresh thread,
    never on a request's path) and raises `DiscoveryError` when the registry fails.

    A source that can push changes (etcd, a watched file) also has
    `watch(publish, should_stop)`: it blocks, calling `publish(resolution)` with every new
    full snapshot until `should_stop()` is true, and raises `DiscoveryError` on failure.
    """

    source: str

    def resolve(self) -> Resolution: ...

    def close(self) -> None: ...


class EndpointWaiter(Protocol):
    """What the request core may wait on before a service's first resolution (the cache).
    `wait` blocks the calling thread at most `timeout_s`; returns True once ready."""

    @property
    def ready(self) -> bool: ...

    def wait(self, timeout_s: float) -> bool: ...


class DiscoveryError(MeshError):
    """A registry could not be read (unreachable, timed out, refused, malformed answer)."""
