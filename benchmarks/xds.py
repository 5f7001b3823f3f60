"""What xDS costs a request, and how fast a push reaches requests.

    python -m benchmarks.xds [--requests N] [--rounds R] [--pushes P] [--quick]

1. **Per-request overhead.** The same services (a listener whose route splits 80/20 over two
   clusters) configured two ways: by the test ADS server through `meshclient.xds`, and by a
   policy file holding the very document xDS composed. Both transports send to an in-memory
   inner transport (no sockets), interleaved round by round; the table gives CPU
   microseconds per request and the ratio xDS/file, which should be 1.00 within noise: the
   request path reads the same policy snapshot and never touches gRPC.
2. **Push to first use.** `--pushes` times the route flips between two real loopback
   backends; after each push, requests go out back to back until one reaches the new
   backend. Prints p50 and p99 of that delay (milliseconds, this machine, one run).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

import meshclient
from meshclient.policy import Policy, PolicyStore, policy_to_dict
from meshclient.testing import LoopbackCluster

from ._common import base_parser, interleave, median_ratio, table

TARGET = "users.default.svc.cluster.local:8080"
URL = f"http://{TARGET}/"


def _store(server: object) -> PolicyStore:
    from meshclient.xds import attach, parse_bootstrap

    store = PolicyStore()
    attach(store, parse_bootstrap(json.dumps(server.bootstrap("benchmark"))))  # type: ignore[attr-defined]
    return store


def _overhead(server: object, cluster: LoopbackCluster, requests: int, rounds: int) -> None:
    from tests.servers.xds_resources import serve_split

    serve_split(server, TARGET, {"c-0": 80, "c-1": 20},
                {"c-0": [{"address": cluster[0].address}],
                 "c-1": [{"address": cluster[1].address}]})
    xds_store = _store(server)
    inner = httpx.MockTransport(lambda request: httpx.Response(200, content=b"ok"))
    with httpx.Client(transport=meshclient.MeshTransport(xds_store, inner=inner)) as client:
        client.get(URL)  # the first request subscribes and waits for the resources
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mesh.json"
        path.write_text(json.dumps(policy_to_dict(xds_store.current)))
        file_store = PolicyStore(Policy.load(str(path)))
    clients = {name: httpx.Client(transport=meshclient.MeshTransport(store, inner=inner))
               for name, store in (("xds", xds_store), ("file", file_store))}

    def batch(client: httpx.Client) -> int:
        for _ in range(requests):
            client.get(URL)
        return requests

    try:
        for client in clients.values():
            batch(client)  # warm
        results = interleave(rounds, {name: (lambda c=c: batch(c))
                                      for name, c in clients.items()})
    finally:
        for client in clients.values():
            client.close()
        xds_store.close()
    rows = [(name, statistics.median(r.cpu_us())) for name, r in results.items()]
    print(table(rows, ("policy from", "cpu_us/request")))
    print(f"ratio xds/file (median of rounds): "
          f"{median_ratio(results['xds'].cpu_us(), results['file'].cpu_us()):.3f}")


def _push_to_first_use(server: object, cluster: LoopbackCluster, pushes: int) -> None:
    from tests.servers.ads import ROUTE
    from tests.servers.xds_resources import route, route_config, serve_split

    serve_split(server, TARGET, {"c-0": 100, "c-1": 0},
                {"c-0": [{"address": cluster[0].address}],
                 "c-1": [{"address": cluster[1].address}]})
    store = _store(server)
    delays = []
    with httpx.Client(transport=meshclient.MeshTransport(store)) as client:
        client.get(URL)
        for i in range(1, pushes + 1):
            to = i % 2
            want = cluster[to].name
            time.sleep(0.02)  # the previous push's ACK settles
            start = time.perf_counter()
            server.set(ROUTE, [route_config(  # type: ignore[attr-defined]
                "rc-" + TARGET, ["*"], [route(weights={"c-0": 100 * (1 - to), "c-1": 100 * to})])])
            while client.get(URL).json()["backend"] != want:
                if time.perf_counter() - start > 10:
                    raise RuntimeError(f"push {i} did not arrive within 10 s")
            delays.append((time.perf_counter() - start) * 1000)
    store.close()
    delays.sort()
    p99 = delays[min(len(delays) - 1, round(0.99 * (len(delays) - 1)))]
    print(f"push to first use over {pushes} pushes: p50 {statistics.median(delays):.1f} ms, "
          f"p99 {p99:.1f} ms, max {delays[-1]:.1f} ms")


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0] if __doc__ else "xds")
    parser.add_argument("--requests", type=int, default=2000, help="requests per batch")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds")
    parser.add_argument("--pushes", type=int, default=50, help="route changes to time")
    args = parser.parse_args(argv)
    try:
        from tests.servers.ads import AdsServer
    except ImportError as exc:  # grpcio / xds-protos missing
        print(f"xds: skipped, the xds extra is not installed ({exc})")
        return 0
    requests, rounds, pushes = ((300, 3, 10) if args.quick
                                else (args.requests, args.rounds, args.pushes))
    server = AdsServer().start()
    cluster = LoopbackCluster(2).start()
    try:
        print(f"xds overhead: {requests} requests x {rounds} rounds per variant, in-memory inner")
        _overhead(server, cluster, requests, rounds)
        _push_to_first_use(server, cluster, pushes)
    finally:
        server.stop()
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
