"""Peak-EWMA arithmetic on a fake clock (pure; no I/O)."""

from __future__ import annotations

import math

import pytest

from meshclient.balance.load import PeakEwma, least_request_cost
from meshclient.balance.load.peak_ewma import PENALTY
from meshclient.testing import FakeClock

MS = 1e-3


def test_starts_at_the_default_rtt_prior() -> None:
    clock = FakeClock()
    ewma = PeakEwma(decay_s=10, default_rtt_s=0.03, now_ns=clock.now_ns())
    assert ewma.estimate(clock.now_ns()) == pytest.approx(0.03)
    # untried, it costs nothing (Finagle): the next pick that draws it sends it a request
    assert ewma.cost(clock.now_ns(), pending=0) == 0.0
    clock.advance(10)  # the prior decays like an estimate (tower), so it is tried in time
    assert ewma.estimate(clock.now_ns()) == pytest.approx(0.03 * math.exp(-1))
    ewma.observe(0.2, clock.now_ns())  # the first sample replaces the prior
    assert ewma.estimate(clock.now_ns()) == pytest.approx(0.2)


def test_a_peak_replaces_the_estimate_at_once() -> None:
    clock = FakeClock()
    ewma = PeakEwma(decay_s=10, default_rtt_s=0.03, now_ns=clock.now_ns())
    ewma.observe(10 * MS, clock.now_ns())
    clock.advance(1)
    ewma.observe(500 * MS, clock.now_ns())
    assert ewma.estimate(clock.now_ns()) == pytest.approx(0.5)


def test_a_faster_sample_is_blended_by_elapsed_time() -> None:
    clock = FakeClock()
    ewma = PeakEwma(decay_s=10, default_rtt_s=0.03, now_ns=clock.now_ns())
    ewma.observe(0.5, clock.now_ns())
    clock.advance(5)
    ewma.observe(0.01, clock.now_ns())
    w = math.exp(-5 / 10)
    assert ewma.estimate(clock.now_ns()) == pytest.approx(0.5 * w + 0.01 * (1 - w))


def test_estimate_decays_on_read_without_writing() -> None:
    clock = FakeClock()
    ewma = PeakEwma(decay_s=10, default_rtt_s=0.03, now_ns=clock.now_ns())
    ewma.observe(0.2, clock.now_ns())
    clock.advance(10)
    assert ewma.estimate(clock.now_ns()) == pytest.approx(0.2 * math.exp(-1))
    assert ewma.estimate(clock.now_ns()) == pytest.approx(0.2 * math.exp(-1))  # idempotent


def test_cost_is_estimate_times_pending_plus_one() -> None:
    clock = FakeClock()
    ewma = PeakEwma(decay_s=10, default_rtt_s=0.03, now_ns=clock.now_ns())
    ewma.observe(0.02, clock.now_ns())
    assert ewma.cost(clock.now_ns(), pending=3) == pytest.approx(0.08)
    assert least_request_cost(3) == 4


def test_no_history_with_a_request_in_flight_is_penalised() -> None:
    """Finagle: an endpoint with no history is probed once, not flooded."""
    ewma = PeakEwma(decay_s=10, default_rtt_s=0.03)
    assert ewma.cost(0, pending=1) == PENALTY + 1
    ewma.observe(0.01, 0)
    assert ewma.cost(0, pending=1) == pytest.approx(0.02)


def test_a_fast_failure_does_not_look_cheap() -> None:
    clock = FakeClock()
    ok = PeakEwma(decay_s=10, default_rtt_s=0.03, now_ns=clock.now_ns())
    bad = PeakEwma(decay_s=10, default_rtt_s=0.03, now_ns=clock.now_ns())
    for _ in range(3):
        clock.advance(0.1)
        ok.observe(0.010, clock.now_ns())
        bad.observe(0.001, clock.now_ns(), ok=False)  # a 1 ms 503
    now = clock.now_ns()
    assert bad.estimate(now) > 4 * ok.estimate(now)
    assert bad.estimate(now) >= 0.03 * 2 ** 3 * 0.9  # doubles per failure from the prior


def test_failure_penalty_is_capped_at_the_decay_time() -> None:
    ewma = PeakEwma(decay_s=1.0, default_rtt_s=0.03, failure_penalty=10)
    for _ in range(10):
        ewma.observe(0.001, 0, ok=False)
    assert ewma.estimate(0) == pytest.approx(1.0)
    ewma.observe(5.0, 0, ok=False)  # a real 5 s timeout is still recorded as 5 s
    assert ewma.estimate(0) == pytest.approx(5.0)


