"""`@meshclient.handler`: the inbound side for one handler function, sync or async.

The request object is found among the handler's arguments (the first with `.headers`,
or a `request=` keyword) or, for Flask, the active `flask.request`. Adapters cover
Starlette/FastAPI, Flask and Django requests, and any object with a `.headers` mapping.
A rejection (504 expired deadline, 503 shed, 403 denied by the policy's `authorization`
section) is returned in the framework's own response type; for a generic request object,
`HandlerRejected` is raised instead.
"""

from __future__ import annotations

import functools
import inspect
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

from ..errors import MeshError
from ..security.inbound import InboundGate
from ._inbound import Rejection, ServerScope, status_of
from .shedding import limiter

F = TypeVar("F", bound=Callable[..., Any])


class HandlerRejected(MeshError):
    """Raised by a handler on a generic request object when the request is rejected
    (expired deadline: 504; shed: 503; denied: 403). `status` and `headers` say what to
    answer."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.body.decode().strip())
        self.status = rejection.status
        self.headers = dict(rejection.headers)


def _flask_request() -> Any:
    flask = sys.modules.get("flask")
    if flask is not None and flask.has_request_context():
        return flask.request
    return None


def find_request(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    """The request among a handler's arguments, or Flask's current request, or None."""
    req = kwargs.get("request")
    if req is not None and hasattr(req, "headers"):
        return req
    for arg in args:
        if hasattr(arg, "headers") and not isinstance(arg, (str, bytes, dict)):
            return arg
    return _flask_request()


def _family(req: Any) -> str:
    module = type(req).__module__
    for family in ("starlette", "werkzeug", "flask", "django"):
        if module.startswith(family):
            return "flask" if family == "werkzeug" else family
    return "generic"


def lower_headers(headers: Any) -> dict[str, str]:
    items = headers.items() if hasattr(headers, "items") else headers
    return {str(k).lower(): str(v) for k, v in items}


class LazyGate:
    """The handler's `InboundGate`, built at its first request rather than at import time
    (decorators run before the process has configured its policy)."""

    def __init__(self, policy: Any, service: str) -> None:
        self._args = (policy, service)
        self._gate: InboundGate | None = None
        self._lock = threading.Lock()

    def get(self) -> InboundGate:
        gate = self._gate
        if gate is None:
            with self._lock:
                if self._gate is None:
                    self._gate = InboundGate(*self._args)
                gate = self._gate
        return gate


def _address(req: Any) -> str | None:
    client = getattr(req, "client", None)  # Starlette
    host = getattr(client, "host", None)
    if isinstance(host, str):
        return host
    addr = getattr(req, "remote_addr", None)  # Flask
    if isinstance(addr, str):
        return addr
    meta = getattr(req, "META", None)  # Django
    return meta.get("REMOTE_ADDR") if isinstance(meta, Mapping) else None


def scope_for(req: Any, limit: Any, route: str | None,
              gate: InboundGate | None = None) -> ServerScope:
    if req is None:
        return ServerScope({}, "GET", None, route=route, limit=limit, gate=gate)
    url = getattr(req, "url", None)
    path = getattr(req, "path", None)
    if not isinstance(path, str):
        path = getattr(url, "path", None)
    scheme = getattr(url, "scheme", None) or getattr(req, "scheme", None) or "http"
    return ServerScope(lower_headers(req.headers), str(getattr(req, "method", "GET")), path,
                       route=route, scheme=str(scheme), limit=limit, gate=gate,
                       address=_address(req))


def reject_response(req: Any, rejection: Rejection) -> Any:
    """The rejection as the framework's response object (raises for generic requests)."""
    family = _family(req) if req is not None else "generic"
    headers = dict(rejection.headers)
    if family == "starlette":
        from starlette.responses import Response

        return Response(rejection.body, rejection.status, headers)
    if family == "flask":
        import flask

        return flask.Response(rejection.body, rejection.status, headers)
    if family == "django":
        from django.http import HttpResponse  # type: ignore[import-not-found]

        return HttpResponse(rejection.body, status=rejection.status, headers=headers)
    raise HandlerRejected(rejection)


@overload
def handler(fn: F) -> F: ...
@overload
def handler(fn: None = None, *, max_concurrency: int | None = None,
            retry_after_s: float = 1.0, route: str | None = None, policy: Any = None,
            service: str = "inbound") -> Callable[[F], F]: ...


def handler(fn: F | None = None, *, max_concurrency: int | None = None,
            retry_after_s: float = 1.0, route: str | None = None, policy: Any = None,
            service: str = "inbound") -> F | Callable[[F], F]:
    """Decorate an inbound handler (sync or async).

    **Parameters:**

    * **max_concurrency** - shed (503 + `Retry-After: retry_after_s`) beyond this many
      requests in this handler at once; None (default) never sheds.
    * **route** - the route template for span names and `http.route` (e.g. `/users/{id}`).
    * **policy**, **service** - where the `authorization` rules come from (default: the
      process's store, read at the first request) and the name denials are reported under.

    Usage:
    ```python
    @app.get("/users/{id}")
    @meshclient.handler(max_concurrency=64)
    async def get_user(request: Request, id: str): ...
    ```
    """
    limit = limiter(max_concurrency, retry_after_s)
    gate = LazyGate(policy, service)

    def decorate(func: F) -> F:
        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                req = find_request(args, kwargs)
                scope = scope_for(req, limit, route, gate.get())
                rejection = scope.enter()
                if rejection is not None:
                    scope.exit(rejection.status)
                    return reject_response(req, rejection)
                try:
                    result = await func(*args, **kwargs)
                except BaseException as exc:
                    scope.exit(500, exc)
                    raise
                scope.exit(status_of(result))
                return result

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            req = find_request(args, kwargs)
            scope = scope_for(req, limit, route, gate.get())
            rejection = scope.enter()
            if rejection is not None:
                scope.exit(rejection.status)
                return reject_response(req, rejection)
            try:
                result = func(*args, **kwargs)
            except BaseException as exc:
                scope.exit(500, exc)
                raise
            scope.exit(status_of(result))
            return result

        return wrapper  # type: ignore[return-value]

    return decorate if fn is None else decorate(fn)
