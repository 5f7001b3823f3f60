"""The load side of the sidecar benchmark: closed-loop callers (threads or tasks) over a
client, the connection prefill every client gets alike before it is measured, and the
CPU-heavy neighbour process of a `--busy` run.

* `sync_run` / `async_run` - `c` callers share `n` requests (URL `i % len(urls)` for
  request `i`); each returns every request's latency in seconds.
* `sync_prefill` / `async_prefill` - open `c` keep-alive connections at once (every caller
  holds its response open until all `c` are open), so every client starts a concurrency
  level with one connection per caller. Otherwise how many connections a pool holds depends
  on its history (a pool warmed at c=128 keeps over a hundred idle ones at c=1), and
  httpcore's per-request pool work grows with the connections it holds.
* `Neighbour` - `count` busy-loop processes (a CPU-heavy neighbour) for the life of a
  `with` block; each also stops by itself after `limit` seconds or once its parent is gone.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from types import TracebackType
from typing import Any

from ._common import run_threads

#: The neighbour: a busy loop that ends at its wall-clock limit or when orphaned.
_BURN = """
import os, sys, time
parent, end = os.getppid(), time.monotonic() + float(sys.argv[1])
x = 0
while time.monotonic() < end and os.getppid() == parent:
    for _ in range(20_000):
        x = (x * 31 + 7) % 1_000_003
"""


def sync_run(client: Any, urls: list[str], c: int, n: int) -> list[float]:
    latencies: list[float] = []
    lock = threading.Lock()

    def worker(start: int) -> None:
        mine = []
        for i in range(start, n, c):
            t0 = time.perf_counter()
            client.get(urls[i % len(urls)]).read()
            mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)

    if c == 1:
        worker(0)
        return latencies
    run_threads(worker, c)
    return latencies


async def async_run(client: Any, urls: list[str], c: int, n: int) -> list[float]:
    latencies: list[float] = []

    async def worker(start: int) -> None:
        for i in range(start, n, c):
            t0 = time.perf_counter()
            await (await client.get(urls[i % len(urls)])).aread()
            latencies.append(time.perf_counter() - t0)

    await asyncio.gather(*(worker(i) for i in range(c)))
    return latencies


def sync_prefill(client: Any, urls: list[str], c: int) -> None:
    barrier = threading.Barrier(c)

    def hold(i: int) -> None:
        with client.stream("GET", urls[i % len(urls)]) as response:
            barrier.wait(30)  # every connection is open and busy at once
            response.read()

    run_threads(hold, c)


async def async_prefill(client: Any, urls: list[str], c: int) -> None:
    opened = 0
    all_open = asyncio.Event()

    async def hold(i: int) -> None:
        nonlocal opened
        async with client.stream("GET", urls[i % len(urls)]) as response:
            opened += 1
            if opened == c:
                all_open.set()
            await asyncio.wait_for(all_open.wait(), 30)
            await response.aread()

    await asyncio.gather(*(hold(i) for i in range(c)))


class Neighbour:
    """`count` CPU-heavy processes next to the benchmark (none when `count` is 0)."""

    def __init__(self, count: int, limit: float = 3600.0) -> None:
        if count < 0:
            raise ValueError(f"busy neighbour count must be >= 0, not {count!r}")
        self.count, self.limit = count, limit
        self._processes: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Neighbour:
        self._processes = [subprocess.Popen([sys.executable, "-c", _BURN, str(self.limit)])
                           for _ in range(self.count)]
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for process in self._processes:
            process.terminate()
        for process in self._processes:
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        self._processes = []
