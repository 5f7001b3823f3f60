"""A Flask service with the mesh's WSGI middleware, calling a backend through the mesh.

    python examples/flask_wsgi.py

`orders` (a Flask app, served by werkzeug on 127.0.0.1) handles `GET /orders/<id>` by
calling the logical service `users` through `meshclient.Client`; `users` is two real
loopback backends (`meshclient.testing.Backend`). `meshclient.wsgi.MeshMiddleware`
takes the caller's trace context and deadline into the request, so the outbound call
continues the trace and inherits what is left of the deadline.

Needs flask (`pip install 'meshclient[flask]'`).
"""

from __future__ import annotations

import logging
import sys
import threading

import httpx
from flask import Flask, jsonify
from werkzeug.serving import make_server

import meshclient
from meshclient.testing import Backend

try:  # inbound side (meshclient.wsgi): trace context, deadline, SERVER span
    from meshclient.wsgi import MeshMiddleware
except ImportError:
    MeshMiddleware = None


def create_app(policy: meshclient.Policy) -> Flask:
    app = Flask("orders")
    users = meshclient.Client(policy=policy, timeout=5.0)  # one client for the process

    @app.get("/orders/<int:order_id>")
    def order(order_id: int) -> object:
        r = users.get(f"http://users/users/{order_id % 7}")
        return jsonify(order=order_id, user_status=r.status_code,
                       user_served_by=r.headers.get("x-backend"))

    app.extensions["users_client"] = users
    if MeshMiddleware is not None:
        app.wsgi_app = MeshMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    return app


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log lines
    if MeshMiddleware is None:
        print("note: meshclient.wsgi.MeshMiddleware is not in this build; running the Flask "
              "app without it (outbound calls still go through the mesh)")
    backends = [Backend(f"127.0.0.{2 + i}", name=f"users-{i}").start() for i in range(2)]
    server = None
    thread = None
    try:
        policy = meshclient.Policy.from_dict(
            {"services": {"users": {"endpoints": [b.address for b in backends]}}})
        app = create_app(policy)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{server.server_port}"
        for order_id in (10, 11, 12, 13):
            r = httpx.get(f"{base}/orders/{order_id}", timeout=10)
            body = r.json()
            print(f"GET /orders/{order_id} -> {r.status_code}: users answered "
                  f"{body['user_status']} from {body['user_served_by']}")
        app.extensions["users_client"].close()
    finally:
        if server is not None:
            server.shutdown()
        if thread is not None:
            thread.join(10)
        for backend in backends:
            backend.stop()
    print("done: the Flask service called users through the mesh")
    return 0


if __name__ == "__main__":
    sys.exit(main())