def test_a_clock_going_backwards_counts_as_no_time() -> None:
    ewma = PeakEwma(decay_s=10, default_rtt_s=0.03, now_ns=5_000_000_000)
    ewma.observe(0.3, 5_000_000_000)
    assert ewma.estimate(1_000_000_000) == pytest.approx(0.3)
    ewma.observe(0.1, 1_000_000_000)  # weight 1: the old estimate is kept
    assert ewma.estimate(5_000_000_000) == pytest.approx(0.3)


def test_configure_keeps_history_and_validates() -> None:
    ewma = PeakEwma(decay_s=10, default_rtt_s=0.03)
    ewma.observe(0.2, 0)
    ewma.configure(decay_s=5, default_rtt_s=0.05)
    assert ewma.estimate(0) == pytest.approx(0.2)
    with pytest.raises(ValueError, match=r"balancer.decay must be greater than 0: 0"):
        ewma.configure(decay_s=0, default_rtt_s=0.05)
    with pytest.raises(ValueError, match=r"balancer.failure_penalty must be at least 1: 0.5"):
        ewma.configure(decay_s=1, default_rtt_s=0.05, failure_penalty=0.5)
    assert "samples=1" in repr(ewma)


def test_stall_bound_raises_the_estimate_of_a_silent_busy_endpoint() -> None:
    ewma = PeakEwma(decay_s=10, default_rtt_s=0.03)
    ewma.observe(0.010, 0)
    assert ewma.cost(50_000_000, pending=1, quiet_since_ns=0) == pytest.approx(0.1)  # 50 ms x 2
    assert ewma.cost(5_000_000, pending=1, quiet_since_ns=0) == pytest.approx(0.02, rel=0.01)
    assert ewma.cost(50_000_000, pending=0, quiet_since_ns=0) == pytest.approx(0.01, rel=0.01)


def test_latency_ring_is_kept_only_while_hedging() -> None:
    from meshclient.resilience.latency import LatencyTracker

    tracker = LatencyTracker()
    assert tracker.percentile_ns(50) is None
    tracker.samples = True
    for _ in range(30):
        tracker.observe(10_000_000)
    assert tracker.percentile_ns(50) == 10_000_000


def test_fastest_estimate_is_the_balancers() -> None:
    from meshclient._runtime import Registry
    from meshclient.policy import Policy
    from meshclient.testing import FakeClock, SeededRng

    policy = Policy.from_dict({"services": {"users": {"endpoints": ["127.0.0.2:80",
                                                                    "127.0.0.3:80"]}}})
    balancer = Registry(FakeClock(), SeededRng(1)).runtime(policy.resolved["users"]).balancer
    assert balancer.fastest_ns() is None  # no sample yet: no estimate
    a, b = balancer.states()
    for state, rtt_ns in ((a, 10_000_000), (b, 2_000_000)):
        state.end(state.begin(0), rtt_ns, True)
    assert balancer.fastest_ns() == 2_000_000


def test_a_probe_follows_a_failure_after_a_doubling_wait() -> None:
    """After a failure the endpoint costs 0 (one probe) once STALE * tau has passed, then
    twice that after each further failure, at most tau; a failure more than tau after the
    previous one starts the series again."""
    clock = FakeClock()
    ewma = PeakEwma(decay_s=10, default_rtt_s=0.03, now_ns=clock.now_ns())
    ewma.observe(0.001, clock.now_ns())
    for wait in (1.0, 2.0, 4.0, 8.0, 10.0, 10.0):
        ewma.observe(0.001, clock.now_ns(), ok=False)
        clock.advance(wait - 0.01)
        assert ewma.cost(clock.now_ns(), pending=0) > 0
        clock.advance(0.01)
        assert ewma.cost(clock.now_ns(), pending=0) == 0.0
        assert ewma.cost(clock.now_ns(), pending=1) > 0  # the probe is out: not flooded
    clock.advance(0.5)  # 10.5 s since the last failure
    ewma.observe(0.001, clock.now_ns(), ok=False)
    clock.advance(1.0)
    assert ewma.cost(clock.now_ns(), pending=0) == 0.0
    ewma.observe(0.002, clock.now_ns())  # the probe answered: its answer is the estimate
    assert ewma.cost(clock.now_ns(), pending=0) == pytest.approx(0.002)
