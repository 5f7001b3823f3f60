"""Pickers, weights, health ranking, zones and panic mode (pure; fake clock, seeded rng)."""

from __future__ import annotations

import itertools
import logging
from collections import Counter, deque
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshclient import _events
from meshclient.balance import EndpointState, LoadBalancer
from meshclient.balance._weights import WeightedDraw, smooth_schedule
from meshclient.discovery.endpoint import Endpoint
from meshclient.policy import BalancerPolicy, OutlierPolicy
from meshclient.testing import FakeClock, SeededRng
from tests.servers.helpers import run_threads

KINDS = ("p2c-ewma", "p2c-least-request", "round-robin", "random")


class FakeBreaker:
    def __init__(self, status: str = "closed") -> None:
        self.value = status

    def status(self) -> str:
        return self.value


def endpoints(n: int, weights: list[int] | None = None,
              zones: list[str | None] | None = None) -> tuple[Endpoint, ...]:
    return tuple(Endpoint(f"127.0.0.{i + 2}", 8000, (weights or [1] * n)[i],
                          (zones or [None] * n)[i]) for i in range(n))


def balancer(kind: str = "p2c-ewma", n: int = 3, *, seed: int = 1, zone: str | None = None,
             clock: FakeClock | None = None, outlier: OutlierPolicy | None = None,
             **eps: Any) -> LoadBalancer:
    lb = LoadBalancer("users", BalancerPolicy(kind=kind), outlier or OutlierPolicy(),
                      clock=clock or FakeClock(), rng=SeededRng(seed), zone=zone)
    lb.update(endpoints(n, **eps))
    return lb


def shares(lb: LoadBalancer, picks: int, exclude: frozenset[str] = frozenset()) -> Counter[str]:
    seen: Counter[str] = Counter()
    for _ in range(picks):
        state = lb.pick(exclude)
        assert state is not None
        seen[state.key] += 1
    return seen


def test_alias_table_matches_weights() -> None:
    table = WeightedDraw([1, 2, 7])
    rng = SeededRng(3)
    counts = Counter(table.draw(rng) for _ in range(20_000))
    for i, w in enumerate([1, 2, 7]):
        assert counts[i] / 20_000 == pytest.approx(w / 10, abs=0.015)
    for _ in range(200):
        a, b = table.draw_two(rng)
        assert a != b
    with pytest.raises(ValueError, match="weights must be positive"):
        WeightedDraw([1, 0])


def test_smooth_schedule_spreads_heavy_weights() -> None:
    assert smooth_schedule([5, 1, 1]) == (0, 0, 1, 0, 2, 0, 0)
    assert smooth_schedule([2, 2]) == (0, 1)  # gcd-reduced
    big = smooth_schedule([60000, 30000])
    assert len(big) <= 4096 and Counter(big)[0] == 2 * Counter(big)[1]


@pytest.mark.parametrize("kind", KINDS)
def test_every_picker_honours_weights(kind: str) -> None:
    """Under steady load (12 requests in flight, 10 ms each): shares follow the weights."""
    clock = FakeClock()
    lb = balancer(kind, 3, weights=[1, 1, 4], clock=clock)
    in_flight: deque[tuple[EndpointState, int]] = deque()
    seen: Counter[str] = Counter()
    for _ in range(6000):
        clock.advance(0.001)
        state = lb.pick()
        assert state is not None
        seen[state.key] += 1
        in_flight.append((state, state.begin(clock.now_ns())))
        if len(in_flight) > 12:
            done, start = in_flight.popleft()
            done.end(start, start + 10_000_000, ok=True)
    assert seen["127.0.0.4:8000"] / 6000 == pytest.approx(4 / 6, abs=0.05)
    assert seen["127.0.0.2:8000"] / 6000 == pytest.approx(1 / 6, abs=0.05)


def test_round_robin_is_exact_and_survives_updates() -> None:
    lb = balancer("round-robin", 3)
    assert [lb.pick().key for _ in range(3)] == [  # type: ignore[union-attr]
        "127.0.0.2:8000", "127.0.0.3:8000", "127.0.0.4:8000"]


