"""Load shedding: a concurrency limit that refuses (503 + `Retry-After`) instead of
queueing when full (tower's `LoadShed` over `ConcurrencyLimit`)."""

from __future__ import annotations

import threading

from ..errors import MeshError


class SheddingError(MeshError):
    """A load-shedding setting is invalid."""


def should_shed(in_flight: int, limit: int) -> bool:
    """The decision, pure: refuse when `limit` requests are already being handled."""
    return in_flight >= limit


class ConcurrencyLimit:
    """At most `limit` requests at once; `try_acquire()` never waits. Thread- and
    task-safe (a small lock around a counter, never held across I/O)."""

    __slots__ = ("_in_flight", "_lock", "limit", "retry_after_s")

    def __init__(self, limit: int, retry_after_s: float = 1.0) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise SheddingError(f"max_concurrency must be an integer >= 1: {limit!r}")
        if not retry_after_s >= 0:
            raise SheddingError(f"retry_after_s must be >= 0: {retry_after_s!r}")
        self.limit = limit
        self.retry_after_s = retry_after_s
        self._in_flight = 0
        self._lock = threading.Lock()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def try_acquire(self) -> bool:
        with self._lock:
            if should_shed(self._in_flight, self.limit):
                return False
            self._in_flight += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def __repr__(self) -> str:
        return f"<ConcurrencyLimit {self._in_flight}/{self.limit}>"


def limiter(max_concurrency: int | None, retry_after_s: float) -> ConcurrencyLimit | None:
    return None if max_concurrency is None else ConcurrencyLimit(max_concurrency,
                                                                 retry_after_s)
