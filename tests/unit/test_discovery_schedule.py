"""The refresh schedule: TTL clamp, refresh before expiry, error backoff, grace. Pure."""

from __future__ import annotations

import pytest

from meshclient.discovery import Endpoint, Resolution, ScheduleConfig
from meshclient.discovery._schedule import REFRESH_AT, RefreshSchedule
from meshclient.testing import FakeClock, SeededRng

A = Endpoint("10.0.0.1", 80)
B = Endpoint("10.0.0.2", 80)


def answer(*endpoints: Endpoint, ttl: float | None = 30.0) -> Resolution:
    return Resolution(tuple(endpoints), "dns://x:80", ttl, exists=bool(endpoints))


def schedule(**kw: float) -> RefreshSchedule:
    return RefreshSchedule(ScheduleConfig(**kw), SeededRng(7))


def test_ttl_is_clamped_and_refresh_comes_before_expiry() -> None:
    s = schedule(min_ttl_s=5, max_ttl_s=60)
    clock = FakeClock()
    for ttl, clamped in ((0, 5), (1, 5), (30, 30), (3600, 60)):
        step = s.on_answer(clock.now_ns(), answer(A, ttl=ttl))
        assert step.publish is not None
        assert step.delay_s is not None
        assert clamped * REFRESH_AT * 0.9 <= step.delay_s <= clamped * REFRESH_AT
        assert step.delay_s < clamped  # always before the answer expires


def test_watch_sources_are_not_polled() -> None:
    step = schedule().on_answer(0, answer(A, ttl=None))
    assert step.publish is not None and step.delay_s is None


def test_errors_back_off_exponentially_and_mark_the_first_of_a_streak() -> None:
    s = schedule(backoff_base_s=1, backoff_max_s=8)
    s.on_answer(0, answer(A))
    steps = [s.on_error(0) for _ in range(6)]
    assert [st.first_failure for st in steps] == [True] + [False] * 5
    ceilings = [1, 2, 4, 8, 8, 8]
    for st, ceiling in zip(steps, ceilings, strict=True):
        assert st.publish is None  # the last good set stays
        assert st.delay_s is not None and ceiling / 2 <= st.delay_s <= ceiling
    recovered = s.on_answer(0, answer(A))
    assert recovered.recovered_after == 6
    assert s.on_error(0).first_failure  # a new streak


def test_empty_answer_is_held_for_the_grace_period() -> None:
    s = schedule(min_ttl_s=1, grace_s=10)
    clock = FakeClock()
    s.on_answer(clock.now_ns(), answer(A, B))
    held = s.on_answer(clock.now_ns(), answer())
    assert held.publish is None and held.held_empty
    clock.advance(6)
    again = s.on_answer(clock.now_ns(), answer())
    assert again.publish is None and again.delay_s is not None and again.delay_s <= 4
    clock.advance(4)
    wiped = s.on_answer(clock.now_ns(), answer())
    assert wiped.publish is not None and wiped.publish.empty


def test_a_non_empty_answer_restarts_the_grace_clock() -> None:
    s = schedule(grace_s=10)
    clock = FakeClock()
    s.on_answer(clock.now_ns(), answer(A))
    s.on_answer(clock.now_ns(), answer())
    clock.advance(9)
    assert s.on_answer(clock.now_ns(), answer(B)).publish == answer(B)
    clock.advance(9)
    assert s.on_answer(clock.now_ns(), answer()).held_empty


def test_empty_first_answer_is_published_at_once() -> None:
    step = schedule().on_answer(0, answer())
    assert step.publish is not None and step.publish.empty


@pytest.mark.parametrize("kw", [dict(min_ttl_s=0), dict(min_ttl_s=10, max_ttl_s=5),
                                dict(grace_s=-1), dict(backoff_base_s=2, backoff_max_s=1)])
def test_bad_config_names_the_value(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"\d"):
        ScheduleConfig(**kw)
