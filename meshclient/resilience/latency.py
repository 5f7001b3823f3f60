"""Observed latency per service: a per-endpoint EWMA (the "fastest endpoint" estimate that
decides whether a retry can still finish before the deadline) and, while the service hedges
at a percentile (`samples = True`), a ring of recent samples. Times are integer
nanoseconds; thread-safe (the estimates are single atomic dict stores, the ring is under
a small lock).
"""

from __future__ import annotations

import threading

_ALPHA = 0.3
_RING = 256
_MIN_SAMPLES = 20


class LatencyTracker:
    __slots__ = ("_ewma", "_filled", "_i", "_lock", "_ring", "samples")

    def __init__(self) -> None:
        self._ewma: dict[str, float] = {}
        self._ring = [0] * _RING
        self._i = 0
        self._filled = 0
        self._lock = threading.Lock()
        #: Keep the ring of samples (only hedging at a percentile reads it).
        self.samples = False

    def observe(self, endpoint: str, elapsed_ns: int) -> None:
        # The estimate is one dict store, atomic on its own: no lock on this per-request
        # path. Two threads updating one endpoint at once may lose one of the two samples,
        # which only thins an average; the dict itself is never corrupted.
        ewma = self._ewma
        old = ewma.get(endpoint)
        ewma[endpoint] = elapsed_ns if old is None else old + _ALPHA * (elapsed_ns - old)
        if self.samples:  # hedging at a percentile: the ring, under the lock
            with self._lock:
                self._ring[self._i] = elapsed_ns
                self._i = (self._i + 1) % _RING
                if self._filled < _RING:
                    self._filled += 1

    def fastest_ns(self) -> int | None:
        """The smallest per-endpoint estimate, or None before any observation."""
        values = list(self._ewma.values())  # a copy made at once (the dict may grow)
        return int(min(values)) if values else None

    def percentile_ns(self, p: float) -> int | None:
        """The p-th percentile (0 < p ≤ 100) of recent samples; None until enough exist."""
        with self._lock:
            if self._filled < _MIN_SAMPLES:
                return None
            samples = sorted(self._ring[: self._filled])
        index = min(len(samples) - 1, max(0, int(len(samples) * p / 100.0 + 0.5) - 1))
        return samples[index]

    def forget(self, keep: set[str]) -> None:
        """Drop estimates of endpoints no longer in the set (a new dict, swapped in)."""
        with self._lock:
            self._ewma = {k: v for k, v in list(self._ewma.items()) if k in keep}
