"""Recent latency samples of a service, kept while it hedges at a percentile (`samples =
True`): a ring of the last 256 successful attempts' times, in integer nanoseconds, under a
small lock. (The "fastest endpoint" estimate that decides whether a retry can still finish
before the deadline is the balancer's peak-EWMA: `LoadBalancer.fastest_ns`.)
"""

from __future__ import annotations

import threading

_RING = 256
_MIN_SAMPLES = 20


class LatencyTracker:
    __slots__ = ("_filled", "_i", "_lock", "_ring", "samples")

    def __init__(self) -> None:
        self._ring = [0] * _RING
        self._i = 0
        self._filled = 0
        self._lock = threading.Lock()
        #: Keep the ring of samples (only hedging at a percentile reads it).
        self.samples = False

    def __repr__(self) -> str:
        return f"<LatencyTracker samples={self.samples} filled={self._filled}/{_RING}>"

    def observe(self, elapsed_ns: int) -> None:
        """One successful attempt's time (callers check `samples` first)."""
        with self._lock:
            self._ring[self._i] = elapsed_ns
            self._i = (self._i + 1) % _RING
            if self._filled < _RING:
                self._filled += 1

    def percentile_ns(self, p: float) -> int | None:
        """The p-th percentile (0 < p ≤ 100) of recent samples; None until enough exist."""
        with self._lock:
            if self._filled < _MIN_SAMPLES:
                return None
            samples = sorted(self._ring[: self._filled])
        index = min(len(samples) - 1, max(0, int(len(samples) * p / 100.0 + 0.5) - 1))
        return samples[index]
