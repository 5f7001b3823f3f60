"""Weighted choice among a route's destinations, optionally sticky on a header (pure).

Without `hash_on` (or when the request lacks that header) each request draws
`rng.randrange(total_weight)`. With it, the header's value is hashed (BLAKE2b, stable across
processes and restarts, unlike `hash()`) onto the same weight line, so one caller always
lands on the same side while the weights stay put; changing the weights moves only the
callers whose point falls in the moved share.
"""

from __future__ import annotations

import hashlib

import httpx

from .._types import Rng
from ..policy import RouteRule


def sticky_point(value: str, total: int) -> int:
    """Where `value` falls on a line of `total` weight units (stable, uniform)."""
    digest = hashlib.blake2b(value.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % total


def choose(rule: RouteRule, request: httpx.Request, rng: Rng) -> str | None:
    """The destination service name for `request`, or None when the route has no `to`
    (the routed service itself)."""
    total = rule.total_weight
    if not rule.to:
        return None
    if len(rule.to) == 1:
        return rule.to[0].service
    key = request.headers.get(rule.hash_on) if rule.hash_on is not None else None
    point = sticky_point(key, total) if key is not None else rng.randrange(total)
    for dest in rule.to:
        if point < dest.weight:
            return dest.service
        point -= dest.weight
    return rule.to[-1].service  # unreachable: point < total
