"""The inbound gate's header edits (a verified token removed, claims and a check's headers
added) applied to a framework's request object, for the handler decorator.

The middlewares edit the ASGI scope or WSGI environ before the app sees them; a decorated
handler already holds its request object, so the edits go to what that object reads its
headers from:

- Starlette / FastAPI: the scope's `headers` list (the request's cached `Headers` view is
  dropped, so the next read sees the edit);
- Flask (Werkzeug): the WSGI environ its `headers` view reads live;
- Django: `META`, and its cached `headers` view is dropped;
- any other object whose `headers` is a mutable mapping: that mapping.

An object with none of these keeps its headers (its handler sees the request unedited; the
verified claims are still in `meshclient.context`).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from ..security.asgi import edit_headers
from ..security.gate import Admitted
from ..security.wsgi import edit_environ


def edit_request(req: Any, admitted: Admitted | None) -> bool:
    """Apply `admitted`'s header edits to `req`; whether it could be edited (True also
    when there is nothing to edit)."""
    if admitted is None or not (admitted.add_headers or admitted.remove_headers):
        return True
    scope = getattr(req, "scope", None)
    if isinstance(scope, MutableMapping) and "headers" in scope:  # Starlette
        edit_headers(scope, admitted)
        vars(req).pop("_headers", None)
        return True
    environ = getattr(req, "environ", None)  # Flask: its headers view reads the environ
    if isinstance(environ, MutableMapping):
        edit_environ(environ, admitted)
        return True
    meta = getattr(req, "META", None)  # Django
    if isinstance(meta, MutableMapping):
        edit_environ(meta, admitted)
        vars(req).pop("headers", None)  # its cached view, read again on next use
        return True
    headers = getattr(req, "headers", None)
    if isinstance(headers, MutableMapping):
        for name in admitted.remove_headers:
            _drop(headers, name)
        for name, value in admitted.add_headers:
            _drop(headers, name)
            headers[name] = value
        return True
    return False


def _drop(headers: MutableMapping[str, Any], name: str) -> None:
    for key in [k for k in headers if isinstance(k, str) and k.lower() == name]:
        del headers[key]


__all__ = ["edit_request"]

