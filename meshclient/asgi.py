"""`MeshMiddleware` for ASGI apps (Starlette, FastAPI, any ASGI 3 app).

```python
app = meshclient.asgi.MeshMiddleware(app, max_concurrency=256)
```

Each HTTP request: trace context, deadline and attempt number are read into context
variables for the app (so its outbound mesh calls continue the trace and inherit the
deadline and the one-layer retry rule), a SERVER span wraps it, and
`http.server.request.duration` is recorded. An expired deadline is answered 504, a full
concurrency limit 503 + `Retry-After`, an invalid end-user token 401 + `WWW-Authenticate`
(docs/authentication.md), a denying check with its own answer (docs/checks.md), and a
caller the policy's `authorization` section denies 403 with no body
(docs/authorization.md), without calling the app; an admitted caller is in
`scope["meshclient.caller"]` and the verified end user in
`meshclient.context.current_auth()`. A WebSocket passes the same authorization
(a denied caller's handshake is closed with 1008 before it is accepted, which the server
answers 403) and then goes to the app; other scopes (lifespan) pass through.

A failure answer (5xx, 429) is marked with `x-mesh-retries-spent` when an outbound call
made while handling the request owned its retries and gave up, so the caller above does not
retry it again (one-layer retries, docs/retries.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .security.asgi import admit, edit_headers, scope_headers
from .security.checks import CheckFn
from .security.gated import Gated
from .server.inbound import ServerScope, marked_headers
from .server.shedding import limiter

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

__all__ = ["MeshMiddleware"]


class MeshMiddleware(Gated[ASGIApp]):
    """Wrap an ASGI app. `max_concurrency`: shed beyond this many requests in flight
    (None: never); `retry_after_s`: the `Retry-After` sent when shedding; `policy`: where
    the `authorization` rules come from (a `Policy`, `PolicyStore`, `AuthorizationPolicy`,
    or None for `meshclient.default_store()`); `service`: the name denials are reported
    under; `check`: a function of a `RequestView` answering `Allow` or `Deny`, sync or
    async, run for every request within `check_timeout` seconds (`check_fail_open`: what
    a failed or late check means; docs/checks.md)."""

    def __init__(self, app: ASGIApp, *, max_concurrency: int | None = None,
                 retry_after_s: float = 1.0, policy: Any = None,
                 service: str = "inbound", check: CheckFn | None = None,
                 check_timeout: float = 0.2, check_fail_open: bool = False) -> None:
        self.limit = limiter(max_concurrency, retry_after_s)
        super().__init__(app, policy, service, check=check, check_timeout=check_timeout,
                         check_fail_open=check_fail_open)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind != "websocket" or await admit(self.gate, scope, send):
                await self.app(scope, receive, send)
            return
        client = scope.get("client")
        port = scope.get("server")
        server = ServerScope(scope_headers(scope), scope.get("method", "GET"), scope.get("path"),
                             scheme=scope.get("scheme", "http"), limit=self.limit,
                             gate=self.gate, address=client[0] if client else None,
                             tls=(scope.get("extensions") or {}).get("tls"),
                             query=scope.get("query_string", b"").decode("latin-1"),
                             port=port[1] if port and len(port) > 1 else None,
                             local_ip=port[0] if port else None)
        rejection = await server.enter_async()
        if rejection is not None:
            try:
                body = rejection.body
                await send({"type": "http.response.start", "status": rejection.status,
                            "headers": [(b"content-type", b"text/plain"),
                                        (b"content-length", str(len(body)).encode()),
                                        *((k.encode(), v.encode())
                                          for k, v in rejection.headers)]})
                await send({"type": "http.response.body", "body": body})
            finally:
                server.exit(rejection.status)
            return
        scope["meshclient.caller"] = server.caller
        edit_headers(scope, server.admitted)
        status: int | None = None

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                if server.inbound.spent:  # an outbound call gave up after its retries
                    message = _marked(message, server, status)
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        except BaseException as exc:
            server.exit(status, exc, route=_route(scope))
            raise
        server.exit(status, route=_route(scope))


def _marked(message: Message, server: ServerScope, status: int) -> Message:
    """The response start with `x-mesh-retries-spent` set (`marked_headers`)."""
    headers = marked_headers(server.inbound, status,
                             ((k.decode("latin-1"), v.decode("latin-1"))
                              for k, v in message.get("headers", ())))
    if headers is None:
        return message
    return {**message, "headers": [(k.encode("latin-1"), v.encode("latin-1"))
                                   for k, v in headers]}


def _route(scope: Scope) -> str | None:
    """The matched route template, where the framework records it (Starlette's
    `scope["route"]`)."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else None
