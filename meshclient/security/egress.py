"""The outbound check: `MeshTransport(check=fn)` asks `fn` about each request before it
leaves (an egress policy), whatever its host. `Allow` lets it go with the allow's headers
added; `Deny` raises `CheckDenied` (a `MeshError` and an `httpx.TransportError`) carrying
the denial's status, headers and body. An exception from the check itself propagates.

A check object with `check_sync` / `check_async` methods (`ExtAuthz`) is called through
the one that suits the shell; a plain function is called, and in the async shell awaited
when it returns an awaitable. The sync shell refuses an awaitable (an `async def` check
needs `AsyncMeshTransport`).
"""

from __future__ import annotations

import inspect
from typing import Any

import httpx

from ..errors import CheckDenied
from .checks import Allow, CheckFn, Deny, RequestView, Verdict
from .limitkey import identity


def outbound_view(request: httpx.Request) -> RequestView:
    """What a check sees of an outbound request (`service`: its host). The principal and
    claims are those of the request being served, if any (`limitkey.identity`)."""
    url = request.url
    who = identity.get()
    return RequestView(
        method=request.method, path=url.path, query=url.query.decode("ascii", "replace"),
        headers={k.lower(): v for k, v in request.headers.items()}, host=url.host,
        port=url.port, direction="outbound", service=url.host,
        source_principal=who.principal if who is not None else None,
        claims=who.claims if who is not None else {})


def _apply(request: httpx.Request, verdict: object) -> None:
    if isinstance(verdict, Allow):
        for name, value in verdict.headers:
            request.headers[name] = value
        return
    if isinstance(verdict, Deny):
        raise CheckDenied(f"outbound check denied {request.method} {request.url.host}"
                          f"{request.url.path}: {verdict.status}", request=request,
                          service=request.url.host, status=verdict.status,
                          headers=verdict.headers, body=verdict.body)
    raise TypeError(f"a check must return Allow or Deny, not {type(verdict).__name__}")


def check_sync(check: CheckFn | Any, request: httpx.Request) -> None:
    """Run `check` on `request` (blocking): add the allow's headers or raise."""
    view = outbound_view(request)
    method = getattr(check, "check_sync", None)
    verdict: Verdict | Any = method(view) if method is not None else check(view)
    if inspect.isawaitable(verdict):
        if inspect.iscoroutine(verdict):
            verdict.close()
        raise TypeError("MeshTransport needs a sync check; an async one needs "
                        "AsyncMeshTransport")
    _apply(request, verdict)


async def check_async(check: CheckFn | Any, request: httpx.Request) -> None:
    """Run `check` on `request` (awaiting): add the allow's headers or raise."""
    view = outbound_view(request)
    method = getattr(check, "check_async", None)
    verdict: Verdict | Any = method(view) if method is not None else check(view)
    if inspect.isawaitable(verdict):
        verdict = await verdict
    _apply(request, verdict)
