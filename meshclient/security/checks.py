"""Programmable checks: a function (or an external authorization service) that may deny a
request, as Envoy's `ext_authz` filter and Mixer's precondition adapters do.

A check sees a read-only `RequestView` and answers `Allow` (optionally with headers to add to
the request on its way to the handler or upstream) or `Deny` (the status, headers and body
the caller gets). Checks are plain or `async` functions:

```python
def tenant_check(view: RequestView) -> Allow | Deny:
    if view.headers.get("x-tenant") in BLOCKED:
        return Deny(403, body=b"tenant suspended\\n")
    return Allow()

register_check("tenant", tenant_check)   # a policy's CUSTOM rule names it: provider "tenant"
```
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestView:
    """What a check (and an authorization condition) sees of one request.

    `headers` has lower-case names. `source_principal` is the caller's verified identity
    (SPIFFE ID or certificate name from mTLS, a named token); `request_principal` is
    `iss/sub` of a verified end-user JWT and `claims` its claims (empty without one).
    `port` and `destination_ip`: where an inbound request reached this server (the ASGI
    scope's `server`; a WSGI environ's `SERVER_PORT`, and `SERVER_ADDR` or an IP-literal
    `SERVER_NAME`), when the server says.
    `direction` is "inbound" (a request this process serves) or "outbound" (a call it
    makes to `service`).
    """

    method: str
    path: str
    query: str = ""
    headers: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    host: str | None = None
    port: int | None = None
    destination_ip: str | None = None
    source_ip: str | None = None
    source_principal: str | None = None
    request_principal: str | None = None
    claims: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    audiences: tuple[str, ...] = ()
    direction: str = "inbound"
    service: str | None = None


@dataclass(frozen=True, slots=True)
class Allow:
    """The request may proceed; `headers` are added to it (inbound: seen by the handler;
    outbound: sent upstream)."""

    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Deny:
    """The request is refused with this answer."""

    status: int = 403
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


Verdict = Allow | Deny
CheckFn = Callable[[RequestView], Verdict | Awaitable[Verdict]]

_registry: dict[str, CheckFn] = {}
_lock = threading.Lock()


def register_check(name: str, check: CheckFn) -> None:
    """Make `check` available to policy rules under `name` (replacing any earlier one)."""
    if not name:
        raise ValueError("a check needs a name")
    with _lock:
        _registry[name] = check


def unregister_check(name: str) -> None:
    with _lock:
        _registry.pop(name, None)


def registered_check(name: str) -> CheckFn | None:
    """The check registered under `name`, or None."""
    return _registry.get(name)
