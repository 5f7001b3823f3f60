"""A Django service with `@meshclient.handler` on its views (one sync, one async), calling
a backend through the mesh.

    python examples/django_service.py

A minimal Django project in one file (settings configured in code, this module as the
URLconf, no database), its WSGI application served by wsgiref on 127.0.0.1. `GET
/orders/<id>` (a sync view) calls the logical service `users` through `meshclient.Client`;
`users` is two real loopback backends (`meshclient.testing.Backend`, which answer with the
headers they received). `GET /health` is an `async def` view, which Django runs under WSGI
too. The output shows `users` receiving what is left of the caller's deadline and the
caller's trace id, and a request whose deadline has already passed answered 504 without
running the view. For the whole app instead of single views:
`application = meshclient.wsgi.MeshMiddleware(get_wsgi_application())`.

Needs django (`pip install 'meshclient[django]'`).
"""

from __future__ import annotations

import sys
import threading
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import django
import httpx
from django.conf import settings

import meshclient
from meshclient.testing import Backend

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"

urlpatterns: list[Any] = []  # this module is the URLconf; main() fills it in
clients: dict[str, meshclient.Client] = {}


@meshclient.handler
def order(request: Any, order_id: int) -> Any:
    from django.http import JsonResponse

    r = clients["users"].get(f"http://users/users/{order_id % 7}")
    seen = {k.lower(): v for k, v in r.json()["headers"].items()}
    return JsonResponse({"order": order_id, "users_status": r.status_code,
                         "users_saw_deadline_ms": seen.get("x-mesh-deadline-ms"),
                         "users_saw_traceparent": seen.get("traceparent")})


@meshclient.handler
async def health(request: Any) -> Any:
    from django.http import JsonResponse

    from meshclient.context import inbound

    current = inbound.get()
    return JsonResponse({"ok": True, "attempt": current.attempt if current else None})


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def main() -> int:
    settings.configure(DEBUG=False, SECRET_KEY="example-only", ROOT_URLCONF=__name__,
                       ALLOWED_HOSTS=["127.0.0.1"], MIDDLEWARE=[], INSTALLED_APPS=[],
                       DATABASES={}, USE_TZ=True)
    django.setup()
    from django.core.wsgi import get_wsgi_application
    from django.urls import path

    urlpatterns[:] = [path("orders/<int:order_id>", order), path("health", health)]
    backends = [Backend(f"127.0.0.{2 + i}", name=f"users-{i}").start() for i in range(2)]
    server = None
    thread = None
    try:
        policy = meshclient.Policy.from_dict(
            {"services": {"users": {"endpoints": [b.address for b in backends]}}})
        clients["users"] = meshclient.Client(policy=policy, timeout=5.0)
        server = make_server("127.0.0.1", 0, get_wsgi_application(),
                             server_class=ThreadingWSGIServer, handler_class=QuietHandler)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                  daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        headers = {"x-mesh-deadline-ms": "2000", "traceparent": TRACEPARENT}
        r = httpx.get(f"{base}/orders/10", headers=headers, timeout=10)
        body = r.json()
        print(f"GET /orders/10 -> {r.status_code}: users answered {body['users_status']}, "
              f"saw x-mesh-deadline-ms {body['users_saw_deadline_ms']} (caller sent 2000)")
        same = TRACE_ID in (body["users_saw_traceparent"] or "")
        print(f"  users saw the caller's trace id: {same}")
        r = httpx.get(f"{base}/orders/11", headers={"x-mesh-deadline-ms": "0"}, timeout=10)
        print(f"GET /orders/11 with a spent deadline -> {r.status_code} ({r.text.strip()})")
        r = httpx.get(f"{base}/health", headers={"x-mesh-attempt": "2"}, timeout=10)
        print(f"GET /health (async view) -> {r.status_code}: attempt {r.json()['attempt']}")
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(10)
        if "users" in clients:
            clients.pop("users").close()
        for backend in backends:
            backend.stop()
    print("done: the Django service called users through the mesh")
    return 0


if __name__ == "__main__":
    sys.exit(main())
