"""Per-route limits, pure: validation with field paths, which guard a routed request gets,
limiters kept across policy updates, and the order route -> service with refunds (fake
clock, seeded rng)."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest

from meshclient import _events
from meshclient.errors import MeshError, PolicyError, RateLimited
from meshclient.policy import Policy
from meshclient.policy._routing import RouteRule
from meshclient.policy._security import LimitsPolicy
from meshclient.routing import route
from meshclient.security.outbound import ServiceGuard
from meshclient.security.registry import SecurityRegistry
from meshclient.security.routes import RouteGuard
from meshclient.testing import FakeClock, SeededRng

NO_ADAPTIVE = {"adaptive_k": 0}


def make(routes: list[dict[str, Any]], **svc: Any) -> Policy:
    return Policy.from_dict({"services": {
        "svc": {"endpoints": ["127.0.0.1:1"], "routes": routes, **svc},
        "other": {"endpoints": ["127.0.0.1:2"]},
        "limited": {"endpoints": ["127.0.0.1:3"], "limits": {"rate": 1, **NO_ADAPTIVE}},
    }})


def admission(registry: SecurityRegistry, policy: Policy, path: str = "/",
              host: str = "svc") -> Any:
    service = policy.resolved[host]
    request = httpx.Request("GET", f"http://{host}{path}")
    return registry.admission(service, route(request, service, policy, SeededRng(1)))


@pytest.fixture
def registry() -> SecurityRegistry:
    return SecurityRegistry(FakeClock(), SeededRng(7))


def test_route_limits_are_validated_with_the_field_path() -> None:
    with pytest.raises(PolicyError) as info:
        make([{"match": {"path": {"prefix": "/a"}}},
              {"limits": {"rate": -1, "max_concurrent": 0}},
              {"limits": {"redis": "redis://127.0.0.1:1"}}])
    text = str(info.value)
    assert "services.svc.routes[1].limits.rate must be greater than 0: -1" in text
    assert "services.svc.routes[1].limits.max_concurrent must be between 1 and 1e+06: 0" in text
    assert "services.svc.routes[2].limits.redis needs rate to be set" in text
    with pytest.raises(PolicyError, match="adaptive_k must be 0"):
        RouteRule(limits=LimitsPolicy(adaptive_k=0.5))
    rule = make([{"limits": {"rate": 5, "max_wait": "250ms"}}]).resolved["svc"].routes[0]
    assert rule.limits == LimitsPolicy(rate=5, max_wait=0.25)


def test_decision_carries_the_route_limits_index_and_name() -> None:
    policy = make([{"match": {"path": {"prefix": "/a"}}},
                   {"name": "b", "match": {"path": {"prefix": "/b"}}, "limits": {"rate": 2}},
                   {"match": {"path": {"prefix": "/c"}}, "limits": {"rate": 3}}])
    svc = policy.resolved["svc"]
    decide = lambda path: route(httpx.Request("GET", f"http://svc{path}"), svc,  # noqa: E731
                                policy, SeededRng(1))
    assert (decide("/a").index, decide("/a").limits) == (0, None)
    assert (decide("/b").route, decide("/b").index, decide("/b").limits.rate) == ("b", 1, 2)
    assert (decide("/c").index, decide("/c").limits.rate) == (2, 3)
    assert (decide("/z").index, decide("/z").limits) == (-1, None)


def test_which_guard_a_request_gets(registry: SecurityRegistry) -> None:
    policy = make([{"match": {"path": {"prefix": "/free"}}},
                   {"match": {"path": {"prefix": "/lim"}}, "limits": {"rate": 5}},
                   {"match": {"path": {"prefix": "/split"}}, "to": [{"service": "limited"}]},
                   {"match": {"path": {"prefix": "/both"}}, "to": [{"service": "limited"}],
                    "limits": {"max_concurrent": 2}}])
    # nothing anywhere: the fast path gives None (no guard, no allocation)
    assert admission(registry, policy, "/free") is None
    assert admission(registry, policy, "/nothing-matches") is None
    # route limits only: a RouteGuard with no service guard behind it, reused
    lim = admission(registry, policy, "/lim")
    assert isinstance(lim, RouteGuard) and lim.guard is None
    assert lim.limiter.bucket is not None and lim.limiter.bucket.rate == 5
    assert admission(registry, policy, "/lim") is lim
    # a split to a service with limits: that service's own guard, not the routed one's
    split = admission(registry, policy, "/split")
    assert isinstance(split, ServiceGuard) and split.service == "limited"
    # both: the route's limiter, then the destination's guard
    both = admission(registry, policy, "/both")
    assert isinstance(both, RouteGuard) and both.guard is split
    assert both.limiter.bulkhead is not None and both.limiter.bulkhead.limit == 2
    assert "route 'routes[3]'" in repr(both)


def test_route_limiters_survive_unrelated_updates_and_follow_their_section(
        registry: SecurityRegistry) -> None:
    routes = [{"name": "named", "match": {"path": {"prefix": "/n"}}, "limits": {"rate": 5}},
              {"match": {"path": {"prefix": "/i"}}, "limits": {"rate": 7}}]
    first = make(routes)
    named, indexed = admission(registry, first, "/n"), admission(registry, first, "/i")
    # a new policy, equal sections (another timeout): the same live limiters
    second = make(routes, timeout={"total": "9s"})
    assert admission(registry, second, "/n").limiter is named.limiter
    assert admission(registry, second, "/i").limiter is indexed.limiter
    # a named route keeps its limiter when moved; an unnamed one is keyed by its index
    moved = make([{"match": {"path": {"prefix": "/x"}}, "limits": {"rate": 1}}, *routes])
    assert admission(registry, moved, "/n").limiter is named.limiter
    assert admission(registry, moved, "/i").limiter is not indexed.limiter
    # changed limits: a new limiter
    changed = make([{**routes[0], "limits": {"rate": 6}}, routes[1]])
    assert admission(registry, changed, "/n").limiter.bucket.rate == 6


def test_bad_route_limits_in_an_update_keep_the_previous_limiter(
        registry: SecurityRegistry, caplog: pytest.LogCaptureFixture) -> None:
    good = admission(registry, make([{"name": "r", "limits": {"rate": 5}}]))
    # passes the policy's checks, but no Redis client can be built from it
    bad = make([{"name": "r", "limits": {"rate": 5, "redis": "redis://127.0.0.1:abc"}}])
    for _ in range(3):
        assert admission(registry, bad).limiter is good.limiter
    warnings = [r.getMessage() for r in caplog.records
                if "keeping its previous limits" in r.getMessage()]
    assert len(warnings) == 1 and "is not a valid Redis URL" in warnings[0]
    # a new route (nothing to fall back to) fails with the same clear error
    with pytest.raises(MeshError, match="is not a valid Redis URL"):
        admission(SecurityRegistry(FakeClock(), SeededRng(1)), bad)


def test_route_then_service_and_refunds(registry: SecurityRegistry) -> None:
    policy = make([{"name": "r", "to": [{"service": "limited"}],
                    "limits": {"rate": 1, "burst": 1, "max_concurrent": 1, **NO_ADAPTIVE}}])
    guard = admission(registry, policy)
    assert isinstance(guard, RouteGuard)
    route_bucket, service_bucket = guard.limiter.bucket, guard.guard.bucket
    guard.admit_sync()  # takes the route's token and slot, then the service's token
    assert route_bucket.tokens == pytest.approx(0) and service_bucket.tokens == pytest.approx(0)
    guard.observe(200, None)
    guard.release()
    registry.clock.advance(1.0)  # both buckets refill
    service_bucket.reserve()  # someone else spends the service's token
    events: list[tuple[str, dict[str, Any]]] = []
    unsubscribe = _events.subscribe(lambda kind, service, attrs: events.append((service, attrs))
                                    if kind == _events.RATE_LIMITED else None)
    try:
        with pytest.raises(RateLimited, match=r"service 'limited': rate limit 1/s"):
            guard.admit_sync()  # route admits, service refuses
        # the route's token and bulkhead slot are given back
        assert route_bucket.tokens == pytest.approx(1)
        assert guard.limiter.bulkhead.in_flight == 0
        registry.clock.advance(1.0)
        guard.admit_sync()
        with pytest.raises(RateLimited, match=r"service 'svc' route 'r': rate limit"):
            guard.admit_sync()
        assert guard.limiter.bulkhead.in_flight == 1  # the first one still holds it
        guard.release()
        assert guard.limiter.bulkhead.in_flight == 0
    finally:
        unsubscribe()
    assert events == [("limited", {"reason": "rate"}),
                      ("svc", {"reason": "rate", "route": "r"})]


def test_route_concurrency_refusal_gives_back_nothing_it_did_not_take(
        registry: SecurityRegistry) -> None:
    policy = make([{"limits": {"max_concurrent": 1, **NO_ADAPTIVE}, "to": [
        {"service": "limited"}]}])
    guard = admission(registry, policy)
    guard.admit_sync()
    service_tokens = guard.guard.bucket.tokens
    with pytest.raises(RateLimited, match="1 requests already in flight"):
        guard.admit_sync()  # the route refuses first: the service is never asked
    assert guard.guard.bucket.tokens == pytest.approx(service_tokens)


def test_async_admission_in_the_same_order(registry: SecurityRegistry) -> None:
    policy = make([{"name": "r", "to": [{"service": "limited"}],
                    "limits": {"rate": 1, "burst": 1, **NO_ADAPTIVE}}])
    guard = admission(registry, policy)
    guard.guard.bucket.reserve()  # the service has no token left

    async def run() -> None:
        with pytest.raises(RateLimited, match="service 'limited'"):
            await guard.admit_async()
        assert guard.limiter.bucket.tokens == pytest.approx(1)  # refunded
        registry.clock.advance(1.0)
        await guard.admit_async()
        guard.release()

    anyio.run(run)


def test_close_closes_route_limiters(registry: SecurityRegistry) -> None:
    admission(registry, make([{"limits": {"rate": 1}}]))
    assert registry._routes
    registry.close()
    assert not registry._routes
