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

import ipaddress
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from http import HTTPStatus
from typing import Any

from .gate import Admitted, InboundRequest, Refused
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


def status_line(code: int) -> str:
    """`"403 Forbidden"` for 403; a code without a standard phrase gets "Unknown"."""
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"{code} Unknown"


def server_port(environ: Mapping[str, Any]) -> int | None:
    port = environ.get("SERVER_PORT")
    return int(port) if isinstance(port, str) and port.isdigit() and len(port) <= 5 else None


def server_ip(environ: Mapping[str, Any]) -> str | None:
    """The IP address the server was reached on: `SERVER_ADDR` (set by many servers, not
    by PEP 3333), else `SERVER_NAME` when it is an IP literal."""
    for key in ("SERVER_ADDR", "SERVER_NAME"):
        value = environ.get(key)
        if isinstance(value, str) and _is_ip(value):
            return value
    return None


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def edit_environ(environ: MutableMapping[str, Any], admitted: Admitted | None) -> None:
    """Apply the gate's header edits (a verified token removed, claims and a check's
    headers added) to the environ the app sees."""
    if admitted is None:
        return
    for name in admitted.remove_headers:
        environ.pop("HTTP_" + name.upper().replace("-", "_"), None)
    for name, value in admitted.add_headers:
        environ["HTTP_" + name.upper().replace("-", "_")] = value


class AuthorizationMiddleware(Gated[WSGIApp]):
    """**Parameters:** `app`; `policy` (an `AuthorizationPolicy`, `Policy`, `PolicyStore` or
    None for the process's store); `service` (the name events are reported under)."""

    def __call__(self, environ: dict[str, Any],
                 start_response: StartResponse) -> Iterable[bytes]:
        outcome = self.gate.decide_sync(InboundRequest(
            _headers(environ), environ.get("REQUEST_METHOD", "GET"),
            environ.get("PATH_INFO", "/"), environ.get("QUERY_STRING", ""),
            environ.get("REMOTE_ADDR"), client_tls(environ), server_port(environ),
            server_ip(environ)))
        if isinstance(outcome, Refused):
            start_response(status_line(outcome.status),
                           [("Content-Length", str(len(outcome.body))), *outcome.headers])
            return [outcome.body]
        environ["meshclient.caller"] = outcome.caller
        edit_environ(environ, outcome)
        return self.app(environ, start_response)
