"""The inbound scope and the status rendering, without I/O (FakeClock)."""

from __future__ import annotations

import threading

from meshclient._cli.status import render
from meshclient.context import inbound
from meshclient.server import ConcurrencyLimit, ServerScope
from meshclient.server.decorators import lower_headers
from meshclient.testing import FakeClock
from tests.servers.helpers import run_threads


def test_scope_sets_and_resets_the_inbound_context() -> None:
    clock = FakeClock()
    scope = ServerScope({"x-mesh-deadline-ms": "250", "x-mesh-attempt": "2"}, "GET", "/x",
                        clock=clock)
    assert scope.enter() is None
    current = inbound.get()
    assert current is not None and current.attempt == 2 and current.is_retry
    assert current.deadline_ns == clock.now_ns() + 250_000_000
    scope.exit(200)
    assert inbound.get() is None


def test_scope_rejects_expired_and_releases_permits() -> None:
    clock = FakeClock()
    limit = ConcurrencyLimit(1)
    expired = ServerScope({"x-mesh-deadline-ms": "0"}, "GET", clock=clock, limit=limit)
    rejection = expired.enter()
    assert rejection is not None and rejection.status == 504
    expired.exit(rejection.status)
    assert limit.in_flight == 0
    first = ServerScope({}, "GET", clock=clock, limit=limit)
    assert first.enter() is None
    second = ServerScope({}, "GET", clock=clock, limit=limit)
    shed = second.enter()
    assert shed is not None and shed.status == 503 and dict(shed.headers)["retry-after"] == "1"
    second.exit(503)
    first.exit(200)
    assert limit.in_flight == 0


def test_malformed_headers_are_ignored() -> None:
    scope = ServerScope({"x-mesh-deadline-ms": "soon", "x-mesh-attempt": "-3"}, "GET",
                        clock=FakeClock())
    assert scope.enter() is None
    assert scope.inbound.deadline_ns is None and scope.inbound.attempt == 1
    scope.exit(200)


def test_limit_is_exact_under_threads() -> None:
    limit = ConcurrencyLimit(5)
    admitted = []
    lock = threading.Lock()

    def grab() -> None:
        ok = limit.try_acquire()
        with lock:
            admitted.append(ok)

    run_threads([grab] * 40, 5)
    assert admitted.count(True) == 5 and limit.in_flight == 5


def test_lower_headers() -> None:
    assert lower_headers({"X-Mesh-Attempt": "2"}) == {"x-mesh-attempt": "2"}
    assert lower_headers([("TraceParent", "x")]) == {"traceparent": "x"}


def test_render_status() -> None:
    doc = {"pid": 7, "registries": [{"policy": "v3", "generation": 2, "services": {
        "users": {"service": "users", "budget_balance": 42, "retries": 3,
                  "endpoints": [{"endpoint": "10.0.0.1:80", "estimate_ms": 12.345,
                                 "in_flight": 1, "breaker": "open", "ejected": True}]},
        "empty": {"service": "empty", "endpoints": []}}}]}
    text = render(doc)
    assert "policy v3 (generation 2)" in text
    assert "users  budget 42  retries=3" in text
    assert "10.0.0.1:80  12.3        1          open     True" in text
    assert "(no endpoints)" in text
    assert render({"pid": 1, "registries": []}).endswith("(no mesh transports in this process yet)")
