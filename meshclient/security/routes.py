"""Per-route limits: a route's own `Limiter` in front of the destination service's guard.

Envoy applies a route's local rate limit and then the destination cluster's limits, and a
request must pass both; so does meshclient. The routed request first passes its route's
limiter (keyed by service and route name, or index when the route has no name), then the
guard of the service it is sent to (after any split: the destination's limits, credentials
and TLS). A refusal from either is `RateLimited`; if the service refuses after the route
admitted, the route's bulkhead slot is freed and its local token given back, exactly as a
bulkhead refusal gives back a token today. Both are released when the response body closes.

`RouteGuard` has the surface the shells call on a `ServiceGuard` (`admit_*`, `attach_*`,
`tls`, `observe`, `release`), so a shell never knows which one it holds (`Guard`).
"""

from __future__ import annotations

import httpx

from .._core.actions import Send
from .admission import Limiter
from .limits import TokenBucket
from .outbound import ServiceGuard
from .tls import RotatingContext


class RouteGuard:
    """A route's `limiter`, then the destination's `guard` (None: the destination has no
    tls/auth/limits). Immutable after construction; the parts are thread- and task-safe."""

    __slots__ = ("guard", "limiter", "tls")

    def __init__(self, limiter: Limiter, guard: ServiceGuard | None) -> None:
        self.limiter = limiter
        self.guard = guard
        self.tls: RotatingContext | None = guard.tls if guard is not None else None

    def admit_sync(self, request: httpx.Request | None = None) -> TokenBucket | None:
        took = self.limiter.admit_sync(request)
        if self.guard is not None:
            try:
                self.guard.admit_sync(request)
            except BaseException:
                self.limiter.undo(took)
                raise
        return took

    async def admit_async(self, request: httpx.Request | None = None) -> TokenBucket | None:
        took = await self.limiter.admit_async(request)
        if self.guard is not None:
            try:
                await self.guard.admit_async(request)
            except BaseException:
                self.limiter.undo(took)
                raise
        return took

    def attach_sync(self, send: Send) -> httpx.Request:
        return send.request if self.guard is None else self.guard.attach_sync(send)

    async def attach_async(self, send: Send) -> httpx.Request:
        return send.request if self.guard is None else await self.guard.attach_async(send)

    def observe(self, status: int | None, error: BaseException | None) -> None:
        self.limiter.observe(status, error)
        if self.guard is not None:
            self.guard.observe(status, error)

    def release(self) -> None:
        if self.guard is not None:
            self.guard.release()
        self.limiter.release()

    def __repr__(self) -> str:
        return f"<RouteGuard {self.limiter!r} then {self.guard!r}>"


#: What the shells hold for a request: a service's guard, or a route's limiter before it.
Guard = ServiceGuard | RouteGuard


class RouteEntry:
    """The live limiter of one route and its `RouteGuard` per destination (a split has
    several). `combos` is filled lock-free: two racing requests may each build one, and
    either is correct."""

    __slots__ = ("combos", "limiter", "limits")

    def __init__(self, limiter: Limiter) -> None:
        self.limiter = limiter
        self.limits = limiter.limits
        self.combos: dict[str, RouteGuard] = {}

    def guard_for(self, destination: str, guard: ServiceGuard | None) -> RouteGuard:
        combo = self.combos.get(destination)
        if combo is None or combo.guard is not guard:
            combo = self.combos[destination] = RouteGuard(self.limiter, guard)
        return combo
