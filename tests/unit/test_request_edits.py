"""The gate's header edits reach a decorated handler's request object, whatever the
framework: Starlette's scope, Werkzeug's environ, a plain mapping (Django's META: in
tests/integration/test_handler_django.py, which owns Django's settings)."""

from __future__ import annotations

from typing import Any

import pytest

from meshclient.security.authz import Caller
from meshclient.security.gate import Admitted
from meshclient.server.request_edits import edit_request

EDITS = Admitted(Caller(None, "none"), None, (("x-user", "alice"),), ("authorization",))


def test_starlette_request_sees_the_edit_after_reading_headers_before() -> None:
    requests = pytest.importorskip("starlette.requests")
    req = requests.Request({"type": "http", "method": "GET", "path": "/", "headers": [
        (b"authorization", b"Bearer t"), (b"x-user", b"mallory")]})
    assert req.headers["x-user"] == "mallory"  # read (and cached) before the edit
    assert edit_request(req, EDITS)
    assert req.headers.get("x-user") == "alice" and "authorization" not in req.headers


def test_werkzeug_request_reads_the_edited_environ() -> None:
    wrappers = pytest.importorskip("werkzeug.wrappers")
    req = wrappers.Request({"REQUEST_METHOD": "GET", "HTTP_AUTHORIZATION": "Bearer t",
                            "wsgi.input": None})
    assert req.headers.get("Authorization") == "Bearer t"
    assert edit_request(req, EDITS)
    assert req.headers.get("X-User") == "alice" and req.headers.get("Authorization") is None


def test_plain_mapping_headers_and_an_object_without_headers() -> None:
    class Plain:
        def __init__(self) -> None:
            self.headers: dict[str, Any] = {"Authorization": "Bearer t", "X-User": "mallory"}

    req = Plain()
    assert edit_request(req, EDITS)
    assert req.headers == {"x-user": "alice"}
    assert not edit_request(object(), EDITS)
    assert edit_request(object(), None)  # nothing to edit
