"""The sans-I/O refresh schedule: jitter, backoff, validators, long-poll index rules."""

from __future__ import annotations

import pytest

from meshclient.control import RefreshSchedule
from meshclient.testing import SeededRng


def test_interval_is_jittered_within_20_percent() -> None:
    schedule, rng = RefreshSchedule(10.0), SeededRng(1)
    delays = [schedule.delay(rng) for _ in range(500)]
    assert 8.0 <= min(delays) < 8.3 and 11.7 < max(delays) <= 12.0


def test_failures_back_off_exponentially_with_cap_and_reset() -> None:
    schedule, rng = RefreshSchedule(10.0, backoff_max_s=30.0), SeededRng(2)
    ceilings = []
    for _ in range(8):
        schedule.observe_failure()
        ceilings.append(max(schedule.delay(rng) for _ in range(200)))
    assert ceilings[0] <= 1.0 and 1.0 < ceilings[1] <= 2.0 and 2.0 < ceilings[2] <= 4.0
    assert 15.0 < ceilings[-1] <= 30.0
    assert min(schedule.delay(rng) for _ in range(200)) >= 15.0  # jitter keeps half
    schedule.observe(304, {})
    assert schedule.failures == 0 and 8.0 <= schedule.delay(rng) <= 12.0


def test_conditional_headers_from_validators() -> None:
    schedule = RefreshSchedule(1.0)
    assert schedule.plan().headers == {}
    assert schedule.observe(200, {"etag": '"abc"', "last-modified": "Wed, 25 Nov 2026"})
    assert schedule.plan().headers == {"If-None-Match": '"abc"',
                                       "If-Modified-Since": "Wed, 25 Nov 2026"}
    assert not schedule.observe(304, {})
    assert schedule.plan().params == {}


def test_long_poll_index_rules() -> None:
    schedule, rng = RefreshSchedule(10.0, long_poll_wait_s=20.0), SeededRng(3)
    assert schedule.observe(200, {"x-consul-index": "7"})
    plan = schedule.plan()
    assert plan.params == {"index": "7", "wait": "20s"} and plan.timeout_s > 20.0
    assert schedule.delay(rng, elapsed_s=5.0) == 0.0  # ask again at once
    assert not schedule.observe(200, {"x-consul-index": "7"})  # wait expired: no parse
    assert schedule.delay(rng, elapsed_s=0.001) == schedule.min_gap_s  # no spinning
    assert schedule.observe(200, {"x-mesh-index": "9"})
    assert schedule.observe(200, {"x-consul-index": "3"})  # backwards: reset to 0
    assert schedule.index == 0
    assert schedule.observe(200, {"x-consul-index": "junk"}) and not schedule.long_polling
    assert schedule.observe(200, {}) and schedule.delay(rng) >= 8.0


def test_invalid_parameters() -> None:
    with pytest.raises(ValueError, match="interval must be greater than 0: 0"):
        RefreshSchedule(0)
