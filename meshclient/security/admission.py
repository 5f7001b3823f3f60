"""`Limiter`: the admission half of a guard, for one service or one route: adaptive
throttling, then the rate (shared quota or local bucket), then the bulkhead; waits at most
`max_wait` in all, else raises `RateLimited`.

A service's `ServiceGuard` is a `Limiter` (plus credentials and TLS); a route with `limits`
has a plain `Limiter` of its own (`security.routes`). Waiting is the only I/O here: the
sync helpers sleep, the async ones await; the decisions stay in `limits`, `throttle` and
`quota`.

With `limits.key`, the rate (local bucket and shared quota alike) is kept per key value
(`limitkey`): a tenant, a caller, a route; concurrency and adaptive throttling stay
per service or route.

Every call to `admit_*` that returns must be followed by `release()` when the call ends,
or by `undo(took)` when the request is not sent after all (a later limiter refused it):
`undo` also gives back the local token taken, as a bulkhead refusal does.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time

import anyio
import anyio.to_thread
import httpx

from .. import _events, context
from .._types import Clock, Rng
from ..errors import RateLimited
from ..policy import LimitsPolicy
from .limitkey import key_value
from .limits import Bulkhead, KeyedBuckets, TokenBucket
from .quota import REFUSED, RedisQuota
from .throttle import REJECT_STATUSES, AdaptiveThrottle

_NS = 1_000_000_000


class Limiter:
    """Live limits of one service or route. Thread- and task-safe.

    **Parameters:**

    * **service** - the service name (in `RateLimited.service` and events).
    * **limits** - the section, or None (admits everything at once).
    * **total_s** - the service's total timeout: waiting never exceeds it.
    * **route** - the route's name (or index), for a route's limiter; None for a service.
    """

    def __init__(self, service: str, limits: LimitsPolicy | None, total_s: float,
                 clock: Clock, rng: Rng, route: str | None = None) -> None:
        self.service = service
        self.route = route
        self.limits = limits
        self.clock = clock
        self._what = (f"service {service!r}" if route is None
                      else f"service {service!r} route {route!r}")
        # Waiting for admission is part of the call: never beyond the service's total timeout.
        self.max_wait_s = min(limits.max_wait, total_s) if limits else 0.0
        self.bucket: TokenBucket | None = None
        self.quota: RedisQuota | None = None
        self.bulkhead: Bulkhead | None = None
        self.throttle: AdaptiveThrottle | None = None
        self.key = limits.parsed_key if limits is not None else None
        self.keyed: KeyedBuckets | None = None
        if limits is None:
            return
        if limits.rate is not None:
            burst = limits.burst or max(1, math.ceil(limits.rate))
            if self.key is None:
                self.bucket = TokenBucket(limits.rate, burst, clock)
            else:
                self.keyed = KeyedBuckets(limits.rate, burst, limits.max_keys, clock)
            if limits.redis is not None:
                default_key = f"meshclient:quota:{service}" + (
                    "" if route is None else f":{route}")
                self.quota = RedisQuota(limits.redis, limits.redis_key or default_key,
                                        limits.rate, burst, clock, service)
        if limits.max_concurrent is not None:
            self.bulkhead = Bulkhead(limits.max_concurrent)
        if limits.adaptive_k:
            self.throttle = AdaptiveThrottle(limits.adaptive_k, limits.adaptive_window,
                                             clock, rng)

    # -- admission ---------------------------------------------------------------------
    def _refuse(self, why: str, request: httpx.Request | None,
                reason: str = "rate") -> RateLimited:
        if self.route is None:
            _events.emit(_events.RATE_LIMITED, self.service, reason=reason)
        else:
            _events.emit(_events.RATE_LIMITED, self.service, reason=reason, route=self.route)
        return RateLimited(f"{self._what}: {why}", request=request, service=self.service)

    def _max_wait(self) -> float:
        """`max_wait`, cut to what remains of the inbound request's deadline, if any."""
        inbound = context.inbound.get()
        if inbound is None or inbound.deadline_ns is None:
            return self.max_wait_s
        return max(0.0, min(self.max_wait_s,
                            (inbound.deadline_ns - self.clock.now_ns()) / _NS))

    def _rate_key(self, request: httpx.Request | None) -> tuple[TokenBucket | None,
                                                                 str | None, bool]:
        """This request's local bucket, shared-quota suffix, and whether the rate limits
        it at all (a keyed limit skips a request without a key value)."""
        if self.keyed is None or self.key is None:
            return self.bucket, None, True
        value = key_value(self.key, headers=request.headers if request is not None else {},
                          route=self.route or (request.url.path if request else None))
        if value is None:
            return None, None, False
        return self.keyed.bucket(value), value, True

    def _rate_wait(self, reply: float | None, max_wait_s: float,
                   request: httpx.Request | None, bucket: TokenBucket | None) -> float:
        """Seconds to wait for the rate limit, from the shared quota's reply (None: use
        the local bucket)."""
        if reply is None and bucket is not None:
            reply = bucket.reserve(max_wait_s)
            if reply is None:
                raise self._refuse(f"rate limit {bucket.rate:g}/s exceeded", request)
        if reply == REFUSED:
            assert self.quota is not None
            raise self._refuse(f"shared quota {self.quota.rate:g}/s exceeded", request, "quota")
        return reply or 0.0

    def _full(self, took: TokenBucket | None, request: httpx.Request | None) -> RateLimited:
        """The bulkhead refused: give back a local token taken for this request."""
        assert self.bulkhead is not None
        if took is not None:
            took.refund()
        return self._refuse(f"{self.bulkhead.limit} requests already in flight", request,
                            "concurrency")

    def _throttled(self, request: httpx.Request | None) -> None:
        if self.throttle is not None and self.throttle.should_reject():
            raise self._refuse("adaptive throttling (the service is rejecting requests)",
                               request, "adaptive")

    def admit_sync(self, request: httpx.Request | None = None) -> TokenBucket | None:
        """Wait for admission (blocking). Returns the local bucket a token was taken from,
        if any (for `undo`)."""
        start = self.clock.now_ns()
        max_wait_s = self._max_wait()
        self._throttled(request)
        bucket, suffix, limited = self._rate_key(request)
        reply = (self.quota.reserve(max_wait_s, suffix)
                 if self.quota is not None and limited else None)
        wait_s = self._rate_wait(reply, max_wait_s, request, bucket)
        took = bucket if reply is None else None
        if wait_s > 0:
            time.sleep(wait_s)
        if self.bulkhead is not None and not self.bulkhead.try_enter():
            left_s = max_wait_s - (self.clock.now_ns() - start) / _NS
            if not self._wait_bulkhead_sync(left_s):
                raise self._full(took, request)
        return took

    def _wait_bulkhead_sync(self, left_s: float) -> bool:
        bulkhead = self.bulkhead
        assert bulkhead is not None
        deadline = time.monotonic() + left_s
        while True:
            event = threading.Event()
            if bulkhead.add_waiter(event.set):
                woken = event.wait(max(0.0, deadline - time.monotonic()))
                if not woken:
                    bulkhead.remove_waiter(event.set)
            if bulkhead.try_enter():
                return True
            if time.monotonic() >= deadline:
                return False

    async def admit_async(self, request: httpx.Request | None = None) -> TokenBucket | None:
        """Wait for admission (awaiting). Returns the local bucket a token was taken from."""
        start = self.clock.now_ns()
        max_wait_s = self._max_wait()
        self._throttled(request)
        bucket, suffix, limited = self._rate_key(request)
        reply = None
        if self.quota is not None and limited:
            reply = await anyio.to_thread.run_sync(self.quota.reserve, max_wait_s, suffix)
        wait_s = self._rate_wait(reply, max_wait_s, request, bucket)
        took = bucket if reply is None else None
        if wait_s > 0:
            await anyio.sleep(wait_s)
        if self.bulkhead is not None and not self.bulkhead.try_enter():
            left_s = max_wait_s - (self.clock.now_ns() - start) / _NS
            if not await self._wait_bulkhead_async(left_s):
                raise self._full(took, request)
        return took

    async def _wait_bulkhead_async(self, left_s: float) -> bool:
        bulkhead = self.bulkhead
        assert bulkhead is not None
        deadline = time.monotonic() + left_s
        loop = _running_asyncio_loop()
        while True:
            if loop is not None:
                future: asyncio.Future[None] = loop.create_future()

                def wake(future: asyncio.Future[None] = future) -> None:
                    loop.call_soon_threadsafe(_resolve, future)

                if bulkhead.add_waiter(wake):
                    with anyio.move_on_after(max(0.0, deadline - time.monotonic())):
                        await future
                    if not future.done():
                        bulkhead.remove_waiter(wake)
            else:  # another event loop (trio): poll a thread-safe flag
                event = threading.Event()
                if bulkhead.add_waiter(event.set):
                    while not event.is_set() and time.monotonic() < deadline:
                        await anyio.sleep(0.001)
                    if not event.is_set():
                        bulkhead.remove_waiter(event.set)
            if bulkhead.try_enter():
                return True
            if time.monotonic() >= deadline:
                return False

    # -- completion --------------------------------------------------------------------
    def observe(self, status: int | None, error: BaseException | None) -> None:
        """How the call ended (once per call); a `RateLimited` from here is not counted."""
        if self.throttle is None or isinstance(error, RateLimited):
            return
        accepted = (not isinstance(error, httpx.ConnectError) if error is not None
                    else status not in REJECT_STATUSES)
        self.throttle.record(accepted)

    def release(self) -> None:
        if self.bulkhead is not None:
            self.bulkhead.leave()

    def undo(self, took: TokenBucket | None) -> None:
        """Admitted, but not sent (a later limiter refused): free the bulkhead slot and
        give back the local token `admit_*` took (`took`, what it returned)."""
        self.release()
        if took is not None:
            took.refund()

    def close(self) -> None:
        if self.quota is not None:
            self.quota.close()

    def __repr__(self) -> str:
        return (f"<Limiter {self._what} bucket={self.bucket!r} bulkhead={self.bulkhead!r} "
                f"throttle={self.throttle!r}>")


def _running_asyncio_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
