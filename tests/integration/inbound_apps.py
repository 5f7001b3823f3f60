"""The same small app behind each inbound entry point (ASGI and WSGI middleware, the
handler decorator on an async Starlette endpoint and on a sync Flask view), served on
loopback. Each answers JSON: the verified end user, the caller and the headers it saw."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import meshclient
import meshclient.asgi
import meshclient.wsgi
from meshclient.context import current_auth
from tests.servers.threaded import serve_asgi, serve_wsgi

KINDS = ["mesh-asgi", "mesh-wsgi", "handler-async", "handler-sync"]


def _answer(headers: dict[str, str]) -> dict[str, Any]:
    auth = current_auth()
    return {"principal": auth.principal if auth else None,
            "claims": dict(auth.claims) if auth else {},
            "authorization": headers.get("authorization"),
            "x-user": headers.get("x-user"), "x-checked": headers.get("x-checked")}


async def _asgi_app(scope: Any, receive: Any, send: Any) -> None:
    headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
    body = json.dumps(_answer(headers)).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def _wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items()
               if k.startswith("HTTP_")}
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(_answer(headers)).encode()]


@contextmanager
def serve(kind: str, **options: Any) -> Iterator[str]:
    """Serve the app behind `kind`, with `options` (policy=, check=, …) for it."""
    if kind == "mesh-asgi":
        with serve_asgi(meshclient.asgi.MeshMiddleware(_asgi_app, **options)) as url:
            yield url
    elif kind == "mesh-wsgi":
        with serve_wsgi(meshclient.wsgi.MeshMiddleware(_wsgi_app, **options)) as url:
            yield url
    elif kind == "handler-async":
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        @meshclient.handler(**options)
        async def endpoint(request: Request) -> JSONResponse:
            return JSONResponse(_answer(dict(request.headers)))

        app = Starlette(routes=[Route("/{rest:path}", endpoint, methods=["GET", "POST"])])
        with serve_asgi(app) as url:
            yield url
    else:
        import flask

        flask_app = flask.Flask("inbound")

        @flask_app.route("/<path:rest>", methods=["GET", "POST"])
        @meshclient.handler(**options)
        def view(rest: str) -> Any:
            return flask.jsonify(_answer({k.lower(): v for k, v in
                                          flask.request.headers.items()}))

        with serve_wsgi(flask_app) as url:
            yield url
