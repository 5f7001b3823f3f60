"""The decorator's framework adapters without a server: the status an exception stands for,
the signature the wrapper shows FastAPI, the request found among the arguments."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import meshclient
from meshclient.server.decorators import REQUEST_PARAM, error_status, find_request, matched_route


def test_error_status() -> None:
    starlette = pytest.importorskip("starlette.exceptions")
    werkzeug = pytest.importorskip("werkzeug.exceptions")
    assert error_status(starlette.HTTPException(404)) == 404
    assert error_status(werkzeug.NotFound()) == 404

    class Teapot(werkzeug.HTTPException):  # an app's own subclass
        code = 418

    assert error_status(Teapot()) == 418
    assert error_status(ValueError("boom")) == 500
    assert error_status(SystemExit(3)) == 500  # `.code`, but not an HTTP status


def test_error_status_django() -> None:
    exceptions = pytest.importorskip("django.core.exceptions")
    http = pytest.importorskip("django.http")
    assert error_status(http.Http404()) == 404
    assert error_status(exceptions.PermissionDenied()) == 403
    assert error_status(exceptions.SuspiciousOperation()) == 400
    assert error_status(exceptions.DisallowedHost()) == 400  # a subclass


def test_wrapper_declares_the_request_parameter_fastapi_fills() -> None:
    requests = pytest.importorskip("starlette.requests")

    @meshclient.handler
    async def bare(id: int, *rest: Any, q: str = "", **extra: Any) -> None: ...

    @meshclient.handler
    def own(request: Any, id: int) -> None: ...

    params = inspect.signature(bare).parameters
    assert list(params) == ["id", "rest", "q", REQUEST_PARAM, "extra"]  # before **extra
    assert params[REQUEST_PARAM].kind is inspect.Parameter.KEYWORD_ONLY
    assert params[REQUEST_PARAM].annotation is requests.HTTPConnection
    assert list(inspect.signature(own).parameters) == ["request", "id"]  # unchanged


def test_find_request_takes_the_added_parameter_out() -> None:
    class Req:
        headers = {"x-mesh-attempt": "2"}

    req = Req()
    kwargs: dict[str, Any] = {REQUEST_PARAM: req, "id": 1}
    assert find_request((), kwargs) is req and kwargs == {"id": 1}
    assert find_request((), {"request": req}) is req
    assert find_request(("text", req), {}) is req
    assert find_request((), {}) is None


def test_matched_route_needs_a_framework() -> None:
    class Req:
        headers: dict[str, str] = {}
        scope = {"type": "http"}  # an ASGI scope with no matched route (Django's ASGIRequest)

    assert matched_route(Req()) is None
    assert matched_route(object()) is None