@pytest.mark.parametrize("kind", KINDS)
def test_exclude_is_avoided_while_another_is_usable(kind: str) -> None:
    lb = balancer(kind, 2)
    tried = frozenset({"127.0.0.2:8000"})
    assert set(shares(lb, 200, tried)) == {"127.0.0.3:8000"}
    both = frozenset({"127.0.0.2:8000", "127.0.0.3:8000"})
    assert lb.pick(both) is not None  # everything tried: reuse rather than fail


@pytest.mark.parametrize("kind", KINDS)
def test_open_breaker_and_failed_health_check_are_unavailable(kind: str) -> None:
    lb = balancer(kind, 4)
    states = lb.states()
    states[0].breaker = FakeBreaker("open")
    states[1].set_health_check(False)
    assert set(shares(lb, 300)) == {states[2].key, states[3].key}
    assert states[0].health() == "breaker-open"
    assert states[1].health() == "failing-health-check"
    states[1].set_health_check(None)
    assert states[1].health() == "healthy"


def test_p2c_ranks_health_before_cost() -> None:
    clock = FakeClock()
    lb = balancer("p2c-ewma", 2, clock=clock)
    fast, slow = lb.states()
    fast.end(fast.begin(clock.now_ns()), clock.now_ns() + 1_000_000, ok=True)  # 1 ms
    slow.end(slow.begin(clock.now_ns()), clock.now_ns() + 900_000_000, ok=True)  # 900 ms
    assert set(shares(lb, 50)) == {fast.key}
    fast.breaker = FakeBreaker("half-open")  # degraded loses to healthy, however cheap
    assert set(shares(lb, 50)) == {slow.key}
    slow.breaker = FakeBreaker("open")  # degraded beats unavailable
    assert set(shares(lb, 50)) == {fast.key}
    assert fast.health() == "degraded"


def test_update_keeps_history_by_key() -> None:
    clock = FakeClock()
    lb = balancer("p2c-ewma", 3, clock=clock)
    first = lb.states()[0]
    first.begin(clock.now_ns())
    first.end(clock.now_ns(), clock.now_ns() + 200_000_000, ok=False)
    lb.update(endpoints(4, weights=[3, 1, 1, 1]))
    again = lb.states()[0]
    assert again is first and again.endpoint.weight == 3
    assert again.failures == 1 and again.requests == 1
    assert again.ewma.estimate(clock.now_ns()) >= 0.2
    rebuilt = LoadBalancer("users", BalancerPolicy(kind="round-robin"), OutlierPolicy(),
                           clock=clock, rng=SeededRng(1), carry=lb.states())
    rebuilt.update(endpoints(2))
    assert rebuilt.states()[0] is first and len(rebuilt.states()) == 2


def test_zone_preference_and_spill() -> None:
    zones: list[str | None] = ["a", "a", "b", "b"]
    lb = balancer("p2c-ewma", 4, zone="a", zones=zones)
    a1, a2, _, _ = lb.states()
    assert set(shares(lb, 200)) == {a1.key, a2.key}
    a1.set_health_check(False)  # 1 of 2 available: 50% is still enough
    assert set(shares(lb, 200)) == {a2.key}
    tried = frozenset({a2.key})  # the zone's only usable one was tried: go elsewhere
    assert all(lb.pick(tried).endpoint.zone == "b" for _ in range(20))  # type: ignore[union-attr]
    a2.set_health_check(False)  # none left in zone a: spill to b
    assert {k for k in shares(lb, 200)} == {"127.0.0.4:8000", "127.0.0.5:8000"}


def test_no_zone_set_balances_over_all() -> None:
    lb = balancer("p2c-least-request", 4, zones=["a", "a", "b", "b"])
    assert len(shares(lb, 400)) == 4


