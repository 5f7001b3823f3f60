"""Deterministic time and randomness for tests and simulations."""

from __future__ import annotations

import random
import threading

from .._stall import StallRecord


class FakeClock:
    """A monotonic clock that moves only when told. Thread-safe."""

    def __init__(self, start_ns: int = 1_000_000_000) -> None:
        self._now = start_ns
        self._lock = threading.Lock()
        #: Client stalls on this clock (`stall()` records one).
        self.stalls = StallRecord()

    def now_ns(self) -> int:
        return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += int(seconds * 1e9)

    def stall(self, seconds: float) -> None:
        """The client stalls: time passes and is recorded as a stall (as the stall
        monitors record event-loop lag), so it is not charged to endpoints."""
        with self._lock:
            start = self._now
            self._now += int(seconds * 1e9)
            end = self._now
        self.stalls.add(start, end)

    def __repr__(self) -> str:
        return f"FakeClock(now_ns={self._now})"


class SeededRng(random.Random):
    """`random.Random` with a required seed, so every simulation is reproducible."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
