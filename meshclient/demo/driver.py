"""Traffic: a fixed offered load (open loop), the same request sent through meshclient and
through the baseline at the same instant, every outcome recorded as a `Sample`.

Open loop on purpose: a closed loop (send when the last one returned) slows down when the
backends do and hides the latency a user would see (coordinated omission).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import httpx

from ..policy import PolicyStore
from ..transport import AsyncMeshTransport

#: Bound on one request, whatever the client's own timeouts do.
HARD_TIMEOUT_S = 3.0
#: Requests in flight per client before new ones are counted as failed ("overloaded").
MAX_IN_FLIGHT = 200


class Caller(Protocol):
    name: str

    async def get(self, service: str, path: str) -> httpx.Response: ...

    async def aclose(self) -> None: ...


class MeshCaller:
    """An `httpx.AsyncClient` on an `AsyncMeshTransport` sharing the demo's store."""

    name = "meshclient"

    def __init__(self, store: PolicyStore, timeout: float) -> None:
        self.transport = AsyncMeshTransport(store)
        self._client = httpx.AsyncClient(transport=self.transport, timeout=timeout)

    async def get(self, service: str, path: str) -> httpx.Response:
        return await self._client.get(f"http://{service}{path}")

    async def aclose(self) -> None:
        await self._client.aclose()


@dataclass(frozen=True, slots=True)
class Sample:
    """One logical request: when it started (seconds into the run), through which client,
    to which service, whether it succeeded, how long it took, who answered."""

    t: float
    client: str
    service: str
    ok: bool
    latency_ms: float
    backend: str | None
    error: str | None


class Driver:
    """Sends `rate` requests a second, each to every caller, until `stop_at` seconds.

    **Parameters:** `callers`; `rate` (requests per second per caller); `services` and
    `weights` (the request mix); `rng` (seeded: the same run sends the same mix).
    """

    def __init__(self, callers: Sequence[Caller], rate: float, services: Sequence[str],
                 weights: Sequence[float], rng: random.Random) -> None:
        self.callers = list(callers)
        self.rate = rate
        self.services = list(services)
        self.weights = list(weights)
        self.rng = rng
        self.samples: list[Sample] = []
        self.t0 = time.perf_counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight = {c.name: 0 for c in self.callers}

    def now(self) -> float:
        return time.perf_counter() - self.t0

    async def run(self, stop_at: float) -> None:
        interval = 1.0 / self.rate
        n = 0
        while True:
            due = n * interval
            if due >= stop_at:
                break
            delay = due - self.now()
            if delay > 0:
                await asyncio.sleep(delay)
            service = self.rng.choices(self.services, self.weights)[0]
            path = f"/{service}/{self.rng.randrange(1, 10_000)}"
            for caller in self.callers:
                task = asyncio.create_task(self._one(caller, service, path))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            n += 1

    async def drain(self, timeout: float = HARD_TIMEOUT_S + 1) -> None:
        """Wait for requests in flight (bounded), then cancel any left."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=1)

    async def _one(self, caller: Caller, service: str, path: str) -> None:
        start = self.now()
        if self._in_flight[caller.name] >= MAX_IN_FLIGHT:
            self.samples.append(Sample(start, caller.name, service, False, 0.0, None,
                                       "overloaded"))
            return
        self._in_flight[caller.name] += 1
        backend: str | None = None
        error: str | None = None
        try:
            response = await asyncio.wait_for(caller.get(service, path), HARD_TIMEOUT_S)
            backend = response.headers.get("x-backend")
            if response.status_code >= 500:
                error = str(response.status_code)
        except asyncio.TimeoutError:
            error = "timeout"
        except Exception as exc:  # the outcome is data here: every failure is counted
            error = type(exc).__name__
        finally:
            self._in_flight[caller.name] -= 1
        latency = (self.now() - start) * 1000
        self.samples.append(Sample(start, caller.name, service, error is None, latency,
                                   backend, error))
