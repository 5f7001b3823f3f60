"""ASGI authorization: 403 (no body detail) for callers the policy denies, 401 for an
invalid end-user token, a check's own answer when it denies.

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
from .gate import Admitted, InboundRequest, Refused
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


def scope_request(scope: Scope) -> InboundRequest:
    """What the inbound policy sees of an ASGI scope."""
    client = scope.get("client")
    server = scope.get("server")
    raw_query = scope.get("query_string", b"")
    return InboundRequest(scope_headers(scope), scope.get("method", "GET"),
                          scope.get("path", "/"), raw_query.decode("latin-1"),
                          client[0] if client else None,
                          (scope.get("extensions") or {}).get("tls"),
                          server[1] if server and len(server) > 1 else None,
                          server[0] if server else None)


def edit_headers(scope: Scope, admitted: Admitted | None) -> None:
    """Apply the gate's header edits (a verified token removed, claims and a check's
    headers added) to the scope the app sees."""
    if admitted is None or not (admitted.add_headers or admitted.remove_headers):
        return
    drop = {n.encode("latin-1") for n in admitted.remove_headers}
    drop |= {k.encode("latin-1") for k, _ in admitted.add_headers}
    headers = [(k, v) for k, v in scope.get("headers", ()) if k.lower() not in drop]
    headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in admitted.add_headers]
    scope["headers"] = headers


async def admit(gate: InboundGate, scope: Scope, send: Send) -> bool:
    """The inbound policy for an HTTP or WebSocket scope, shared by this middleware and
    `meshclient.asgi.MeshMiddleware`'s WebSocket path: True with the `Caller` in
    `scope["meshclient.caller"]`, or False after answering the refusal (its status, or a
    WebSocket closed with 1008 before it is accepted, which the server answers 403)."""
    outcome = await gate.decide_async(scope_request(scope))
    if isinstance(outcome, Refused):
        await _deny(scope, send, outcome)
        return False
    scope["meshclient.caller"] = outcome.caller
    edit_headers(scope, outcome)
    return True


async def _deny(scope: Scope, send: Send, refused: Refused) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})  # servers answer 403
        return
    await send({"type": "http.response.start", "status": refused.status,
                "headers": [(b"content-length", str(len(refused.body)).encode()),
                            *((k.encode("latin-1"), v.encode("latin-1"))
                              for k, v in refused.headers)]})
    await send({"type": "http.response.body", "body": refused.body})
