"""The overhead benchmark's measuring code: bare httpx against httpx through the mesh.

Shared by `meshclient bench` (a short run that needs no repository checkout) and
`python -m benchmarks.overhead` (the full run). What is measured, per request, in the client
process only (the server is a separate process, `upstream.FastServer`):

* **CPU** - `time.process_time()` (all threads of this process) over a batch, divided by the
  batch size. This is the figure the target is about: the mesh path may cost at most 10%
  more CPU per request than bare httpx.
* **throughput** - requests per second of wall-clock time over the same batch.

Variants run interleaved in one process, in chunks of ~160 requests (bare, mesh, mesh,
bare, ...), so drift from a loaded machine hits both sides alike; a round sums its chunks,
and the reported ratio is the median of the per-round paired ratios.
"""

from __future__ import annotations

import asyncio
import functools
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..policy import Policy
from ..transport import AsyncMeshTransport, MeshTransport
from .upstream import FastServer

SERVICE = "bench"
#: Keep-alive slots for every concurrent caller (see encode/httpcore#1110), kept open for
#: the whole run (no keep-alive expiry): see `SyncPair.prefill`.
LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=None)


@dataclass
class Result:
    """CPU seconds, wall seconds and request counts of one variant, round by round."""

    name: str
    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)

    def add(self, cpu: float, wall: float, requests: int) -> None:
        self.cpu.append(cpu)
        self.wall.append(wall)
        self.requests.append(requests)

    def cpu_us(self) -> list[float]:
        """CPU microseconds per request, per round."""
        return [c / n * 1e6 for c, n in zip(self.cpu, self.requests, strict=True)]

    def rps(self) -> list[float]:
        return [n / w for w, n in zip(self.wall, self.requests, strict=True)]


