"""What the security guard adds to a request: the mesh transport over an in-memory inner
transport (no network), with no security sections vs with `limits` (rate, bulkhead,
adaptive throttling) and a bearer `auth`, and with a route's own `limits` in front of
those. Prints per-request times and their ratio, measured in one run (interleaved rounds,
best of each).

    python -m benchmarks.security_overhead [requests_per_round]
"""

from __future__ import annotations

import argparse
import os
import time

import httpx

import meshclient
from meshclient.policy import Policy


def _client(policy: Policy) -> httpx.Client:
    inner = httpx.MockTransport(lambda request: httpx.Response(200, content=b"ok"))
    return httpx.Client(transport=meshclient.MeshTransport(policy, inner=inner))


def _round(client: httpx.Client, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        client.get("http://svc/x").read()
    return (time.perf_counter() - start) / n


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("requests", type=int, nargs="?", default=2000,
                        help="requests per client per round")
    parser.add_argument("--quick", action="store_true", help="a short smoke run (300 requests)")
    args = parser.parse_args(argv)
    n = min(args.requests, 300) if args.quick else args.requests
    os.environ.setdefault("BENCH_TOKEN", "bench-token")
    base = Policy.from_dict({"services": {"svc": {"endpoints": ["127.0.0.1:9"]}}})
    guarded = Policy.from_dict({"services": {"svc": {
        "endpoints": ["127.0.0.1:9"],
        "limits": {"rate": 1e6, "burst": 1000, "max_concurrent": 1000},
        "auth": {"bearer": {"token_env": "BENCH_TOKEN"}}}}})
    limits = {"rate": 1e6, "burst": 1000, "max_concurrent": 1000}
    routed = Policy.from_dict({"services": {"svc": {
        "endpoints": ["127.0.0.1:9"], "limits": limits,
        "auth": {"bearer": {"token_env": "BENCH_TOKEN"}},
        "routes": [{"name": "r", "match": {"path": {"prefix": "/x"}}, "limits": limits}]}}})
    plain, secured, route = _client(base), _client(guarded), _client(routed)
    best_plain = best_secured = best_route = float("inf")
    for _ in range(5):
        best_plain = min(best_plain, _round(plain, n))
        best_secured = min(best_secured, _round(secured, n))
        best_route = min(best_route, _round(route, n))
    plain.close()
    secured.close()
    route.close()
    print(f"mesh, no security sections : {best_plain * 1e6:8.1f} us/request")
    print(f"mesh, limits + bearer auth : {best_secured * 1e6:8.1f} us/request")
    print(f"ratio                      : {best_secured / best_plain:8.2f}x "
          f"(+{(best_secured - best_plain) * 1e6:.1f} us)")
    print(f"+ route limits in front    : {best_route * 1e6:8.1f} us/request "
          f"({best_route / best_plain:.2f}x)")
    print(f"the guard alone            : {_guard_cost(guarded, n) * 1e6:8.2f} us/request "
          f"(admit, attach credential, observe, release)")


def _guard_cost(policy: Policy, n: int) -> float:
    from meshclient._core.actions import Send
    from meshclient.discovery.endpoint import Endpoint
    from meshclient.security.registry import SecurityRegistry

    guard = SecurityRegistry().guard(policy.resolved["svc"])
    assert guard is not None
    send = Send(httpx.Request("GET", "http://127.0.0.1:9/x"), Endpoint("127.0.0.1", 9), "svc")
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            guard.admit_sync()
            guard.attach_sync(send)
            guard.observe(200, None)
            guard.release()
        best = min(best, (time.perf_counter() - start) / n)
    return best


if __name__ == "__main__":
    main()
