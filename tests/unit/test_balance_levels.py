"""The balancer at fleet scale and across priority groups (pure; fake clock, seeded rng):
round robin spreads a skipped endpoint's turn, large weighted schedules keep their shares,
incremental counting reaches the same panic/zone/priority decisions as a full count, and a
pick whose group is used up falls through to the next priority."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshclient.balance import LoadBalancer
from meshclient.balance._levels import SMALL_FLEET, SWEEP_CHUNK, SWEEP_EVERY
from meshclient.balance._weights import MAX_SMOOTH_WORK, SpreadSchedule, WeightedDraw, smooth_schedule
from meshclient.discovery.endpoint import Endpoint
from meshclient.policy import BalancerPolicy, OutlierPolicy
from meshclient.testing import FakeClock, SeededRng
from tests.unit.test_outlier import fail
from tests.unit.test_pickers import KINDS, FakeBreaker, shares


def fleet(n: int, *, weights: list[int] | None = None, priorities: list[int] | None = None,
          zones: list[str | None] | None = None) -> tuple[Endpoint, ...]:
    return tuple(Endpoint(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", 8000,
                          weights[i] if weights else 1, zones[i] if zones else None,
                          priority=priorities[i] if priorities else 0) for i in range(n))


def make(kind: str, endpoints: tuple[Endpoint, ...], *, clock: FakeClock | None = None,
         zone: str | None = None, seed: int = 7) -> LoadBalancer:
    lb = LoadBalancer("users", BalancerPolicy(kind=kind), OutlierPolicy(),
                      clock=clock or FakeClock(), rng=SeededRng(seed), zone=zone)
    lb.update(endpoints)
    return lb


@pytest.mark.parametrize("down", ["breaker", "health-check", "excluded"])
def test_round_robin_spreads_a_skipped_endpoints_turn(down: str) -> None:
    """One of four unusable: the other three share evenly (not 1:1:2 to its successor)."""
    lb = make("round-robin", fleet(4))
    states = lb.states()
    exclude: frozenset[str] = frozenset()
    if down == "breaker":
        states[1].breaker = FakeBreaker("open")
    elif down == "health-check":
        states[1].set_health_check(False)
    else:
        exclude = frozenset({states[1].key})
    seen = shares(lb, 6000, exclude)
    assert states[1].key not in seen
    for state in (states[0], states[2], states[3]):
        assert seen[state.key] / 6000 == pytest.approx(1 / 3, abs=0.04)


def test_round_robin_order_is_unchanged_while_all_are_healthy() -> None:
    lb = make("round-robin", fleet(5))
    keys = [s.key for s in lb.states()]
    assert [lb.pick().key for _ in range(10)] == keys * 2  # type: ignore[union-attr]


def test_large_weighted_schedule_keeps_the_shares() -> None:
    weights = [1 + i % 3 for i in range(2000)]
    order = smooth_schedule(weights)
    assert isinstance(order, SpreadSchedule)  # n x total is beyond the nginx loop
    counts = Counter(order[k] for k in range(len(order) * 4))
    by_weight: dict[int, list[int]] = {1: [], 2: [], 3: []}
    for i, w in enumerate(weights):
        by_weight[w].append(counts[i])
    means = {w: sum(c) / len(c) for w, c in by_weight.items()}
    assert means[2] / means[1] == pytest.approx(2, rel=0.05)
    assert means[3] / means[1] == pytest.approx(3, rel=0.05)


@given(st.lists(st.integers(min_value=1, max_value=20), min_size=2, max_size=40))
@settings(max_examples=60, deadline=None)
def test_spread_schedule_serves_every_weight_its_share(weights: list[int]) -> None:
    order = SpreadSchedule(weights)
    total = sum(weights)
    assert len(order) == total
    periods = 50
    counts = Counter(order[k] for k in range(total * periods))
    assert set(counts) <= set(range(len(weights)))
    for i, w in enumerate(weights):  # a Weyl sequence: off by at most a few per period
        assert abs(counts[i] - w * periods) <= 2 + w * periods * 0.1


def test_equal_weights_need_no_schedule_loop() -> None:
    assert smooth_schedule([4] * 10_000) == tuple(range(10_000))
    assert isinstance(smooth_schedule([1, 2] * 5_000), SpreadSchedule)  # not the nginx loop
    assert len(smooth_schedule([1, 2] * 5_000)) * 10_000 > MAX_SMOOTH_WORK


@pytest.mark.parametrize("kind", KINDS)
def test_large_fleet_panic_follows_ejections_without_a_full_recount(kind: str) -> None:
    """1,000 endpoints: ejections and health-check changes are counted as they happen."""
    n = 1000
    clock = FakeClock()
    lb = make(kind, fleet(n), clock=clock)
    states = lb.states()
    for state in states[:600]:
        state.set_health_check(False)
    lb.pick()
    assert lb.panic  # 40% available < 50%
    for state in states[:200]:
        state.set_health_check(True)
    lb.pick()
    assert not lb.panic  # 60% available
    assert lb.snapshot()["available"] == 600


def test_large_fleet_breakers_are_seen_within_one_sweep_pass() -> None:
    n = 1000
    clock = FakeClock()
    lb = make("p2c-ewma", fleet(n), clock=clock)
    breakers = [FakeBreaker("open") for _ in range(n)]
    for state, breaker in zip(lb.states()[:700], breakers, strict=False):
        state.breaker = breaker
    passes = (n // SWEEP_CHUNK + 1) * SWEEP_EVERY  # picks in one pass
    for _ in range(passes):
        lb.pick()
    assert lb.panic
    for breaker in breakers:
        breaker.value = "closed"
    for _ in range(passes):
        lb.pick()
    assert lb.panic  # the next pass starts only after RECOUNT_S
    clock.advance(0.2)
    for _ in range(passes):
        lb.pick()
    assert not lb.panic


def test_update_keeps_counts_of_survivors() -> None:
    n = 500
    lb = make("random", fleet(n))
    states = lb.states()
    for state in states[:300]:
        state.set_health_check(False)
    lb.pick()
    assert lb.panic
    lb.update(fleet(n + 10))  # survivors keep their verdict; ten new healthy ones
    lb.pick()
    assert lb.panic and lb.states()[0] is states[0]
    lb.update(fleet(n)[250:])  # most unhealthy ones leave
    lb.pick()
    assert not lb.panic


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=40), max_size=30, unique=True),
       st.lists(st.integers(min_value=0, max_value=40), max_size=30, unique=True),
       st.sampled_from(KINDS), st.booleans())
def test_an_update_keeps_exactly_the_survivors(old: list[int], new: list[int], kind: str,
                                               zoned: bool) -> None:
    """Any old and new endpoint sets: a survivor keeps its state (and its health count)
    with the new `Endpoint`; a newcomer gets a fresh state; the index and counts match."""
    def endpoints(ids: list[int], weight: int) -> tuple[Endpoint, ...]:
        return tuple(Endpoint(f"10.0.0.{i}", 8000, weight + i % 2, ("a", "b")[i % 2]
                              if zoned else None, priority=i % 3) for i in ids)

    lb = make(kind, endpoints(old, 1), zone="a" if zoned else None)
    before = {s.key: s for s in lb.states()}
    for state in lb.states()[::2]:
        state.set_health_check(False)
    lb.pick()  # counts the verdicts
    lb.update(endpoints(new, 2))
    gen = lb._gen
    assert sorted(s.key for s in gen.states) == sorted(e.key for e in endpoints(new, 2))
    for i, state in enumerate(gen.states):
        assert gen.index[state.key] == i
        assert state.endpoint.weight == 2 + int(state.endpoint.host.split(".")[-1]) % 2
        assert (state.key in before) == (state is before.get(state.key))
        assert gen.flags[i] == (state.health_check is False)
    for level in gen.levels:
        assert level.down == sum(s.health_check is False for s in level.states)


def test_fastest_in_a_large_fleet_comes_from_the_sweep() -> None:
    clock = FakeClock()
    lb = make("p2c-ewma", fleet(SMALL_FLEET * 4), clock=clock)
    state = lb.states()[10]
    state.end(state.begin(clock.now_ns()), clock.now_ns() + 3_000_000, ok=True)  # 3 ms
    for _ in range((len(lb.states()) // SWEEP_CHUNK + 1) * SWEEP_EVERY):
        lb.pick()
    assert lb.fastest_ns() == 3_000_000


def test_zone_preference_in_a_large_fleet() -> None:
    n = 400
    zones: list[str | None] = ["a" if i % 4 == 0 else "b" for i in range(n)]
    lb = make("p2c-ewma", fleet(n, zones=zones), zone="a")
    assert all(s.endpoint.zone == "a" for s in (lb.pick() for _ in range(300)))
    for state in lb.states():
        if state.endpoint.zone == "a" and state.key < "10.0.0.200":
            state.set_health_check(False)
    local_ok = sum(1 for s in lb.states() if s.endpoint.zone == "a" and s.rank() != 2)
    lb.pick()
    seen = {s.endpoint.zone for s in (lb.pick() for _ in range(300))}  # type: ignore[union-attr]
    assert seen == ({"a"} if local_ok * 2 >= n // 4 else {"a", "b"})


# --- priority groups -------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_lowest_priority_group_serves_while_it_has_an_available_endpoint(kind: str) -> None:
    lb = make(kind, fleet(4, priorities=[0, 0, 1, 1]))
    first, second = {s.key for s in lb.states()[:2]}, {s.key for s in lb.states()[2:]}
    assert set(shares(lb, 200)) == first
    lb.states()[0].set_health_check(False)
    assert set(shares(lb, 200)) == first - {lb.states()[0].key}
    lb.states()[1].breaker = breaker = FakeBreaker("open")  # seen by the next sweep
    assert set(shares(lb, 200)) == second  # the whole first group is down
    assert lb.snapshot()["priority"] == 1
    breaker.value = "closed"
    lb.states()[0].set_health_check(True)
    assert set(shares(lb, 200)) == first  # back once it is available again


@pytest.mark.parametrize("kind", KINDS)
def test_a_retry_falls_through_to_the_next_priority_group(kind: str) -> None:
    lb = make(kind, fleet(5, priorities=[0, 0, 1, 1, 2]))
    keys = [s.key for s in lb.states()]
    assert set(shares(lb, 200, frozenset(keys[:1]))) == {keys[1]}
    assert set(shares(lb, 200, frozenset(keys[:2]))) == {keys[2], keys[3]}
    assert set(shares(lb, 100, frozenset(keys[:4]))) == {keys[4]}
    assert lb.pick(frozenset(keys)) is not None  # everything tried: reuse rather than fail


def test_priorities_sort_numerically_and_regroup_on_update() -> None:
    lb = make("round-robin", fleet(3, priorities=[10, 2, 2]))
    keys = [s.key for s in lb.states()]
    assert keys[0] == fleet(3)[1].key  # priority 2 first
    moved = tuple(Endpoint(e.host, e.port, priority=0 if i == 0 else 2)
                  for i, e in enumerate(fleet(3)))
    lb.update(moved)
    assert set(shares(lb, 30)) == {moved[0].key}


def test_the_usual_pick_in_a_large_fleet_does_no_sweeping() -> None:
    """A pass re-reads `SWEEP_CHUNK` endpoints once every `SWEEP_EVERY` picks: fifteen
    picks in sixteen read no endpoint beyond their two candidates."""
    lb = make("p2c-ewma", fleet(10_000))
    lb.pick()  # the first pick starts a pass
    gen = lb._gen
    start = gen.cursor
    picks = 160
    for _ in range(picks):
        lb.pick()
    assert gen.cursor - start == picks // SWEEP_EVERY * SWEEP_CHUNK
    assert (gen.cursor - start) / picks <= 1  # endpoints re-read per pick, on average


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=2, max_value=20_000), st.integers(min_value=0, max_value=2**32))
def test_uniform_draws_are_two_distinct_indices_in_range(n: int, seed: int) -> None:
    table = WeightedDraw([1] * n)
    rng = SeededRng(seed)
    for _ in range(20):
        a, b = table.draw_two(rng)
        assert 0 <= a < n and 0 <= b < n and a != b


def test_uniform_draws_cover_every_index_evenly() -> None:
    table, rng = WeightedDraw([1] * 10), SeededRng(3)
    counts = Counter(i for _ in range(20_000) for i in table.draw_two(rng))
    assert set(counts) == set(range(10))
    assert max(counts.values()) < 1.1 * min(counts.values())


def test_an_update_keeps_the_heap_of_due_probes() -> None:
    """An update pushes entries for the endpoints it adds and keeps the survivors' (no
    rebuild over every ejected endpoint); an ejected endpoint that left is never probed,
    the others come due as before; a new `base_ejection` rebuilds the heap."""
    clock = FakeClock()
    policy = OutlierPolicy(ejection="linear", base_ejection=10.0, max_ejected_percent=60.0)
    lb = LoadBalancer("users", BalancerPolicy(), policy, clock=clock, rng=SeededRng(7))
    endpoints = fleet(100)
    lb.update(endpoints)
    ejected = lb.states()[:10]
    for state in ejected:
        fail(state, clock, 5)
    entries = {id(entry) for entry in lb.detector._due}
    assert len(entries) == 10
    lb.update((*endpoints[1:], Endpoint("10.9.9.9", 8000)))  # the first ejected one left
    assert entries <= {id(entry) for entry in lb.detector._due}
    assert lb.detector.ejected_count == 9
    clock.advance(10.5)
    probed = set()
    for _ in range(200):
        state = lb.pick()
        if state is not None and state.health() == "probing":
            probed.add(state)
    assert probed == set(ejected[1:])
    lb.detector.track(lb.states(), OutlierPolicy(base_ejection=20.0), [], lb._gen.index)
    assert not entries & {id(entry) for entry in lb.detector._due}