def measure(run: Callable[[], int]) -> tuple[float, float, int]:
    """(cpu seconds, wall seconds, requests) of one call of `run` (which returns a count)."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    count = run()
    return time.process_time() - cpu0, time.perf_counter() - wall0, count


def mesh_policy(server: FastServer) -> Policy:
    return Policy.from_dict({"version": "bench", "services": {
        SERVICE: {"endpoints": [server.address]}}})


class SyncPair:
    """A bare and a meshed `httpx.Client` against one server; `batch(kind, n, concurrency)`."""

    def __init__(self, server: FastServer, concurrency: int) -> None:
        self.clients = {
            "bare": (httpx.Client(limits=LIMITS), f"{server.url}/"),
            "mesh": (httpx.Client(transport=MeshTransport(mesh_policy(server), limits=LIMITS)),
                     f"http://{SERVICE}/"),
        }
        self.concurrency = concurrency
        self.pool = ThreadPoolExecutor(concurrency) if concurrency > 1 else None
        for kind in self.clients:
            self.prefill(kind)

    def prefill(self, kind: str) -> None:
        """Open one keep-alive connection per concurrent caller before measuring, in both
        clients alike. Otherwise how many a pool opens varies from run to run (8 to 15 for
        16 callers, idle ones expiring), and httpcore's per-request pool work grows with
        the connections it holds (it checks each idle one), which moved the c=16 ratios
        by ±0.06 between identical runs."""
        if self.pool is None:
            return
        client, url = self.clients[kind]
        barrier = threading.Barrier(self.concurrency)

        def hold(_: int) -> None:
            with client.stream("GET", url) as response:
                barrier.wait(10)  # every connection is open and busy at once
                response.read()

        list(self.pool.map(hold, range(self.concurrency)))

    def batch(self, kind: str, n: int) -> int:
        client, url = self.clients[kind]

        def loop(count: int) -> int:
            for _ in range(count):
                client.get(url).read()
            return count

        if self.pool is None:
            return loop(n)
        share = n // self.concurrency
        return sum(self.pool.map(loop, [share] * self.concurrency))

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()
        for client, _ in self.clients.values():
            client.close()


class AsyncPair:
    """The async twin: one event loop for the pair's whole life, `concurrency` tasks."""

    def __init__(self, server: FastServer, concurrency: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.concurrency = concurrency
        self.clients: dict[str, tuple[httpx.AsyncClient, str]] = {}

        async def make() -> None:
            self.clients["bare"] = (httpx.AsyncClient(limits=LIMITS), f"{server.url}/")
            transport = AsyncMeshTransport(mesh_policy(server), limits=LIMITS)
            self.clients["mesh"] = (httpx.AsyncClient(transport=transport), f"http://{SERVICE}/")

        self.loop.run_until_complete(make())
        for kind in self.clients:
            self.loop.run_until_complete(self.prefill(kind))

    async def prefill(self, kind: str) -> None:
        """`SyncPair.prefill`: one open connection per concurrent task, in both clients."""
        client, url = self.clients[kind]
        opened = 0
        all_open = asyncio.Event()

        async def hold() -> None:
            nonlocal opened
            async with client.stream("GET", url) as response:
                opened += 1
                if opened == self.concurrency:
                    all_open.set()
                await asyncio.wait_for(all_open.wait(), 10)
                await response.aread()

        await asyncio.gather(*(hold() for _ in range(self.concurrency)))

    def batch(self, kind: str, n: int) -> int:
        client, url = self.clients[kind]

        async def loop(count: int) -> int:
            for _ in range(count):
                response = await client.get(url)
                await response.aread()
            return count

        async def run() -> int:
            share = n // self.concurrency
            return sum(await asyncio.gather(*(loop(share) for _ in range(self.concurrency))))

        return self.loop.run_until_complete(run())

    def close(self) -> None:
        async def shut() -> None:
            for client, _ in self.clients.values():
                await client.aclose()

        self.loop.run_until_complete(shut())
        self.loop.close()


@dataclass
class Row:
    """One line of the report: a shell and a concurrency, bare against mesh."""

    shell: str
    concurrency: int
    bare: Result
    mesh: Result

    def ratio(self) -> float:
        """Median of per-round (mesh CPU/request) / (bare CPU/request)."""
        return statistics.median(m / b for m, b in zip(self.mesh.cpu_us(), self.bare.cpu_us(),
                                                   strict=True))

    def as_dict(self) -> dict[str, Any]:
        return {"shell": self.shell, "concurrency": self.concurrency,
                "bare_rps": statistics.median(self.bare.rps()),
                "mesh_rps": statistics.median(self.mesh.rps()),
                "bare_cpu_us": statistics.median(self.bare.cpu_us()),
                "mesh_cpu_us": statistics.median(self.mesh.cpu_us()),
                "cpu_ratio": self.ratio()}


def _round(pair: SyncPair | AsyncPair, requests: int, chunk: int) -> dict[str, tuple[float, float, int]]:
    """One round: `requests` per variant, in alternating chunks (bare, mesh, mesh, bare, …)
    so that load changes within the round hit both variants alike."""
    totals = {"bare": [0.0, 0.0, 0], "mesh": [0.0, 0.0, 0]}
    for j in range(max(1, requests // chunk)):
        for kind in ("bare", "mesh") if j % 2 == 0 else ("mesh", "bare"):
            cpu, wall, n = measure(functools.partial(pair.batch, kind, chunk))
            total = totals[kind]
            total[0] += cpu
            total[1] += wall
            total[2] += n
    return {k: (float(v[0]), float(v[1]), int(v[2])) for k, v in totals.items()}


def run_overhead(*, requests: int = 2000, rounds: int = 5, warmup: int = 200,
                 shells: Sequence[str] = ("sync", "async"),
                 concurrency: Iterable[int] = (1, 16), chunk: int = 160,
                 progress: Callable[[str], None] | None = None) -> list[Row]:
    """Measure every (shell, concurrency) pair, interleaved, against one fast server.

    Each round runs `requests` per variant in alternating chunks of about `chunk`
    requests (a multiple of the concurrency)."""
    rows: list[Row] = []
    with FastServer() as server:
        for shell in shells:
            for c in concurrency:
                pair: SyncPair | AsyncPair = (SyncPair(server, c) if shell == "sync"
                                              else AsyncPair(server, c))
                step = max(c, chunk // c * c)
                try:
                    row = Row(shell, c, Result("bare"), Result("mesh"))
                    for kind in ("bare", "mesh"):
                        pair.batch(kind, max(warmup, c))
                    for _ in range(rounds):
                        totals = _round(pair, max(requests, step), step)
                        row.bare.add(*totals["bare"])
                        row.mesh.add(*totals["mesh"])
                    rows.append(row)
                    if progress is not None:
                        progress(format_row(row))
                finally:
                    pair.close()
    return rows


def added_cpu_us(*, requests: int = 5000, rounds: int = 5) -> tuple[float, float]:
    """(bare, mesh) CPU microseconds per request with an in-memory inner transport
    (`httpx.MockTransport`): no network at all, so the difference is the mesh's own cost,
    free of socket noise. Interleaved like the rest; medians over rounds."""
    body = b"x" * 1024
    inner = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    policy = Policy.from_dict({"services": {SERVICE: {"endpoints": ["127.0.0.1:9"]}}})
    clients = {"bare": (httpx.Client(transport=inner), "http://127.0.0.1:9/"),
               "mesh": (httpx.Client(transport=MeshTransport(policy, inner=inner)),
                        f"http://{SERVICE}/")}
    results = {kind: Result(kind) for kind in clients}

    def batch(kind: str) -> int:
        client, url = clients[kind]
        for _ in range(requests):
            client.get(url).read()
        return requests

    try:
        for kind in clients:
            batch(kind)
        for i in range(rounds):
            for kind in ("bare", "mesh") if i % 2 == 0 else ("mesh", "bare"):
                results[kind].add(*measure(functools.partial(batch, kind)))
    finally:
        for client, _ in clients.values():
            client.close()
    return (statistics.median(results["bare"].cpu_us()),
            statistics.median(results["mesh"].cpu_us()))


def format_added(bare: float, mesh: float) -> str:
    return (f"in-memory inner transport: bare {bare:.1f} µs, mesh {mesh:.1f} µs CPU per request "
            f"-> the mesh itself adds {mesh - bare:.1f} µs")


HEADER = (f"{'shell':<6} {'conc':>4} {'bare req/s':>11} {'mesh req/s':>11} "
          f"{'bare CPU µs/req':>16} {'mesh CPU µs/req':>16} {'CPU ratio':>10}")


def format_row(row: Row) -> str:
    d = row.as_dict()
    return (f"{d['shell']:<6} {d['concurrency']:>4} {d['bare_rps']:>11.0f} {d['mesh_rps']:>11.0f} "
            f"{d['bare_cpu_us']:>16.1f} {d['mesh_cpu_us']:>16.1f} {d['cpu_ratio']:>10.3f}")

