"""`MeshMiddleware` for WSGI apps (Flask, Django, any PEP 3333 app).

```python
app.wsgi_app = meshclient.wsgi.MeshMiddleware(app.wsgi_app)          # Flask
application = meshclient.wsgi.MeshMiddleware(get_wsgi_application())  # Django
```

The same contract as `meshclient.asgi.MeshMiddleware` (the caller's TLS identity comes
from the `SSL_CLIENT_*` variables a TLS-terminating server sets; an admitted caller is in
`environ["meshclient.caller"]`; a failure answer is marked with `x-mesh-retries-spent` in the
same way). The app runs, and its response
body is iterated, in a copy of the caller's context holding the request's trace
context, deadline and attempt number; the SERVER span and duration end when the server
closes the response iterable.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .security.checks import CheckFn
from .security.gated import Gated
from .security.wsgi import client_tls, edit_environ, server_ip, server_port, status_line
from .server.inbound import ServerScope, marked_headers
from .server.shedding import limiter

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

__all__ = ["MeshMiddleware"]


def environ_headers(environ: dict[str, Any]) -> dict[str, str]:
    headers = {key[5:].replace("_", "-").lower(): value for key, value in environ.items()
               if key.startswith("HTTP_")}
    for key, name in (("CONTENT_LENGTH", "content-length"), ("CONTENT_TYPE", "content-type")):
        if environ.get(key):  # PEP 3333 keeps these two out of HTTP_*
            headers[name] = environ[key]
    return headers


class _Body:
    """The app's response iterable, iterated and closed inside the request's context."""

    def __init__(self, result: Iterable[bytes], ctx: contextvars.Context,
                 server: ServerScope, status: list[int | None]) -> None:
        self._result = result
        self._it: Iterator[bytes] | None = None
        self._ctx = ctx
        self._server = server
        self._status = status
        self._error: BaseException | None = None

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._it is None:
            self._it = self._ctx.run(iter, self._result)
        try:
            return self._ctx.run(next, self._it)
        except StopIteration:
            raise
        except BaseException as exc:
            self._error = exc
            raise

    def close(self) -> None:
        self._ctx.run(self._close)

    def _close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            self._server.exit(self._status[0], self._error)


class MeshMiddleware(Gated[WSGIApp]):
    """Wrap a WSGI app; the parameters are `meshclient.asgi.MeshMiddleware`'s."""

    def __init__(self, app: WSGIApp, *, max_concurrency: int | None = None,
                 retry_after_s: float = 1.0, policy: Any = None,
                 service: str = "inbound", check: CheckFn | None = None,
                 check_timeout: float = 0.2, check_fail_open: bool = False) -> None:
        self.limit = limiter(max_concurrency, retry_after_s)
        super().__init__(app, policy, service, check=check, check_timeout=check_timeout,
                         check_fail_open=check_fail_open)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Any:
        ctx = contextvars.copy_context()
        return ctx.run(self._call, ctx, environ, start_response)

    def _call(self, ctx: contextvars.Context, environ: dict[str, Any],
              start_response: StartResponse) -> Iterable[bytes]:
        server = ServerScope(environ_headers(environ), environ.get("REQUEST_METHOD", "GET"),
                             environ.get("PATH_INFO"),
                             scheme=environ.get("wsgi.url_scheme", "http"), limit=self.limit,
                             gate=self.gate, address=environ.get("REMOTE_ADDR"),
                             tls=client_tls(environ), query=environ.get("QUERY_STRING", ""),
                             port=server_port(environ), local_ip=server_ip(environ))
        rejection = server.enter()
        if rejection is not None:
            body = rejection.body
            try:
                start_response(status_line(rejection.status),
                               [("Content-Type", "text/plain"),
                                ("Content-Length", str(len(body))),
                                *rejection.headers])
            finally:
                server.exit(rejection.status)
            return [body]
        environ["meshclient.caller"] = server.caller
        edit_environ(environ, server.admitted)
        status: list[int | None] = [None]

        def start(status_line: str, headers: list[tuple[str, str]],
                  exc_info: Any = None) -> Any:
            status[0] = code = int(status_line[:3])
            if server.inbound.spent:  # an outbound call gave up after its retries
                headers = marked_headers(server.inbound, code, headers) or headers
            return start_response(status_line, headers, exc_info)

        try:
            result = self.app(environ, start)
        except BaseException as exc:
            server.exit(status[0], exc)
            raise
        return _Body(result, ctx, server, status)