def test_panic_engages_and_releases_with_one_event_each(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    lb = balancer("p2c-ewma", 4, clock=clock)
    events: list[tuple[str, dict[str, Any]]] = []
    unsubscribe = _events.subscribe(lambda kind, svc, attrs: events.append((kind, attrs)))
    caplog.set_level(logging.WARNING, "meshclient")
    try:
        states = lb.states()
        for s in states[:2]:
            s.set_health_check(False)
        assert set(shares(lb, 100)) == {states[2].key, states[3].key}  # 50%: no panic
        states[2].set_health_check(False)  # 25% available
        seen = shares(lb, 400)
        assert lb.panic and len(seen) == 4  # balances over all
        assert lb.snapshot()["panic"] is True
        for s in states:
            s.set_health_check(True)
        shares(lb, 10)
        assert not lb.panic
    finally:
        unsubscribe()
    panic = [attrs for kind, attrs in events if kind == _events.PANIC]
    assert panic == [{"active": True, "healthy": 1, "total": 4},
                     {"active": False, "healthy": 4, "total": 4}]
    assert len([r for r in caplog.records if "panic" in r.getMessage()]) == 2


def test_breaker_changes_are_seen_within_the_recount_interval() -> None:
    clock = FakeClock()
    lb = balancer("round-robin", 2, clock=clock)
    breakers = [FakeBreaker("open"), FakeBreaker("open")]
    for state, breaker in zip(lb.states(), breakers, strict=True):
        state.breaker = breaker
    lb.pick()
    assert lb.panic
    breakers[0].value = breakers[1].value = "closed"
    lb.pick()
    assert lb.panic  # not yet recounted
    clock.advance(0.2)
    lb.pick()
    assert not lb.panic


def test_snapshot_has_the_documented_keys() -> None:
    clock = FakeClock()
    lb = balancer("p2c-ewma", 2, clock=clock, zones=["a", None])
    snap = lb.snapshot()
    assert snap["kind"] == "p2c-ewma" and snap["panic"] is False
    ep = snap["endpoints"][0]
    assert set(ep) >= {"endpoint", "zone", "weight", "in_flight", "requests", "failures",
                       "estimate_ms", "ejected", "ejected_until_s", "times_ejected", "health"}
    assert ep["estimate_ms"] == 30.0 and ep["ejected_until_s"] is None and ep["zone"] == "a"
    assert "LoadBalancer users" in repr(lb) and "healthy" in repr(lb.states()[0])


def test_empty_balancer_picks_nothing() -> None:
    for kind in KINDS:
        lb = balancer(kind, 0)
        assert lb.pick() is None
        lb.update(endpoints(1))
        assert lb.pick() is not None


@pytest.mark.parametrize("kind", KINDS)
def test_concurrent_picks_keep_counters_consistent(kind: str) -> None:
    """Many threads picking, beginning and ending at once: nothing is lost or negative."""

    clock = FakeClock()
    lb = balancer(kind, 5, clock=clock)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for i in range(500):
                state = lb.pick()
                assert state is not None
                start = state.begin(clock.now_ns())
                state.end(start, clock.now_ns() + 1_000_000, ok=i % 7 != 0)
                if i % 50 == 0:
                    lb.update(endpoints(5))
        except BaseException as exc:  # reported below
            errors.append(exc)

    run_threads([work] * 8, 30)
    assert not errors
    assert all(s.in_flight == 0 for s in lb.states())
    assert sum(s.requests for s in lb.states()) == 8 * 500


@given(st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=8))
@settings(max_examples=60, deadline=None)
def test_smooth_schedule_serves_each_exactly_its_weight(weights: list[int]) -> None:
    order = smooth_schedule(weights)
    counts = Counter(order)
    assert all(counts[i] * sum(weights) == w * len(order) for i, w in enumerate(weights))
    heaviest = max(range(len(weights)), key=weights.__getitem__)
    if len(weights) > 1 and weights[heaviest] * 2 <= sum(weights):  # no endpoint bunches up
        assert all(a != b or a == heaviest for a, b in itertools.pairwise(order))


@given(st.lists(st.integers(min_value=1, max_value=20), min_size=2, max_size=6),
       st.integers(min_value=0, max_value=2**32))
@settings(max_examples=40, deadline=None)
def test_alias_table_draws_follow_weights(weights: list[int], seed: int) -> None:
    table = WeightedDraw(weights)
    rng = SeededRng(seed)
    n = 4000
    counts = Counter(table.draw(rng) for _ in range(n))
    total = sum(weights)
    for i, w in enumerate(weights):
        assert abs(counts[i] / n - w / total) < 0.05
