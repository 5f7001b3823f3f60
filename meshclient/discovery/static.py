"""Endpoints written as data: the policy's static list, and the JSON a file or etcd holds.

One endpoint is `"host:port"` or `{"address": "host:port", "weight": 1, "zone": "a",
"priority": 0, "metadata": {...}}`; only `address` is required.
"""

from __future__ import annotations

import types
from typing import Any

from .endpoint import DiscoveryError, Endpoint, split_address

_KEYS = frozenset({"address", "weight", "zone", "priority", "metadata"})


def endpoint_from_json(value: Any, source: str, where: str) -> Endpoint:
    """Parse one endpoint; raises `DiscoveryError` naming `where` and the value."""
    if isinstance(value, str):
        value = {"address": value}
    if not isinstance(value, dict):
        raise DiscoveryError(f"{where} must be \"host:port\" or an object: {value!r}")
    unknown = set(value) - _KEYS
    if unknown:
        raise DiscoveryError(f"{where} has unknown keys {sorted(unknown)}: {value!r}")
    address = value.get("address")
    if not isinstance(address, str):
        raise DiscoveryError(f"{where} needs an \"address\": \"host:port\": {value!r}")
    try:
        host, port = split_address(address)
    except ValueError as exc:
        raise DiscoveryError(f"{where} address {exc}") from None
    weight, priority = value.get("weight", 1), value.get("priority", 0)
    zone, metadata = value.get("zone"), value.get("metadata") or {}
    if not isinstance(weight, int) or isinstance(weight, bool) or not 1 <= weight <= 65535:
        raise DiscoveryError(f"{where} weight must be an integer between 1 and 65535: "
                             f"{weight!r}")
    if not isinstance(priority, int) or isinstance(priority, bool) or not 0 <= priority <= 65535:
        raise DiscoveryError(f"{where} priority must be an integer between 0 and 65535: "
                             f"{priority!r}")
    if zone is not None and not isinstance(zone, str):
        raise DiscoveryError(f"{where} zone must be a string: {zone!r}")
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise DiscoveryError(f"{where} metadata must map strings to strings: {metadata!r}")
    return Endpoint(host, port, weight, zone, types.MappingProxyType(dict(metadata)), source,
                    priority)


def endpoints_from_specs(specs: Any, source: str = "static") -> tuple[Endpoint, ...]:
    """The policy's validated `EndpointSpec`s as endpoints."""
    out = []
    for spec in specs:
        host, port = split_address(spec.address)
        out.append(Endpoint(host, port, spec.weight, spec.zone, spec.metadata, source,
                            spec.priority))
    return tuple(out)
