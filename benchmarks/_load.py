"""The load side of the sidecar benchmark: closed-loop callers (threads or tasks) over a
client, the connection prefill every client gets alike before it is measured, and the
CPU-heavy neighbour process of a `--busy` run.

* `sync_run` / `async_run` - `c` callers share `n` requests (URL `i % len(urls)` for
  request `i`); each returns every request's latency in seconds (`sync_run` also each
  caller thread's run-queue wait, when asked).
* `sync_prefill` / `async_prefill` - open `c` keep-alive connections at once (every caller
  holds its response open until all `c` are open), so every client starts a concurrency
  level with one connection per caller. Otherwise how many connections a pool holds depends
  on its history (a pool warmed at c=128 keeps over a hundred idle ones at c=1), and
  httpcore's per-request pool work grows with the connections it holds.
* `Neighbour` - `count` busy-loop processes (a CPU-heavy neighbour) for the life of a
  `with` block; each also stops by itself after `limit` seconds or once its parent is gone.
* `Placement` - the client alone on its own CPUs, the backends and sidecars on the others,
  for the life of a `with` block (see its docstring for why).
* `queued_seconds()` - how long this thread has waited for a CPU while runnable.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
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


def sync_run(client: Any, urls: list[str], c: int, n: int,
             waits: list[float] | None = None) -> list[float]:
    """Each request's latency; each caller's run-queue wait appended to `waits` if given."""
    latencies: list[float] = []
    lock = threading.Lock()

    def worker(start: int) -> None:
        mine = []
        queued = queued_seconds()
        for i in range(start, n, c):
            t0 = time.perf_counter()
            client.get(urls[i % len(urls)]).read()
            mine.append(time.perf_counter() - t0)
        queued = queued_seconds() - queued
        with lock:
            latencies.extend(mine)
            if waits is not None:
                waits.append(queued)

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


def queued_seconds() -> float:
    """Seconds the calling thread has spent runnable but waiting for a CPU (the run-queue
    wait in /proc/thread-self/schedstat); 0.0 where the kernel does not report it."""
    try:
        return int(Path("/proc/thread-self/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def _pin(pid: int, cpus: set[int]) -> None:
    """Every thread of `pid` onto `cpus` (a process that is gone is skipped)."""
    try:
        tids = [int(t.name) for t in Path(f"/proc/{pid}/task").iterdir()]
    except OSError:
        tids = [pid]
    for tid in tids:
        try:
            os.sched_setaffinity(tid, cpus)
        except (ProcessLookupError, PermissionError):
            continue


class Placement:
    """The client process alone on the first half of this process's CPUs (at least one),
    its backends and sidecars (`others`, every thread) on the rest; this process's CPUs
    are restored on exit. Nothing moves when `enabled` is false, with fewer than two CPUs
    or without `os.sched_setaffinity`.

    Left to the scheduler, where a Python backend runs relative to the client decides the
    figures: woken on the client's CPU, it hands the CPU back at once, while a client woken
    from the other CPU may wait behind another process for the rest of its time slice (ms),
    and a proxy in between (a light process that preempts at once and wakes the client on
    its own CPU) changes which of the two happens. Every client is measured alike instead:
    alone on its CPUs, each response arriving from another CPU, as from a remote backend."""

    def __init__(self, others: Iterable[int], enabled: bool = True) -> None:
        self.others = list(others)
        self.enabled = enabled
        self.client: set[int] = set()
        self.rest: set[int] = set()
        self._saved: set[int] | None = None

    def __enter__(self) -> Placement:
        if not self.enabled or not hasattr(os, "sched_setaffinity"):
            return self
        allowed = sorted(os.sched_getaffinity(0))
        if len(allowed) < 2:
            return self
        half = len(allowed) // 2
        self.client, self.rest = set(allowed[:half]), set(allowed[half:])
        for pid in self.others:
            if pid > 0:
                _pin(pid, self.rest)
        self._saved = set(allowed)
        os.sched_setaffinity(0, self.client)
        return self

    def describe(self) -> str:
        if not self.client:
            return "CPUs shared by client, backends and sidecars"
        return (f"client on CPU {_cpus(self.client)}, backends and sidecars on CPU "
                f"{_cpus(self.rest)}")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._saved is not None:
            os.sched_setaffinity(0, self._saved)
            self._saved = None


def _cpus(cpus: set[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))
