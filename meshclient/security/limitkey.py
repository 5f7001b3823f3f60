"""The value a keyed limit (`limits.key`) buckets a request under.

Outbound, `principal` and `claim:` come from the request being served (`identity`, set by
the inbound middleware for the handler's calls); inbound, from the caller itself.
A request without a value (no such header, no claim, an anonymous caller) gets None: it is
not limited by the keyed rate, as Envoy skips a descriptor it cannot build.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from typing import Any, NamedTuple

from ..policy import LimitKey

#: Longest key value used as is; longer ones are cut (a bucket name, not the whole value).
MAX_VALUE = 256


class Identity(NamedTuple):
    """Who the request being served came from: its principal and verified JWT claims."""

    principal: str | None
    claims: Mapping[str, Any]


identity: contextvars.ContextVar[Identity | None] = contextvars.ContextVar(
    "meshclient_identity", default=None)


def claim(claims: Mapping[str, Any], path: tuple[str, ...]) -> str | None:
    """The claim at `path` (nested by dots) as text; None when absent or not a scalar."""
    value: Any = claims
    for part in path:
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    return str(value)


def key_value(key: LimitKey, *, headers: Mapping[str, str], route: str | None,
              address: str | None = None, who: Identity | None = None) -> str | None:
    """The bucket name of a request for `key` (`headers` with lower-case names)."""
    kind = key.kind
    if kind == "header":
        value = headers.get(key.name[0])
    elif kind == "route":
        value = route
    elif kind == "address":
        value = address
    else:
        who = who if who is not None else identity.get()
        if who is None:
            return None
        value = who.principal if kind == "principal" else claim(who.claims, key.name)
    if not value:
        return None
    return value[:MAX_VALUE]
