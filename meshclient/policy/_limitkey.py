"""`limits.key`: what a rate limit's buckets are keyed by (Mixer's quota dimensions, Envoy's
rate-limit descriptors).

| key | one bucket per |
|---|---|
| `header:<name>` | value of that request header (e.g. `header:x-tenant`) |
| `claim:<name>` | value of that claim of the caller's verified JWT (`claim:org.id` for nested claims) |
| `principal` | caller identity (SPIFFE ID, certificate name, token name; else the JWT's `iss/sub`) |
| `route` | route (a route's limits: its name; a service's or an inbound limit: the path) |
| `address` | caller's address (inbound only) |
"""

from __future__ import annotations

import re
from typing import NamedTuple

from ._fields import HEADER_NAME, show

KINDS = ("header", "claim", "principal", "route", "address")
_CLAIM = re.compile(r"[A-Za-z0-9_\-:/]+(\.[A-Za-z0-9_\-:/]+)*")


class LimitKey(NamedTuple):
    """A parsed `limits.key`: its kind and, for a header or claim, the name (a header's
    lower-cased, a claim's split at dots)."""

    kind: str
    name: tuple[str, ...] = ()


def parse_limit_key(text: str) -> LimitKey:
    """Parse a `limits.key`; raises ValueError naming the value."""
    kind, sep, name = text.partition(":")
    if kind in ("principal", "route", "address") and not sep:
        return LimitKey(kind)
    if kind == "header" and sep:
        if not HEADER_NAME.fullmatch(name):
            raise ValueError(f"key header:<name> needs a valid header name: {show(text)}")
        return LimitKey("header", (name.lower(),))
    if kind == "claim" and sep:
        if len(name) > 200 or not _CLAIM.fullmatch(name):
            raise ValueError(f"key claim:<name> needs a claim name (dots for nested "
                             f"claims): {show(text)}")
        return LimitKey("claim", tuple(name.split(".")))
    raise ValueError(f"key must be header:<name>, claim:<name>, principal, route or "
                     f"address: {show(text)}")
