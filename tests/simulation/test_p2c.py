"""Finagle-style simulations: a discrete-event loop on a fake clock with seeded randomness
drives a real `LoadBalancer`; the assertions are statistical properties of the shares."""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable

import pytest

from meshclient.balance import EndpointState, LoadBalancer
from meshclient.discovery.endpoint import Endpoint
from meshclient.policy import BalancerPolicy, OutlierPolicy
from meshclient.testing import FakeClock, SeededRng

Latency = Callable[[EndpointState, float], float]


class Sim:
    """Open-loop arrivals at `rate` per second; each request holds its endpoint for the
    latency the model returns, then ends (in time order, before later arrivals)."""

    def __init__(self, kind: str, n: int, seed: int = 42) -> None:
        self.clock = FakeClock(start_ns=0)
        self.rng = SeededRng(seed)
        self.lb = LoadBalancer("sim", BalancerPolicy(kind=kind), OutlierPolicy(),
                               clock=self.clock, rng=SeededRng(seed + 1))
        self.endpoints = [Endpoint(f"10.0.0.{i}", 80) for i in range(n)]
        self.lb.update(tuple(self.endpoints))
        self.now = 0.0
        self._pending: list[tuple[float, int, EndpointState, int]] = []
        self._seq = 0
        self.sent: list[tuple[float, str]] = []

    def _move(self, t: float) -> None:
        self.clock.advance(t - self.now)
        self.now = t

    def _finish_until(self, t: float) -> None:
        while self._pending and self._pending[0][0] <= t:
            at, _, state, start = heapq.heappop(self._pending)
            self._move(at)
            state.end(start, self.clock.now_ns(), ok=True)

    def run(self, requests: int, rate: float, latency: Latency) -> Counter[str]:
        counts: Counter[str] = Counter()
        t0 = self.now
        for i in range(requests):
            t = t0 + i / rate
            self._finish_until(t)
            self._move(t)
            state = self.lb.pick()
            assert state is not None
            start = state.begin(self.clock.now_ns())
            self._seq += 1
            heapq.heappush(self._pending, (t + latency(state, t), self._seq, state, start))
            counts[state.key] += 1
            self.sent.append((t, state.key))
        return counts

    def drain(self) -> None:
        self._finish_until(float("inf"))

    def add(self, endpoint: Endpoint) -> None:
        self.endpoints.append(endpoint)
        self.lb.update(tuple(self.endpoints))


def jittered(base: float, rng: SeededRng) -> Latency:
    return lambda state, t: base * (0.8 + 0.4 * rng.random())


def assert_even(counts: Counter[str], n: int, total: int, tolerance: float) -> None:
    assert len(counts) == n
    for key, count in counts.items():
        assert abs(count / total - 1 / n) <= tolerance / n, (key, count, counts)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["p2c-ewma", "p2c-least-request", "random", "round-robin"])
def test_equal_load_is_spread_evenly(kind: str) -> None:
    sim = Sim(kind, 10)
    counts = sim.run(20_000, 1000, jittered(0.010, sim.rng))
    assert_even(counts, 10, 20_000, tolerance=0.25)  # each within 25% of its fair share


@pytest.mark.parametrize("kind", ["p2c-ewma", "p2c-least-request"])
def test_a_slow_endpoint_gets_a_vanishing_share(kind: str) -> None:
    sim = Sim(kind, 5)
    slow = sim.endpoints[2].key
    model = jittered(0.010, sim.rng)

    def latency(state: EndpointState, t: float) -> float:
        return 0.5 if state.key == slow else model(state, t)

    counts = sim.run(20_000, 500, latency)
    share = counts[slow] / 20_000
    if kind == "p2c-ewma":
        assert share < 0.005, counts  # the estimate remembers: a handful of requests
    else:
        assert share < 0.05, counts  # least-request only sees the pile-up it causes


def test_peak_ewma_notices_a_slowdown_within_a_few_requests() -> None:
    sim = Sim("p2c-ewma", 6)
    model = jittered(0.010, sim.rng)
    slow_from = 5.0
    bad = sim.endpoints[0].key

    def latency(state: EndpointState, t: float) -> float:
        return 0.5 if state.key == bad and t >= slow_from else model(state, t)

    sim.run(10_000, 200, latency)  # 50 s: healthy for 5 s, then slow
    after = [k for t, k in sim.sent if t >= slow_from]
    assert after.count(bad) <= 5, after.count(bad)  # at 200 rps: ~100 arrivals per 500 ms


def test_an_endpoint_without_history_is_probed_but_not_flooded() -> None:
    """Existing endpoints answer in 200 ms; a new one's 30 ms prior would look cheaper. It
    must get exactly one request until that one answers (Finagle's penalty), then its real
    latency (1 s) keeps it out."""
    sim = Sim("p2c-ewma", 4)
    sim.run(2_000, 100, lambda state, t: 0.2)
    newcomer = Endpoint("10.0.0.99", 80)
    sim.add(newcomer)
    start = sim.now

    def latency(state: EndpointState, t: float) -> float:
        return 1.0 if state.key == newcomer.key else 0.2

    sim.run(1_000, 100, latency)
    first_second = [k for t, k in sim.sent if start <= t < start + 1.0]
    assert first_second.count(newcomer.key) == 1
    later = [k for t, k in sim.sent if t >= start + 1.0]
    assert 0 < later.count(newcomer.key) < len(later) * 0.05


def test_weights_give_proportional_load() -> None:
    sim = Sim("p2c-ewma", 0)
    for i, w in enumerate([1, 2, 3]):
        sim.add(Endpoint(f"10.0.1.{i}", 80, weight=w))
    counts = sim.run(12_000, 1000, jittered(0.010, sim.rng))
    for i, w in enumerate([1, 2, 3]):
        assert counts[f"10.0.1.{i}:80"] / 12_000 == pytest.approx(w / 6, abs=0.06)


@pytest.mark.parametrize("kind", ["p2c-ewma", "p2c-least-request"])
def test_slow_endpoints_in_a_large_fleet_get_a_small_share(kind: str) -> None:
    """500 endpoints (beyond the small-fleet shortcuts), 10 of them slow: P2C keeps away
    from them as it does with a handful of endpoints."""
    sim = Sim(kind, 500)
    slow = {e.key for e in sim.endpoints[::50]}
    model = jittered(0.010, sim.rng)

    def latency(state: EndpointState, t: float) -> float:
        return 0.5 if state.key in slow else model(state, t)

    counts = sim.run(40_000, 4000, latency)
    share = sum(counts[key] for key in slow) / 40_000
    fair = len(slow) / 500
    assert share < fair / (4 if kind == "p2c-ewma" else 2), share


@pytest.mark.parametrize("kind", ["p2c-ewma", "random", "round-robin"])
def test_equal_load_is_spread_evenly_over_a_large_fleet(kind: str) -> None:
    sim = Sim(kind, 400)
    counts = sim.run(40_000, 4000, jittered(0.010, sim.rng))
    per = [counts[e.key] for e in sim.endpoints]
    assert min(per) > 0 and max(per) < 4 * 40_000 / 400, (min(per), max(per))
