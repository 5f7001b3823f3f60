"""`@meshclient.handler`: the inbound side for one handler function, sync or async.

The request object is found among the handler's arguments (the first with `.headers`,
or a `request=` keyword) or, for Flask, the active `flask.request`. Adapters cover
Starlette/FastAPI, Flask and Django requests, and any object with a `.headers` mapping.
A rejection (504 expired deadline, 503 shed, 401 invalid end-user token, a check's denial,
403 denied by the policy's `authorization` section) is returned in the framework's own
response type; for a generic request object, `HandlerRejected` is raised instead.

FastAPI calls an endpoint with the parameters its signature declares, by keyword, so an
endpoint without a `request` parameter would never show the decorator its request. Where
Starlette is loaded, the wrapper therefore declares one more keyword-only parameter,
`meshclient_request: starlette.requests.HTTPConnection`, which FastAPI fills with the
request and the wrapper removes before calling the function; the rest of the signature is
the function's own (FastAPI resolves its annotations in the function's module through
`__wrapped__`). `HTTPConnection`, not `Request`: FastAPI fills one parameter of each of
those types, and the endpoint's own `req: Request` must keep its slot.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar, overload

from ..context import RETRIES_SPENT_HEADER, spent_mark
from ..errors import MeshError
from ..security.checks import CheckFn
from ..security.inbound import InboundGate
from ..security.wsgi import server_ip, server_port
from .inbound import Rejection, ServerScope, status_of
from .request_edits import edit_request
from .shedding import limiter

F = TypeVar("F", bound=Callable[..., Any])


class HandlerRejected(MeshError):
    """Raised by a handler on a generic request object when the request is rejected
    (expired deadline: 504; shed: 503; invalid token: 401; a check's denial: its status;
    denied: 403; over `inbound_limits`: 429). `status` and `headers` say what to answer."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.body.decode().strip())
        self.status = rejection.status
        self.headers = dict(rejection.headers)


def _flask_request() -> Any:
    flask = sys.modules.get("flask")
    if flask is not None and flask.has_request_context():
        return flask.request
    return None


#: The keyword-only parameter through which FastAPI hands the wrapper its request.
REQUEST_PARAM = "meshclient_request"


