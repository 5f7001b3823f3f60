"""What the transports call for a service with `tls`, `auth` or `limits`: one `ServiceGuard`
per service, built from the policy and kept while its sections do not change.

The shells call, per logical request (see docs/limits.md for the order):

1. `admit_sync()` / `await admit_async()` before driving the flow: adaptive throttling,
   then the rate (shared quota or local bucket), then the bulkhead; waits at most
   `max_wait` in all, else raises `RateLimited`.
2. for every `Send`: `attach_sync(send)` / `await attach_async(send)`: the attempt request
   with the service's credential, unless the attempt is for another service, a mirror copy
   (`context.MIRROR_HEADER`) or already carries the header; and `guard.tls` selects the
   per-service inner transport.
3. `observe(status, error)` once when the call returns or fails (feeds the throttle), and
   `release()` when the response body is closed or the call failed (frees the bulkhead).

Waiting is the only I/O here besides the token request: the sync helpers sleep, the async
ones await; the decisions stay in `limits`, `throttle` and `quota`.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Mapping

import anyio
import anyio.to_thread
import httpx

from .. import _events, context
from .._core.actions import Send
from .._types import Clock, Rng
from ..context import MIRROR_HEADER
from ..errors import RateLimited
from ..policy import Service
from .credentials import Credentials, OAuth2Credentials, credentials_for
from .limits import Bulkhead, TokenBucket
from .quota import REFUSED, RedisQuota
from .throttle import REJECT_STATUSES, AdaptiveThrottle
from .tls import RotatingContext

_NS = 1_000_000_000


class ServiceGuard:
    """Live security state of one service. Thread- and task-safe."""

    def __init__(self, service: Service, clock: Clock, rng: Rng,
                 environ: Mapping[str, str] | None = None) -> None:
        self.service = service.name
        self.sections = (service.tls, service.auth, service.limits)
        self.clock = clock
        self.tls: RotatingContext | None = (
            RotatingContext(service.tls, clock) if service.tls is not None else None)
        self.credentials: Credentials | None = (
            credentials_for(service.auth, environ, clock) if service.auth is not None else None)
        self.header = service.auth.header if service.auth is not None else "authorization"
        limits = service.limits
        # Waiting for admission is part of the call: never beyond the service's total timeout.
        self.max_wait_s = min(limits.max_wait, service.timeout.total) if limits else 0.0
        self.bucket: TokenBucket | None = None
        self.quota: RedisQuota | None = None
        self.bulkhead: Bulkhead | None = None
        self.throttle: AdaptiveThrottle | None = None
        if limits is not None:
            if limits.rate is not None:
                burst = limits.burst or max(1, math.ceil(limits.rate))
                self.bucket = TokenBucket(limits.rate, burst, clock)
                if limits.redis is not None:
                    self.quota = RedisQuota(limits.redis,
                                            limits.redis_key or f"meshclient:quota:{service.name}",
                                            limits.rate, burst, clock, service.name)
            if limits.max_concurrent is not None:
                self.bulkhead = Bulkhead(limits.max_concurrent)
            if limits.adaptive_k:
                self.throttle = AdaptiveThrottle(limits.adaptive_k, limits.adaptive_window,
                                                 clock, rng)

    # -- admission ---------------------------------------------------------------------
    def _refuse(self, why: str, request: httpx.Request | None,
                reason: str = "rate") -> RateLimited:
        _events.emit(_events.RATE_LIMITED, self.service, reason=reason)
        return RateLimited(f"service {self.service!r}: {why}", request=request,
                           service=self.service)

    def _max_wait(self) -> float:
        """`max_wait`, cut to what remains of the inbound request's deadline, if any."""
        inbound = context.inbound.get()
        if inbound is None or inbound.deadline_ns is None:
            return self.max_wait_s
        return max(0.0, min(self.max_wait_s,
                            (inbound.deadline_ns - self.clock.now_ns()) / _NS))

    def _rate_wait(self, reply: float | None, max_wait_s: float,
                   request: httpx.Request | None) -> float:
        """Seconds to wait for the rate limit, from the shared quota's reply (None: use
        the local bucket)."""
        if reply is None and self.bucket is not None:
            reply = self.bucket.reserve(max_wait_s)
            if reply is None:
                raise self._refuse(f"rate limit {self.bucket.rate:g}/s exceeded", request)
        if reply == REFUSED:
            assert self.quota is not None
            raise self._refuse(f"shared quota {self.quota.rate:g}/s exceeded", request, "quota")
        return reply or 0.0

    def _full(self, reply: float | None, request: httpx.Request | None) -> RateLimited:
        """The bulkhead refused: give back a local token taken for this request."""
        assert self.bulkhead is not None
        if reply is None and self.bucket is not None:
            self.bucket.refund()
        return self._refuse(f"{self.bulkhead.limit} requests already in flight", request,
                            "concurrency")

    def _throttled(self, request: httpx.Request | None) -> None:
        if self.throttle is not None and self.throttle.should_reject():
            raise self._refuse("adaptive throttling (the service is rejecting requests)",
                               request, "adaptive")

    def admit_sync(self, request: httpx.Request | None = None) -> None:
        start = self.clock.now_ns()
        max_wait_s = self._max_wait()
        self._throttled(request)
        reply = self.quota.reserve(max_wait_s) if self.quota is not None else None
        wait_s = self._rate_wait(reply, max_wait_s, request)
        if wait_s > 0:
            time.sleep(wait_s)
        if self.bulkhead is not None and not self.bulkhead.try_enter():
            left_s = max_wait_s - (self.clock.now_ns() - start) / _NS
            if not self._wait_bulkhead_sync(left_s):
                raise self._full(reply, request)

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

    async def admit_async(self, request: httpx.Request | None = None) -> None:
        start = self.clock.now_ns()
        max_wait_s = self._max_wait()
        self._throttled(request)
        reply = None
        if self.quota is not None:
            reply = await anyio.to_thread.run_sync(self.quota.reserve, max_wait_s)
        wait_s = self._rate_wait(reply, max_wait_s, request)
        if wait_s > 0:
            await anyio.sleep(wait_s)
        if self.bulkhead is not None and not self.bulkhead.try_enter():
            left_s = max_wait_s - (self.clock.now_ns() - start) / _NS
            if not await self._wait_bulkhead_async(left_s):
                raise self._full(reply, request)

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

    # -- per attempt -------------------------------------------------------------------
    def _wants_credential(self, send: Send) -> bool:
        headers = send.request.headers
        return (self.credentials is not None and send.service == self.service
                and MIRROR_HEADER not in headers and self.header not in headers)

    def attach_sync(self, send: Send) -> httpx.Request:
        if not self._wants_credential(send):
            return send.request
        creds = self.credentials
        value = (creds.header_value_sync() if isinstance(creds, OAuth2Credentials)
                 else creds.header_value())  # type: ignore[union-attr]
        return _with_header(send.request, self.header, value)

    async def attach_async(self, send: Send) -> httpx.Request:
        if not self._wants_credential(send):
            return send.request
        creds = self.credentials
        value = (await creds.header_value_async() if isinstance(creds, OAuth2Credentials)
                 else creds.header_value())  # type: ignore[union-attr]
        return _with_header(send.request, self.header, value)

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

    def close(self) -> None:
        if self.quota is not None:
            self.quota.close()

    def __repr__(self) -> str:
        return (f"<ServiceGuard {self.service} tls={self.tls!r} bucket={self.bucket!r} "
                f"bulkhead={self.bulkhead!r} throttle={self.throttle!r}>")


def _running_asyncio_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _with_header(request: httpx.Request, name: str, value: str) -> httpx.Request:
    """A copy of the attempt carrying the credential; the caller's request, and any copy
    made from it (a mirror), never sees it."""
    headers = request.headers.copy()
    headers[name] = value
    return httpx.Request(request.method, request.url, headers=headers, stream=request.stream,
                         extensions=request.extensions)
