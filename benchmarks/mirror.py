"""What mirroring costs the caller: CPU on the calling thread per request, plain against
every request mirrored, through the sync `MeshTransport`, against a fast loopback server
in a child process (so its CPU is not counted).

The caller's CPU is `time.thread_time()` of the calling thread: the copy's own sending runs
on the background senders and is reported apart (process CPU), as is the async shell,
whose senders share the caller's event loop thread. "mirrored, never sent" has a queue of
0, so every copy is dropped at once: what the caller's own path costs (routing, building
the copy, the hand-off) without senders competing for the interpreter lock.

    python -m benchmarks.mirror            # about 20 seconds
    python -m benchmarks.mirror --quick

Target: a mirrored request costs the caller at most 10% more CPU than a plain one.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time

import httpx

from benchmarks._common import FastServer, base_parser, table
from meshclient import AsyncMeshTransport, MeshTransport, Policy
from meshclient._bench.measure import LIMITS

VARIANTS = ("plain", "mirrored, never sent", "mirrored")


def policy(server: FastServer, mirror: bool) -> Policy:
    routes = [{"mirror": {"to": "shadow", "percent": 100}}] if mirror else []
    return Policy.from_dict({"services": {
        "users": {"endpoints": [server.address], "routes": routes},
        "shadow": {"endpoints": [server.address]}}})


def sync_round(server: FastServer, variant: str, n: int) -> tuple[float, float]:
    """(caller thread CPU µs, process CPU µs) per request."""
    transport = MeshTransport(policy(server, variant != "plain"), limits=LIMITS)
    if variant == "mirrored, never sent":
        transport.mirrors.queue_size = 0  # every copy dropped: the caller's own part
    with httpx.Client(transport=transport) as client:
        for _ in range(20):  # warm: connections, policy, sender threads
            client.get("http://users/").read()
        thread0, process0 = time.thread_time(), time.process_time()
        for _ in range(n):
            client.get("http://users/").read()
        thread_us = (time.thread_time() - thread0) / n * 1e6
        deadline = time.monotonic() + 10
        while transport.mirrors.queued and time.monotonic() < deadline:
            time.sleep(0.001)  # the copies' sending belongs to this round's process CPU
        process_us = (time.process_time() - process0) / n * 1e6
        transport.mirrors.close()
    return thread_us, process_us


def async_round(server: FastServer, variant: str, n: int) -> float:
    """Process CPU µs per request through the async shell (senders on the same loop)."""

    async def run() -> float:
        transport = AsyncMeshTransport(policy(server, variant != "plain"), limits=LIMITS)
        if variant == "mirrored, never sent":
            transport.mirrors.queue_size = 0
        async with httpx.AsyncClient(transport=transport) as client:
            for _ in range(20):
                await client.get("http://users/")
            process0 = time.process_time()
            for _ in range(n):
                await client.get("http://users/")
            while transport.mirrors.queued or transport.mirrors.gate.in_flight:
                await asyncio.sleep(0.001)
            return (time.process_time() - process0) / n * 1e6

    return asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    args = base_parser(__doc__ or "").parse_args(argv)
    n, rounds = (200, 2) if args.quick else (1000, 5)
    logging.getLogger("meshclient").setLevel(logging.ERROR)  # the dropped copies' line
    results: dict[str, list[tuple[float, ...]]] = {name: [] for name in VARIANTS}
    async_results: dict[str, list[float]] = {name: [] for name in VARIANTS}
    with FastServer() as server:
        for i in range(rounds):  # alternate, so drift on a busy machine hits all alike
            for name in VARIANTS if i % 2 == 0 else VARIANTS[::-1]:
                results[name].append(sync_round(server, name, n))
                async_results[name].append(async_round(server, name, n))
    rows = []
    for name in VARIANTS:
        rows.append((name, statistics.median(r[0] for r in results[name]),
                     statistics.median(r[1] for r in results[name]),
                     statistics.median(async_results[name])))
    print(table(rows, ("sync, every request", "caller thread CPU µs", "process CPU µs",
                       "async process CPU µs")))
    for name in VARIANTS[1:]:
        added = statistics.median(m[0] / p[0] - 1 for m, p in zip(
            results[name], results["plain"], strict=True))
        print(f"caller thread CPU, {name}: {added:+.1%} of a plain request "
              f"(target: at most +10%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
