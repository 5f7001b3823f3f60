"""Pure limit logic on a fake clock: token bucket reservations, bulkhead, adaptive throttle."""

from __future__ import annotations

import pytest

from meshclient.errors import PolicyError
from meshclient.policy import Policy
from meshclient.security.limits import Bulkhead, TokenBucket
from meshclient.security.throttle import AdaptiveThrottle
from meshclient.testing import FakeClock, SeededRng


def test_bucket_burst_then_reservations_at_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=2, clock=clock)
    assert bucket.reserve() == 0.0
    assert bucket.reserve() == 0.0
    assert bucket.reserve(0.0) is None  # nothing taken when refused
    assert bucket.reserve(1.0) == pytest.approx(0.1)
    assert bucket.reserve(1.0) == pytest.approx(0.2)  # queued behind the first reservation
    assert bucket.reserve(0.25) is None
    clock.advance(0.3)  # -2 tokens + 3 refilled
    assert bucket.reserve() == 0.0
    assert bucket.reserve() is None
    clock.advance(0.1)
    assert bucket.reserve() == 0.0


def test_bucket_never_exceeds_burst_and_refund() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=100, burst=3, clock=clock)
    clock.advance(60)
    assert bucket.tokens == 3
    assert [bucket.reserve() for _ in range(4)] == [0.0, 0.0, 0.0, None]
    bucket.refund()
    assert bucket.reserve() == 0.0
    with pytest.raises(ValueError, match="rate must be greater than 0: 0"):
        TokenBucket(rate=0, burst=1, clock=clock)


def test_bulkhead_wakes_oldest_waiter() -> None:
    bulkhead = Bulkhead(1)
    assert bulkhead.try_enter()
    assert not bulkhead.try_enter()
    woken: list[str] = []
    assert bulkhead.add_waiter(lambda: woken.append("a"))
    assert bulkhead.add_waiter(lambda: woken.append("b"))
    bulkhead.leave()
    assert woken == ["a"]
    assert bulkhead.try_enter()
    assert repr(bulkhead) == "<Bulkhead in_flight=1/1 waiting=1>"


def test_throttle_never_rejects_a_healthy_backend() -> None:
    clock, rng = FakeClock(), SeededRng(1)
    throttle = AdaptiveThrottle(k=2, window_s=120, clock=clock, rng=rng)
    for _ in range(1000):
        assert not throttle.should_reject()
        throttle.record(accepted=True)
        clock.advance(0.01)
    assert throttle.reject_probability() == 0.0


def test_throttle_formula_and_window() -> None:
    clock, rng = FakeClock(), SeededRng(2)
    throttle = AdaptiveThrottle(k=2, window_s=10, clock=clock, rng=rng)
    sent = 0
    for _ in range(1000):
        if not throttle.should_reject():
            sent += 1
            throttle.record(accepted=False)
        clock.advance(0.005)
    # requests=1000, accepts=0: p -> 1000/1001; only a trickle reaches the backend
    assert sent < 50
    assert throttle.reject_probability() == pytest.approx(1000 / 1001, abs=1e-3)
    clock.advance(11)  # the window slides past every sample
    assert throttle.reject_probability() == 0.0


def test_throttle_with_half_accepted() -> None:
    clock, rng = FakeClock(), SeededRng(3)
    throttle = AdaptiveThrottle(k=2, window_s=60, clock=clock, rng=rng)
    for i in range(400):
        throttle.record(accepted=i % 4 == 0)  # a quarter accepted: requests - 2*accepts > 0
    assert throttle.reject_probability() == pytest.approx((400 - 2 * 100) / 401)
    rejected = sum(throttle.should_reject() for _ in range(200))
    assert 50 < rejected < 150  # each decided with p ~ 0.5, each rejection counted


def test_limits_policy_errors_name_field_and_value() -> None:
    with pytest.raises(PolicyError) as info:
        Policy.from_dict({"services": {"a": {"limits": {"rate": 0, "max_concurrent": 0}}}})
    assert info.value.errors == ("services.a.limits.rate must be greater than 0: 0",
                                 "services.a.limits.max_concurrent must be between 1 and 1e+06: 0")
    with pytest.raises(PolicyError, match=r"services\.a\.limits\.max_wait .*'-1s'"):
        Policy.from_dict({"services": {"a": {"limits": {"max_wait": "-1s"}}}})
    with pytest.raises(PolicyError, match=r"services\.a\.limits\.redis must be a redis://"):
        Policy.from_dict({"services": {"a": {"limits": {"rate": 1, "redis": "http://x"}}}})
