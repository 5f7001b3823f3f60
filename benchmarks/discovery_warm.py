"""Warm requests pay nothing for discovery: request latency through the mesh with static
endpoints vs the same endpoint found by discovery (a file source, refreshed in the
background), measured in one run on one loopback backend.

    python -m benchmarks.discovery_warm [--requests N]

Prints the median and p99 of each and their ratio (discovered / static); ~1.0 means the
endpoint cache adds no per-request cost.
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
from meshclient.testing import Backend


def measure(policy: Policy, n: int) -> list[float]:
    with httpx.Client(transport=meshclient.MeshTransport(policy)) as client:
        for _ in range(50):  # warm: connection pool, discovery's first answer
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with Backend("127.0.0.2") as backend, tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "users.json"
        path.write_text(json.dumps([backend.address]))
        static = Policy.from_dict({"services": {"users": {"endpoints": [backend.address]}}})
        found = Policy.from_dict({"services": {"users": {"discovery": f"file://{path}"}}})
        results = {}
        for name, policy in (("static", static), ("discovered", found), ("static again", static)):
            results[name] = summary(measure(policy, args.requests))
    for name, (p50, p99) in results.items():
        print(f"{name:>13}: p50 {p50 * 1e3:.3f} ms  p99 {p99 * 1e3:.3f} ms")
    base = (results["static"][0] + results["static again"][0]) / 2
    print(f"ratio discovered/static p50: {results['discovered'][0] / base:.3f}")


if __name__ == "__main__":
    main()
