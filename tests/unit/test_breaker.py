"""The pybreaker adapter on a fake monotonic clock (and a fake wall clock)."""

from __future__ import annotations

import time
from typing import Any

import pybreaker

from meshclient import _events
from meshclient.policy._model import BreakerPolicy
from meshclient.resilience.breaker import NORMAL, PROBE, REFUSED, Breaker
from meshclient.testing import FakeClock


def make(clock: FakeClock, **kw: Any) -> Breaker:
    """A breaker with a fixed 30 s open period (`reset_min = reset`)."""
    return Breaker("users", "127.0.0.2:80",
                   BreakerPolicy(failures=3, reset=30.0, reset_min=30.0), clock, **kw)


def backing_off(clock: FakeClock, rng: float = 0.0) -> Breaker:
    """A breaker with the default open periods (1 s doubling to 30 s); `rng`: the jitter's
    random draw."""
    return Breaker("users", "127.0.0.2:80", BreakerPolicy(failures=3), clock,
                   rng=_Fixed(rng))


class _Fixed:
    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value

    def randrange(self, stop: int, /) -> int:
        return 0


def trip(b: Breaker) -> None:
    for _ in range(3):
        b.record(b.admit(), False)
    assert b.status() == "open"


def open_for(b: Breaker, clock: FakeClock, limit_s: float = 60.0) -> float:
    """How long the open breaker refuses (in 0.05 s steps), then takes its probe."""
    waited = 0.0
    while b.admit() == REFUSED:
        assert waited < limit_s
        clock.advance(0.05)
        waited += 0.05
    return round(waited, 2)


def test_open_period_doubles_from_reset_min_up_to_reset() -> None:
    clock = FakeClock()
    b = backing_off(clock)
    trip(b)
    periods = []
    for _ in range(7):
        periods.append(open_for(b, clock))
        b.record(PROBE, False)  # the probe fails: open again, for longer
    assert periods == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_jitter_lengthens_a_period_by_up_to_half_never_beyond_reset() -> None:
    clock = FakeClock()
    b = backing_off(clock, rng=0.999)
    trip(b)
    periods = []
    for _ in range(6):
        periods.append(open_for(b, clock))
        b.record(PROBE, False)
    assert periods == [1.5, 3.0, 6.0, 12.0, 24.0, 30.0]


def test_backoff_starts_again_only_after_staying_closed_for_reset() -> None:
    """A flapping endpoint (fails again soon after its probe succeeded) stays out for
    longer each time; one that stayed healthy for `reset` starts from `reset_min`."""
    clock = FakeClock()
    b = backing_off(clock)
    trip(b)
    assert open_for(b, clock) == 1.0
    b.record(PROBE, True)
    assert b.status() == "closed"
    clock.advance(5)  # healthy for 5 s, then fails again: the next period is longer
    trip(b)
    assert open_for(b, clock) == 2.0
    b.record(PROBE, True)
    clock.advance(30)  # healthy for `reset`: the doubling starts again
    trip(b)
    assert open_for(b, clock) == 1.0


def test_panic_mode_probes_after_the_shortest_period_whatever_the_backoff() -> None:
    clock = FakeClock()
    b = backing_off(clock)
    trip(b)
    for _ in range(4):  # 1 + 2 + 4 + 8 s: the next period is 16 s
        open_for(b, clock)
        b.record(PROBE, False)
    assert b.admit(panic=True) == REFUSED  # between probes it still fails fast
    clock.advance(1.0)
    assert b.admit() == REFUSED
    assert b.admit(panic=True) == PROBE
    assert b.admit(panic=True) == REFUSED  # one probe at a time
    b.record(PROBE, True)
    assert b.status() == "closed" and b.admit() == NORMAL


def test_outlier_probe_is_the_breaker_probe_before_its_period_ends() -> None:
    clock = FakeClock()
    b = make(clock)
    trip(b)
    assert b.admit() == REFUSED
    assert b.admit(probe=True) == PROBE
    assert b.admit(probe=True) == REFUSED  # one probe at a time
    b.record(PROBE, True)
    assert b.status() == "closed"


