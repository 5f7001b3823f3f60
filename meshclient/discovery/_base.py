"""Endpoints and the full snapshots resolvers publish (never deltas, as grpc-go's resolver.State)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field


def split_address(address: str) -> tuple[str, int]:
    """`"host:port"` or `"[v6]:port"` to `(host, port)`; raises `ValueError` naming the value."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"must be host:port: {address!r}")
    port = int(port_text)
    if not 0 < port < 65536:
        raise ValueError(f"port must be between 1 and 65535: {address!r}")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError(f"must be host:port: {address!r}")
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"has an invalid IPv6 address: {address!r}") from None
    elif ":" in host:
        raise ValueError(f"must put an IPv6 address in brackets: {address!r}")
    return host, port


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One place a service can be reached. Immutable; `key` identifies it across updates."""

    host: str
    port: int
    weight: int = 1
    zone: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)
    source: str = "static"

    @property
    def key(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return self.key
