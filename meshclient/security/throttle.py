"""Adaptive client-side throttling, as the Google SRE book ("Handling Overload") defines it.

Each client keeps, over a trailing window (two minutes in the book), the number of
`requests` the application attempted (locally rejected ones included) and the number of
`accepts` (requests the backend accepted). A new request is rejected locally with
probability

    p = max(0, (requests - K * accepts) / (requests + 1))

With K = 2 a healthy backend is never throttled (requests <= 2 * accepts); a backend that
accepts a fraction a of requests gets about K * a of the demand (a trickle as a -> 0, so the
client still notices when it recovers). Lower K throttles sooner.

"Rejected by the backend" means a response that signals overload: 429 or 503 (and a
connection refused). Everything else, including other errors, counts as accepted: the
backend was not shedding load.

A sent request is counted when its outcome is known (with its accept, if any), a locally
rejected one when it is rejected: counting sent requests at admission would make a burst of
concurrent first requests look like rejections before any answer arrived.

The window is a ring of `BUCKETS` time slots, so recording and deciding are O(1).
Thread- and task-safe (one small lock); time and randomness are injected.
"""

from __future__ import annotations

import threading

from .._types import Clock, Rng

BUCKETS = 20
REJECT_STATUSES = frozenset({429, 503})


class AdaptiveThrottle:
    """Usage:
    ```python
    throttle = AdaptiveThrottle(k=2.0, window_s=120, clock=CLOCK, rng=RNG)
    if throttle.should_reject():      # counts the request
        raise RateLimited(...)
    ...
    throttle.record(accepted=response.status_code not in REJECT_STATUSES)
    ```
    """

    def __init__(self, k: float, window_s: float, clock: Clock, rng: Rng) -> None:
        if k < 1:
            raise ValueError(f"k must be at least 1: {k!r}")
        if not window_s > 0:
            raise ValueError(f"window_s must be greater than 0: {window_s!r}")
        self.k = k
        self.window_s = window_s
        self._clock = clock
        self._rng = rng
        self._slot_ns = max(1, int(window_s * 1e9 / BUCKETS))
        self._requests = [0] * BUCKETS
        self._accepts = [0] * BUCKETS
        self._epochs = [-1] * BUCKETS
        self._lock = threading.Lock()

    def _slot(self, now_ns: int) -> int:
        """Index of the current slot, clearing it if it last held an older epoch."""
        epoch = now_ns // self._slot_ns
        i = epoch % BUCKETS
        if self._epochs[i] != epoch:
            self._epochs[i] = epoch
            self._requests[i] = 0
            self._accepts[i] = 0
        return i

    def _totals(self, now_ns: int) -> tuple[int, int]:
        oldest = now_ns // self._slot_ns - BUCKETS + 1
        requests = accepts = 0
        for i in range(BUCKETS):
            if self._epochs[i] >= oldest:
                requests += self._requests[i]
                accepts += self._accepts[i]
        return requests, accepts

    def reject_probability(self) -> float:
        with self._lock:
            requests, accepts = self._totals(self._clock.now_ns())
        return max(0.0, (requests - self.k * accepts) / (requests + 1))

    def should_reject(self) -> bool:
        """Decide whether to reject a request locally; a rejected one is counted now."""
        now = self._clock.now_ns()
        with self._lock:
            requests, accepts = self._totals(now)
            p = max(0.0, (requests - self.k * accepts) / (requests + 1))
            reject = p > 0.0 and self._rng.random() < p
            if reject:
                self._requests[self._slot(now)] += 1
        return reject

    def record(self, accepted: bool) -> None:
        """Count a request that was sent, when its outcome is known."""
        now = self._clock.now_ns()
        with self._lock:
            i = self._slot(now)
            self._requests[i] += 1
            if accepted:
                self._accepts[i] += 1

    def __repr__(self) -> str:
        with self._lock:
            requests, accepts = self._totals(self._clock.now_ns())
        return (f"<AdaptiveThrottle k={self.k:g} requests={requests} accepts={accepts} "
                f"p={self.reject_probability():.3f}>")