def test_closed_open_half_open_closed() -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    unsubscribe = _events.subscribe(lambda kind, service, attrs: seen.append((kind, attrs)))
    try:
        clock = FakeClock()
        b = make(clock)
        for _ in range(3):
            assert b.admit() == NORMAL
            b.record(NORMAL, False)
        assert b.status() == "open"
        assert b.admit() == REFUSED and b.fast_fails == 1
        clock.advance(29.9)
        assert b.admit() == REFUSED
        clock.advance(0.2)
        assert b.status() == "half-open"
        assert b.admit() == PROBE
        assert b.admit() == REFUSED  # exactly one probe at a time
        b.record(PROBE, True)
        assert b.status() == "closed" and b.admit() == NORMAL
    finally:
        unsubscribe()
    changes = [(a["old"], a["new"]) for k, a in seen if k == _events.BREAKER_STATE]
    assert changes == [("closed", "open"), ("open", "half-open"), ("half-open", "closed")]


def test_failed_probe_reopens_for_another_period() -> None:
    clock = FakeClock()
    b = make(clock)
    for _ in range(3):
        b.record(b.admit(), False)
    clock.advance(31)
    assert b.admit() == PROBE
    b.record(PROBE, False)
    assert b.status() == "open"
    clock.advance(29)
    assert b.admit() == REFUSED
    clock.advance(2)
    assert b.admit() == PROBE


def test_success_resets_the_failure_count_and_late_results_are_ignored() -> None:
    clock = FakeClock()
    b = make(clock)
    tickets = [b.admit() for _ in range(5)]
    b.record(tickets[0], False)
    b.record(tickets[1], False)
    b.record(tickets[2], True)
    b.record(tickets[3], False)
    assert b.status() == "closed"
    b.record(b.admit(), False)
    b.record(b.admit(), False)
    assert b.status() == "open"
    b.record(tickets[4], True)  # admitted while closed, finished after it opened
    assert b.status() == "open"


def test_released_probe_lets_another_probe_in() -> None:
    clock = FakeClock()
    b = make(clock)
    for _ in range(3):
        b.record(b.admit(), False)
    clock.advance(31)
    probe = b.admit()
    b.release(probe)
    assert b.admit() == PROBE


def test_open_state_from_another_process_is_dated_by_its_wall_clock() -> None:
    storage = pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)  # stands in for Redis
    wall = [time.time()]  # pybreaker stamps opened_at with the real wall clock
    a = make(FakeClock(), storage=storage, wall=lambda: wall[0])
    for _ in range(3):
        a.record(a.admit(), False)
    wall[0] += 20  # another process looks 20 s later, on its own monotonic clock
    other_clock = FakeClock(start_ns=5)
    b = make(other_clock, storage=storage, wall=lambda: wall[0])
    assert b.status() == "open" and b.admit() == REFUSED
    other_clock.advance(9)
    assert b.admit() == REFUSED
    other_clock.advance(2)  # 31 s after it opened
    assert b.admit() == PROBE


def test_clean_fast_path_keeps_consecutive_failure_counting() -> None:
    """Own memory storage: the adapter skips pybreaker while closed with nothing counted,
    and a success after failures still resets the count (failures must be consecutive)."""
    b = make(FakeClock())
    assert b.clean
    b.record(b.admit(), False)
    b.record(b.admit(), False)
    assert not b.clean and b._storage.counter == 2
    b.record(b.admit(), True)  # resets the count: clean again
    assert b.clean and b._storage.counter == 0
    for _ in range(2):
        b.record(b.admit(), False)
    assert b.status() == "closed"  # 2 consecutive, not 4 in all
    b.record(b.admit(), False)
    assert b.status() == "open" and not b.clean and b.admit() == REFUSED


def test_shared_storage_is_always_read() -> None:
    storage = pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)  # stands in for Redis
    a, b = make(FakeClock(), storage=storage), make(FakeClock(), storage=storage)
    assert not a.clean and not b.clean
    for _ in range(3):
        a.record(a.admit(), False)
    assert b.admit() == REFUSED  # b sees a's trip at once
