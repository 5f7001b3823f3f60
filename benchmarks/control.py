"""How long a change at the control endpoint takes to reach requests.

`python -m benchmarks.control [--rounds N] [--interval S]`

For each source — nginx polled with ETags every `--interval`, a Consul-style long-poll
server, an etcd watch — the benchmark publishes a new policy (which moves the `users`
service to the other of two real loopback backends) and then sends requests through a
`MeshTransport` back to back until one is answered by the new backend. The time from the
publish to that request is the propagation delay. Poll delays should spread over one
jittered interval (median near half of it); watch and long-poll delays should be a few
milliseconds, independent of the interval. Figures come from one run on whatever machine
runs it; on a loaded machine expect noise in the milliseconds.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import time
from collections.abc import Callable

import httpx

import meshclient
from meshclient.policy import PolicyStore
from meshclient.testing import LoopbackCluster


def _doc(cluster: LoopbackCluster, version: int) -> str:
    return json.dumps({"version": f"v{version}", "services": {
        "users": {"endpoints": [cluster[version % 2].address]}}})


def _propagation(store: PolicyStore, cluster: LoopbackCluster, publish: Callable[[str], None],
                 rounds: int, timeout_s: float, spread_s: float = 0.0) -> list[float]:
    """Publish `rounds` changes; each is made a random 0..`spread_s` after the previous
    one arrived, so polls and publishes are not in step (a fair sample of the phase)."""
    delays = []
    rng = random.Random(1)
    with httpx.Client(transport=meshclient.MeshTransport(store)) as client:
        for version in range(1, rounds + 1):
            time.sleep(0.05 + rng.uniform(0, spread_s))  # the refresher settles, then a phase
            want = cluster[version % 2].name
            start = time.perf_counter()
            publish(_doc(cluster, version))
            while client.get("http://users/").json()["backend"] != want:
                if time.perf_counter() - start > timeout_s:
                    raise RuntimeError(f"version {version} did not arrive in {timeout_s}s")
            delays.append(time.perf_counter() - start)
    return delays


def _poll(cluster: LoopbackCluster, rounds: int, interval: float) -> list[float]:
    from tests.servers.nginx import NginxServer

    nginx = NginxServer().start()
    store = PolicyStore()
    try:
        nginx.publish("mesh.json", _doc(cluster, 0))
        store.watch(nginx.url("mesh.json"), interval_s=interval, wait=5)
        return _propagation(store, cluster, lambda text: nginx.publish("mesh.json", text),
                            rounds, interval * 3 + 2, spread_s=interval)
    finally:
        store.close()
        nginx.close()


def _long_poll(cluster: LoopbackCluster, rounds: int, interval: float) -> list[float]:
    from tests.servers.longpoll import LongPollServer

    server = LongPollServer(_doc(cluster, 0))
    store = PolicyStore()
    try:
        store.watch(server.url, interval_s=interval, long_poll_wait_s=5, wait=5)
        return _propagation(store, cluster, server.set, rounds, 5)
    finally:
        store.close()
        server.close()


def _etcd(cluster: LoopbackCluster, rounds: int, interval: float) -> list[float]:
    from tests.servers.etcd import EtcdServer

    server = EtcdServer().start()
    etcd = server.client()
    store = PolicyStore()
    try:
        etcd.put("/mesh/policy", _doc(cluster, 0).encode())
        store.watch(server.url("/mesh/policy"), wait=5)
        return _propagation(store, cluster,
                            lambda text: etcd.put("/mesh/policy", text.encode()), rounds, 5)
    finally:
        store.close()
        etcd.close()
        server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12, help="changes per source")
    parser.add_argument("--interval", type=float, default=0.5, help="poll interval, seconds")
    parser.add_argument("--quick", action="store_true", help="a short smoke run (3 rounds)")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds = min(args.rounds, 3)
    sources = [("poll (nginx, ETag)", _poll, shutil.which("nginx")),
               ("long-poll (X-Consul-Index)", _long_poll, True),
               ("watch (etcd)", _etcd, shutil.which("etcd"))]
    results: dict[str, list[float]] = {}
    with LoopbackCluster(2) as cluster:
        for name, run, available in sources:
            if not available:
                print(f"{name}: skipped (not installed)")
                continue
            results[name] = run(cluster, args.rounds, args.interval)
    print(f"control-endpoint change -> first request using it; {args.rounds} changes each, "
          f"poll interval {args.interval:g}s (jittered 0.8-1.2x)")
    print(f"{'source':<28}{'median ms':>11}{'p90 ms':>9}{'max ms':>9}")
    for name, delays in results.items():
        ordered = sorted(delays)
        p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
        print(f"{name:<28}{statistics.median(delays) * 1e3:>11.1f}{p90 * 1e3:>9.1f}"
              f"{max(delays) * 1e3:>9.1f}")
    poll = results.get("poll (nginx, ETag)")
    if poll:
        print(f"poll median / interval: {statistics.median(poll) / args.interval:.2f} "
              "(expect about 0.5: a change lands uniformly within one interval)")
        for name in ("long-poll (X-Consul-Index)", "watch (etcd)"):
            if name in results:
                ratio = statistics.median(poll) / max(statistics.median(results[name]), 1e-6)
                print(f"poll median / {name} median: {ratio:.0f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