def find_request(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The request among a handler's arguments, or Flask's current request, or None.
    Removes `REQUEST_PARAM` from `kwargs` (the function does not declare it)."""
    req = kwargs.pop(REQUEST_PARAM, None)
    if req is not None:
        return req
    req = kwargs.get("request")
    if req is not None and hasattr(req, "headers"):
        return req
    for arg in args:
        if hasattr(arg, "headers") and not isinstance(arg, (str, bytes, dict)):
            return arg
    return _flask_request()


def declare_request_param(func: Callable[..., Any], wrapper: Callable[..., Any]) -> None:
    """Give `wrapper` a signature with `REQUEST_PARAM` (see the module docstring) when
    Starlette is loaded and `func` has no `request` parameter of its own."""
    if "starlette" not in sys.modules:
        return
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):  # pragma: no cover - builtins, C callables
        return
    if "request" in sig.parameters or REQUEST_PARAM in sig.parameters:
        return
    from starlette.requests import HTTPConnection

    params = list(sig.parameters.values())
    at = len(params) - (1 if params and params[-1].kind is inspect.Parameter.VAR_KEYWORD else 0)
    params.insert(at, inspect.Parameter(REQUEST_PARAM, inspect.Parameter.KEYWORD_ONLY,
                                        annotation=HTTPConnection))
    wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]


def matched_route(req: Any) -> str | None:
    """The route template the framework matched: Starlette's `scope["route"]`, Django's
    `resolver_match.route`, Flask's `url_rule`."""
    scope = getattr(req, "scope", None)  # Django's ASGIRequest has one too, without "route"
    path = getattr(scope.get("route"), "path", None) if isinstance(scope, Mapping) else None
    if isinstance(path, str):
        return path
    route = getattr(getattr(req, "resolver_match", None), "route", None)
    if isinstance(route, str):
        return "/" + route.lstrip("/")
    rule = getattr(getattr(req, "url_rule", None), "rule", None)
    return rule if isinstance(rule, str) else None


#: Exceptions Django turns into a response of its own (not a 500).
_DJANGO_STATUS = {"Http404": 404, "PermissionDenied": 403, "BadRequest": 400,
                  "SuspiciousOperation": 400}


def error_status(exc: BaseException) -> int:
    """The status the framework answers for an exception raised by a handler: Starlette/
    FastAPI `HTTPException.status_code`, werkzeug's `.code`, Django's 404/403/400; else 500."""
    code = getattr(exc, "status_code", None)
    for cls in type(exc).__mro__:  # the framework's own class, or an app's subclass of it
        if isinstance(code, int):
            break
        if cls.__module__.startswith("werkzeug"):
            code = getattr(exc, "code", None)
        elif cls.__module__.startswith("django"):
            code = _DJANGO_STATUS.get(cls.__name__)
    return code if isinstance(code, int) and 100 <= code <= 599 else 500


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

    def __init__(self, policy: Any, service: str, **options: Any) -> None:
        self._args = (policy, service)
        self._options = options
        self._gate: InboundGate | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<LazyGate service={self._args[1]!r} gate={self._gate!r}>"

    def get(self) -> InboundGate:
        gate = self._gate
        if gate is None:
            with self._lock:
                if self._gate is None:
                    self._gate = InboundGate(*self._args, **self._options)
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


def _server(req: Any) -> tuple[str | None, int | None]:
    """(IP, port) the request reached this server on, when the framework says: the ASGI
    scope's `server` (Starlette), the WSGI environ (Flask's `environ`, Django's `META`)."""
    scope = getattr(req, "scope", None)
    if isinstance(scope, Mapping):
        server = scope.get("server")
        if isinstance(server, (tuple, list)) and len(server) == 2:
            ip, port = server
            return (ip if isinstance(ip, str) else None,
                    port if isinstance(port, int) else None)
    environ = getattr(req, "environ", None)
    if not isinstance(environ, Mapping):
        environ = getattr(req, "META", None)
    if isinstance(environ, Mapping):
        return server_ip(environ), server_port(environ)
    return None, None


def _query(req: Any) -> str:
    url = getattr(req, "url", None)
    query = getattr(url, "query", None)  # Starlette
    if isinstance(query, str):
        return query
    raw = getattr(req, "query_string", None)  # Flask
    if isinstance(raw, bytes):
        return raw.decode("latin-1")
    meta = getattr(req, "META", None)  # Django
    value = meta.get("QUERY_STRING") if isinstance(meta, Mapping) else None
    return value if isinstance(value, str) else ""


def scope_for(req: Any, limit: Any, route: str | None,
              gate: InboundGate | None = None) -> ServerScope:
    if req is None:
        return ServerScope({}, "GET", None, route=route, limit=limit, gate=gate)
    route = route or matched_route(req)
    url = getattr(req, "url", None)
    path = getattr(req, "path", None)
    if not isinstance(path, str):
        path = getattr(url, "path", None)
    scheme = getattr(url, "scheme", None) or getattr(req, "scheme", None) or "http"
    local_ip, port = _server(req)
    return ServerScope(lower_headers(req.headers), str(getattr(req, "method", "GET")), path,
                       route=route, scheme=str(scheme), limit=limit, gate=gate,
                       address=_address(req), query=_query(req), port=port,
                       local_ip=local_ip)


def finish(scope: ServerScope, result: Any) -> Any:
    """Exit `scope` with the handler's `result`, marked with `x-mesh-retries-spent` when it
    is a failure answer after an outbound call gave up on its retries: a response object
    with a `.headers` mapping, or Flask's `(body, status)`."""
    status = status_of(result)
    if scope.inbound.spent:
        headers = getattr(result, "headers", None)
        forwarded = headers.get(RETRIES_SPENT_HEADER) if headers is not None else None
        mark = spent_mark(scope.inbound, status, forwarded)
        if mark is not None and headers is not None:
            headers[RETRIES_SPENT_HEADER] = mark
        elif mark is not None and isinstance(result, tuple) and len(result) == 2:
            result = (*result, {RETRIES_SPENT_HEADER: mark})
    scope.exit(status)
    return result


def reject_response(req: Any, rejection: Rejection) -> Any:
    """The rejection as the framework's response object (raises for generic requests)."""
    family = _family(req) if req is not None else "generic"
    headers = dict(rejection.headers)
    if family == "starlette":
        from starlette.responses import Response

        return Response(rejection.body, rejection.status, headers, media_type="text/plain")
    if family == "flask":
        import flask

        return flask.Response(rejection.body, rejection.status, headers,
                              content_type="text/plain")
    if family == "django":
        from django.http import HttpResponse

        return HttpResponse(rejection.body, status=rejection.status, headers=headers,
                            content_type="text/plain")
    raise HandlerRejected(rejection)


@overload
def handler(fn: F) -> F: ...
@overload
def handler(fn: None = None, *, max_concurrency: int | None = None,
            retry_after_s: float = 1.0, route: str | None = None, policy: Any = None,
            service: str = "inbound", check: CheckFn | None = None,
            check_timeout: float = 0.2, check_fail_open: bool = False
            ) -> Callable[[F], F]: ...


def handler(fn: F | None = None, *, max_concurrency: int | None = None,
            retry_after_s: float = 1.0, route: str | None = None, policy: Any = None,
            service: str = "inbound", check: CheckFn | None = None,
            check_timeout: float = 0.2, check_fail_open: bool = False
            ) -> F | Callable[[F], F]:
    """Decorate an inbound handler (sync or async).

    **Parameters:**

    * **max_concurrency** - shed (503 + `Retry-After: retry_after_s`) beyond this many
      requests in this handler at once; None (default) never sheds.
    * **route** - the route template for span names and `http.route` (e.g. `/users/{id}`).
    * **policy**, **service** - where the `authentication` and `authorization` sections
      come from (default: the process's store, read at the first request) and the name
      denials are reported under.
    * **check**, **check_timeout**, **check_fail_open** - a function of a `RequestView`
      answering `Allow` or `Deny`, run for every request (docs/checks.md). Headers an
      `Allow` adds are not applied to a framework's request object here (the middlewares
      apply them); the verified end user is in `meshclient.context.current_auth()`.

    Usage (FastAPI; a `request: Request` parameter is optional, see the module docstring):
    ```python
    @app.get("/users/{id}")
    @meshclient.handler(max_concurrency=64)
    async def get_user(id: str): ...
    ```
    """
    limit = limiter(max_concurrency, retry_after_s)
    if check is not None and not callable(check):
        raise TypeError(f"check must be a function of a RequestView, not "
                        f"{type(check).__name__}")
    gate = LazyGate(policy, service, check=check, check_timeout=check_timeout,
                    check_fail_open=check_fail_open)

    def rejected(scope: ServerScope, req: Any, rejection: Rejection | None) -> Any:
        if rejection is None:
            if req is not None:
                edit_request(req, scope.admitted)  # the gate's header edits
            return None
        scope.exit(rejection.status)
        return reject_response(req, rejection)

    def enter(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[ServerScope, Any]:
        """The request's scope, entered; and the rejection response to return, or None."""
        req = find_request(args, kwargs)
        scope = scope_for(req, limit, route, gate.get())
        return scope, rejected(scope, req, scope.enter())

    async def enter_async(args: tuple[Any, ...], kwargs: dict[str, Any]
                          ) -> tuple[ServerScope, Any]:
        req = find_request(args, kwargs)
        scope = scope_for(req, limit, route, gate.get())
        return scope, rejected(scope, req, await scope.enter_async())

    @contextlib.contextmanager
    def failing(scope: ServerScope) -> Iterator[None]:
        """Around the handler's call: an exception ends the scope with its status."""
        try:
            yield
        except BaseException as exc:
            status = error_status(exc)  # an HTTPException(404) is an answer, not a failure
            scope.exit(status, exc if status >= 500 else None)
            raise

    def decorate(func: F) -> F:
        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                scope, answer = await enter_async(args, kwargs)  # answer: the rejection, if any
                if answer is None:
                    with failing(scope):
                        result = await func(*args, **kwargs)
                    answer = finish(scope, result)
                return answer

            declare_request_param(func, async_wrapper)
            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            scope, answer = enter(args, kwargs)  # answer: the rejection, if any
            if answer is None:
                with failing(scope):
                    result = func(*args, **kwargs)
                answer = finish(scope, result)
            return answer

        declare_request_param(func, wrapper)
        return wrapper  # type: ignore[return-value]

    return decorate if fn is None else decorate(fn)
