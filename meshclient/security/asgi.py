"""ASGI authorization: 403 (no body detail) for callers the policy denies.

Chain it inside the mesh middleware (or use it alone):
```python
app = AuthorizationMiddleware(app)                     # policy from meshclient.default_store()
app = AuthorizationMiddleware(app, policy=store)       # or a PolicyStore / Policy
```
The caller comes from the ASGI TLS extension (`scope["extensions"]["tls"]`) when the
server provides it, a verified bearer token, or a trusted caller header (see `authz`). The
identified `Caller` is put in `scope["meshclient.caller"]` for the app.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .authz import Caller
from .gated import Gated
from .inbound import InboundGate

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class AuthorizationMiddleware(Gated[ASGIApp]):
    """**Parameters:** `app`; `policy` (an `AuthorizationPolicy`, `Policy`, `PolicyStore` or
    None for the process's store); `service` (the name events are reported under)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if await admit(self.gate, scope, send):
            await self.app(scope, receive, send)

    def caller(self, scope: Scope) -> Caller | None:
        return scope.get("meshclient.caller")


def scope_headers(scope: Scope) -> dict[str, str]:
    """An ASGI scope's headers, names lower-cased, both decoded as latin-1 (never fails)."""
    return {k.decode("latin-1").lower(): v.decode("latin-1")
            for k, v in scope.get("headers", ())}


async def admit(gate: InboundGate, scope: Scope, send: Send) -> bool:
    """The authorization check for an HTTP or WebSocket scope, shared by this middleware
    and `meshclient.asgi.MeshMiddleware`: True with the `Caller` in
    `scope["meshclient.caller"]`, or False after answering the denial (403, or a WebSocket
    closed with 1008 before it is accepted, which the server answers 403)."""
    client = scope.get("client")
    caller = gate.check(headers=scope_headers(scope), address=client[0] if client else None,
                        tls=(scope.get("extensions") or {}).get("tls"),
                        method=scope.get("method", "GET"), path=scope.get("path", "/"))
    if caller is None:
        await _deny(scope, send)
        return False
    scope["meshclient.caller"] = caller
    return True


async def _deny(scope: Scope, send: Send) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})  # servers answer 403
        return
    await send({"type": "http.response.start", "status": 403,
                "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})
