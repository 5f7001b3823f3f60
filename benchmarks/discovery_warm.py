"""Warm requests pay nothing for discovery: the mesh's per-request time with static
endpoints vs the same endpoint found by discovery (a file source, refreshed in the
background), measured in one run.

    python -m benchmarks.discovery_warm [--requests N]

The inner transport answers in-process (`httpx.MockTransport`), so the figures are the
mesh's own cost per request, not the network's. Prints the median and p99 of each and the
ratio discovered / static; ~1.0 means the endpoint cache adds no per-request cost.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx

import meshclient
from meshclient import Policy


def measure(policy: Policy, n: int) -> list[float]:
    inner = httpx.MockTransport(lambda request: httpx.Response(200, content=b"ok"))
    with httpx.Client(transport=meshclient.MeshTransport(policy, inner=inner)) as client:
        for _ in range(200):  # warm: discovery's first answer, caches
            client.get("http://users/")
        out = []
        for _ in range(n):
            start = time.perf_counter()
            client.get("http://users/")
            out.append(time.perf_counter() - start)
    return out


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.99) - 1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--quick", action="store_true", help="a short smoke run (500 requests)")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests = min(args.requests, 500)
    address = "127.0.0.2:8080"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "users.json"
        path.write_text(json.dumps([address]))
        static = Policy.from_dict({"services": {"users": {"endpoints": [address]}}})
        found = Policy.from_dict({"services": {"users": {"discovery": f"file://{path}"}}})
        results = {}
        for name, policy in (("static", static), ("discovered", found),
                             ("static again", static), ("discovered again", found)):
            results[name] = summary(measure(policy, args.requests))
    for name, (p50, p99) in results.items():
        print(f"{name:>16}: p50 {p50 * 1e6:8.1f} us  p99 {p99 * 1e6:8.1f} us")
    static_p50 = (results["static"][0] + results["static again"][0]) / 2
    found_p50 = (results["discovered"][0] + results["discovered again"][0]) / 2
    print(f"ratio discovered/static p50: {found_p50 / static_p50:.3f}")


if __name__ == "__main__":
    main()
