"""Client-side limits: a token bucket (rate) and a bulkhead (concurrency). No I/O, no sleeps.

Why reservations and not polling: `TokenBucket.reserve()` either takes a token now or
*reserves* the next one and says how long to wait for it (the bucket may go negative, GCRA
style), so waiters are served in arrival order at exactly the configured rate and a shell
sleeps once instead of spinning. A request whose wait would exceed `max_wait` reserves
nothing and is refused at once.

The bulkhead counts requests in flight. `try_enter()` never blocks; a shell that may wait
registers a wake-up callable with `add_waiter()`, which `leave()` calls for the oldest
waiter, so sync threads (an `Event`) and asyncio tasks (a future set thread-safely) can wait
on one bulkhead.

Thread- and task-safe: each object has one small lock held only for arithmetic.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable

from .._types import Clock

_NS = 1_000_000_000


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up.

    Usage:
    ```python
    bucket = TokenBucket(rate=100, burst=10, clock=CLOCK)
    wait_s = bucket.reserve(max_wait_s=0.5)   # None: refused; else sleep wait_s, then go
    ```
    """

    def __init__(self, rate: float, burst: int, clock: Clock) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be greater than 0: {rate!r}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1: {burst!r}")
        self.rate = float(rate)
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last_ns = clock.now_ns()
        self._lock = threading.Lock()

    def _refill(self, now_ns: int) -> None:
        elapsed = max(0, now_ns - self._last_ns)
        self._last_ns = max(self._last_ns, now_ns)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate / _NS)

    def reserve(self, max_wait_s: float = 0.0) -> float | None:
        """Take one token: 0.0 if one is available now, the seconds to wait for a reserved
        one if that is at most `max_wait_s`, else None (nothing is taken)."""
        with self._lock:
            self._refill(self._clock.now_ns())
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return 0.0
            wait_s = (1.0 - self._tokens) / self.rate
            if wait_s > max_wait_s:
                return None
            self._tokens -= 1.0
            return wait_s

    def refund(self) -> None:
        """Give back a token taken by `reserve()` (the request was not sent)."""
        with self._lock:
            self._tokens = min(float(self.burst), self._tokens + 1.0)

    @property
    def tokens(self) -> float:
        with self._lock:
            self._refill(self._clock.now_ns())
            return self._tokens

    def __repr__(self) -> str:
        return f"<TokenBucket rate={self.rate:g}/s burst={self.burst} tokens={self.tokens:.2f}>"


class KeyedBuckets:
    """One `TokenBucket` per key (a tenant, a caller), at most `max_keys` of them: the least
    recently used is dropped first (a dropped key starts again with a full bucket).

    Usage:
    ```python
    buckets = KeyedBuckets(rate=10, burst=10, max_keys=10_000, clock=CLOCK)
    wait_s = buckets.bucket("acme").reserve(0.0)
    ```
    """

    def __init__(self, rate: float, burst: int, max_keys: int, clock: Clock) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be at least 1: {max_keys!r}")
        TokenBucket(rate, burst, clock)  # validates rate and burst
        self.rate = float(rate)
        self.burst = burst
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self._lock = threading.Lock()

    def bucket(self, key: str) -> TokenBucket:
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, self._clock)
                if len(self._buckets) > self.max_keys:
                    self._buckets.popitem(last=False)
            else:
                self._buckets.move_to_end(key)
            return bucket

    def __len__(self) -> int:
        return len(self._buckets)

    def __repr__(self) -> str:
        return (f"<KeyedBuckets rate={self.rate:g}/s burst={self.burst} "
                f"keys={len(self._buckets)}/{self.max_keys}>")


Wake = Callable[[], None]


class Bulkhead:
    """At most `limit` requests in flight.

    Usage:
    ```python
    if bulkhead.try_enter():
        try: ...
        finally: bulkhead.leave()
    ```
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1: {limit!r}")
        self.limit = limit
        self._in_flight = 0
        self._waiters: deque[Wake] = deque()
        self._lock = threading.Lock()

    def try_enter(self) -> bool:
        with self._lock:
            if self._in_flight < self.limit:
                self._in_flight += 1
                return True
            return False

    def leave(self) -> None:
        """Release one slot and wake the oldest waiter (outside the lock)."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            wake = self._waiters.popleft() if self._waiters else None
        if wake is not None:
            wake()

    def add_waiter(self, wake: Wake) -> bool:
        """Register `wake` for the next free slot. Returns False (not registered) when a
        slot is already free, so the caller retries `try_enter()` instead of sleeping."""
        with self._lock:
            if self._in_flight < self.limit:
                return False
            self._waiters.append(wake)
            return True

    def remove_waiter(self, wake: Wake) -> None:
        """Forget `wake` (its waiter gave up). If it was already popped and called, the
        slot it was woken for is passed on to the next waiter."""
        with self._lock:
            try:
                self._waiters.remove(wake)
                return
            except ValueError:
                passed_on = self._waiters.popleft() if (
                    self._waiters and self._in_flight < self.limit) else None
        if passed_on is not None:
            passed_on()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def __repr__(self) -> str:
        return (f"<Bulkhead in_flight={self._in_flight}/{self.limit} "
                f"waiting={len(self._waiters)}>")
