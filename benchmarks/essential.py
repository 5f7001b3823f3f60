"""How close the mesh is to the cost of its essential work, at concurrency 1 (sync).

    python -m benchmarks.essential [--requests N] [--rounds R] [--quick]

Three clients against the overhead benchmark's server (separate process, keep-alive 1 KiB
GETs), interleaved in chunks, CPU per request of the client process:

* bare `httpx.Client`;
* "essential": a hand-written transport doing only what every meshed request must do,
  with meshclient's own pieces and none of its structure: look the service up, start the
  deadline, deposit into the retry budget, pick an endpoint (peak-EWMA balancer), check
  its breaker, begin its load accounting, send a copy addressed to the endpoint with the
  deadline header, record the result in the breaker, and end the load accounting when
  the body is closed (stream wrapper). No retries, no telemetry, no routing, no security;
* `httpx.Client(transport=MeshTransport(...))`.

The overhead target (mesh/bare <= 1.10) is judged by `benchmarks.overhead`; this shows how
much of the mesh's cost is that essential work and how much is everything else.
"""

from __future__ import annotations

import functools
import statistics
import sys
from collections.abc import Sequence

import httpx

from meshclient import MeshTransport, Policy
from meshclient._bench.measure import LIMITS, SERVICE, measure, mesh_policy
from meshclient._bench.upstream import FastServer
from meshclient._core.address import address_request
from meshclient.resilience.breaker import NORMAL
from meshclient.transport._streams import track_sync

from ._common import base_parser


class Essential(httpx.BaseTransport):
    """The essential per-request work of a mesh, written out in one function."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.inner = httpx.HTTPTransport(limits=LIMITS)
        self._mesh = MeshTransport(policy, inner=self.inner)  # for its runtime objects
        self.runtime = self._mesh.registry.runtime(policy.resolved[SERVICE])

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        service = self.policy.resolved.get(request.url.host)
        if service is None:
            return self.inner.handle_request(request)
        runtime = self.runtime
        clock = runtime.clock
        now = clock.now_ns()
        deadline_ns = now + int(service.timeout.total * 1e9)
        runtime.resilience.budget.tokens.deposit(now)
        state = runtime.balancer.pick(now_ns=now)
        assert state is not None
        breaker = state.breaker
        ticket = NORMAL if breaker is None else breaker.admit()
        start = state.begin(now)
        response = self.inner.handle_request(address_request(
            request, service, state.endpoint, None, str((deadline_ns - now) // 1_000_000), 1))
        ok = response.status_code < 500
        if breaker is not None:
            breaker.record(ticket, ok)
        track_sync(response, functools.partial(state.end, start, None, ok))  # at close
        return response

    def close(self) -> None:
        self._mesh.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0] if __doc__ else "essential")
    parser.add_argument("--requests", type=int, default=2000, help="per client per round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    requests, rounds = (400, 3) if args.quick else (args.requests, args.rounds)
    with FastServer() as server:
        policy = mesh_policy(server)
        clients = {"bare": (httpx.Client(limits=LIMITS), f"{server.url}/"),
                   "essential": (httpx.Client(transport=Essential(policy)),
                                 f"http://{SERVICE}/"),
                   "mesh": (httpx.Client(transport=MeshTransport(policy, limits=LIMITS)),
                            f"http://{SERVICE}/")}

        def batch(kind: str, n: int) -> int:
            client, url = clients[kind]
            for _ in range(n):
                client.get(url).read()
            return n

        cpu_us: dict[str, list[float]] = {kind: [] for kind in clients}
        try:
            for kind in clients:
                batch(kind, 200)
            order = list(clients)
            for _ in range(rounds):
                totals = dict.fromkeys(clients, 0.0)
                chunk = 100
                for j in range(max(1, requests // chunk)):
                    for kind in order if j % 2 == 0 else order[::-1]:
                        totals[kind] += measure(functools.partial(batch, kind, chunk))[0]
                for kind in clients:
                    cpu_us[kind].append(totals[kind] / (requests // chunk * chunk) * 1e6)
        finally:
            for client, _ in clients.values():
                client.close()
    print(f"essential: {requests} requests x {rounds} rounds per client, sync, concurrency 1")
    print(f"{'client':<10} {'CPU µs/req':>11} {'vs bare':>8} {'added µs':>9}")
    bare = cpu_us["bare"]
    for kind, values in cpu_us.items():
        ratio = statistics.median(v / b for v, b in zip(values, bare, strict=True))
        added = statistics.median(v - b for v, b in zip(values, bare, strict=True))
        print(f"{kind:<10} {statistics.median(values):>11.1f} {ratio:>7.3f}x {added:>9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
