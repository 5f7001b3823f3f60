"""WSGI authorization: 403 (no body detail) for callers the policy denies.

```python
app = AuthorizationMiddleware(app)                     # policy from meshclient.default_store()
```
The caller comes from the server's client certificate (`SSL_CLIENT_CERT` PEM or
`SSL_CLIENT_S_DN`, as mod_ssl/mod_wsgi and gunicorn expose them), a verified bearer token,
or a trusted caller header (see `authz`). The `Caller` is put in
`environ["meshclient.caller"]`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .gated import Gated

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    out = {k[5:].replace("_", "-").lower(): v for k, v in environ.items()
           if k.startswith("HTTP_") and isinstance(v, str)}
    if "CONTENT_TYPE" in environ:
        out["content-type"] = environ["CONTENT_TYPE"]
    return out


def client_tls(environ: dict[str, Any]) -> dict[str, Any] | None:
    pem = environ.get("SSL_CLIENT_CERT")
    name = environ.get("SSL_CLIENT_S_DN")
    if not pem and not name:
        return None
    verified = environ.get("SSL_CLIENT_VERIFY", "SUCCESS") == "SUCCESS"
    return {"client_cert_chain": [pem] if pem else [], "client_cert_name": name,
            "client_cert_error": None if verified else environ.get("SSL_CLIENT_VERIFY")}


class AuthorizationMiddleware(Gated[WSGIApp]):
    """**Parameters:** `app`; `policy` (an `AuthorizationPolicy`, `Policy`, `PolicyStore` or
    None for the process's store); `service` (the name events are reported under)."""

    def __call__(self, environ: dict[str, Any],
                 start_response: StartResponse) -> Iterable[bytes]:
        caller = self.gate.check(headers=_headers(environ), address=environ.get("REMOTE_ADDR"),
                                 tls=client_tls(environ), method=environ.get("REQUEST_METHOD", "GET"),
                                 path=environ.get("PATH_INFO", "/"))
        if caller is None:
            start_response("403 Forbidden", [("Content-Length", "0")])
            return [b""]
        environ["meshclient.caller"] = caller
        return self.app(environ, start_response)
