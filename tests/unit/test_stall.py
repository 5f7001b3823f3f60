"""Client stalls are not charged to endpoints (pure; fake clock): the stall record's
arithmetic, and a peak-EWMA balancer fed through it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from meshclient._stall import PROCESS, SLACK_S, THRESHOLD_S, StallRecord
from meshclient.balance import LoadBalancer
from meshclient.balance.p2c import ewma_cost
from meshclient.policy import BalancerPolicy, OutlierPolicy
from meshclient.testing import FakeClock, SeededRng
from tests.unit.test_pickers import endpoints

MS = 1_000_000


def test_a_stall_inside_an_attempt_is_not_part_of_its_latency() -> None:
    clock = FakeClock()
    lb = LoadBalancer("users", BalancerPolicy(), OutlierPolicy(), clock=clock, rng=SeededRng(1))
    lb.update(endpoints(2))
    hit, other = lb.states()
    start = hit.begin(clock.now_ns())
    clock.advance(0.001)
    clock.stall(0.2)  # the event loop was busy: the answer waited 200 ms to be read
    hit.end(start, clock.now_ns(), ok=True)
    assert hit.ewma.latest_s < 0.002
    start = other.begin(clock.now_ns())
    clock.advance(0.001)
    other.end(start, clock.now_ns(), ok=True)
    # neither endpoint is charged: they cost the same
    assert abs(hit.ewma.latest_s - other.ewma.latest_s) < 1e-6


def test_the_stall_bound_of_a_busy_endpoint_leaves_out_client_stalls() -> None:
    clock = FakeClock()
    lb = LoadBalancer("users", BalancerPolicy(), OutlierPolicy(), clock=clock, rng=SeededRng(1))
    lb.update(endpoints(1))
    (state,) = lb.states()
    for _ in range(3):
        start = state.begin(clock.now_ns())
        clock.advance(0.001)
        state.end(start, clock.now_ns(), ok=True)
    state.begin(clock.now_ns())
    clock.stall(0.3)
    assert ewma_cost(state, clock.now_ns()) < 0.01  # not 0.3 s of "silence"
    clock.advance(0.3)  # real silence still counts
    assert ewma_cost(state, clock.now_ns()) >= 0.3


def test_a_stall_in_progress_counts_for_the_overdue_monitor() -> None:
    record = StallRecord()
    record.due[PROCESS] = 100 * MS
    assert record.overlap_ns(90 * MS, 101 * MS, thread=7) == 0  # within the jitter
    assert record.overlap_ns(90 * MS, 150 * MS, thread=7) == 50 * MS
    assert record.overlap_ns(90 * MS, 150 * MS) == 0  # without a thread: recorded only
    record.add(100 * MS, 150 * MS)  # the monitor fired late: recorded
    record.due[PROCESS] = 155 * MS
    assert record.overlap_ns(90 * MS, 152 * MS, thread=7) == 50 * MS


intervals = st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 500)), max_size=80)


@given(intervals, st.integers(0, 12_000), st.integers(0, 2_000),
       st.one_of(st.none(), st.integers(0, 12_000)))
def test_overlap_is_within_the_attempt_and_grows_with_it(
        stalls: list[tuple[int, int]], start: int, length: int, due: int | None) -> None:
    record = StallRecord()
    for at, size in sorted(stalls):
        record.add(at, at + size)
    if due is not None:
        record.due[PROCESS] = due
    events = record.events
    assert all(a < b for a, b in events)
    assert all(events[i][1] < events[i + 1][0] for i in range(len(events) - 1))
    end = start + length
    got = record.overlap_ns(start, end, thread=1)
    assert 0 <= got <= length
    # never more than the stalls inside the attempt
    inside = sum(max(0, min(b, end) - max(a, start)) for a, b in events)
    pending = max(0, end - max(due, start)) if due is not None and end - due > 2 else 0
    assert got <= inside + pending
    slack = SLACK_S * 1e9
    if due is None and not any(a - start <= slack and b > start for a, b in events) and (
            not events or end - events[-1][1] > slack):
        assert got == 0  # the client ran just after the start and before the end


def _reference_overlap(events: tuple[tuple[int, int], ...], start: int, end: int) -> int:
    """The recorded stalls' share of `[start, end)` at its two ends, by a full scan."""
    inside = [(max(s, start), min(e, end)) for s, e in events if e > start and s < end]
    slack = int(SLACK_S * 1e9)
    k, edge = len(inside), end
    while k and edge - inside[k - 1][1] <= slack:
        k -= 1
        edge = inside[k][0]
    i, edge = 0, start
    while i < k and inside[i][0] - edge <= slack:
        edge = inside[i][1]
        i += 1
    return sum(e - s for s, e in inside[:i]) + sum(e - s for s, e in inside[k:])


@given(st.lists(st.tuples(st.integers(0, 400 * MS), st.integers(1, 60 * MS)), max_size=80),
       st.integers(0, 450 * MS), st.integers(0, 200 * MS))
def test_overlap_matches_a_full_scan(stalls: list[tuple[int, int]], start: int,
                                     length: int) -> None:
    """The record is searched from its newest event back; a full scan agrees."""
    record = StallRecord()
    for at, size in sorted(stalls):
        record.add(at, at + size)
    end = start + length
    expected = min(_reference_overlap(record.events, start, end), length)
    assert record.overlap_ns(start, end) == expected


def test_a_stall_in_the_middle_of_a_long_wait_stays_the_endpoints() -> None:
    """On a busy client a slow endpoint must not look fast: only stalls at the end of an
    attempt (when its answer may have waited to be read) are discounted."""
    record = StallRecord()
    record.add(100 * MS, 250 * MS)  # the GIL was held mid-way through a 300 ms wait
    assert record.overlap_ns(0, 300 * MS) == 0
    record.add(295 * MS, 300 * MS)  # ... and again when the answer came
    assert record.overlap_ns(0, 300 * MS) == 5 * MS
    record.add(302 * MS, 320 * MS)  # stalls chained up to the end all count
    assert record.overlap_ns(0, 321 * MS) == 5 * MS + 18 * MS
    # a stall right after the start: the request waited unsent
    assert record.overlap_ns(95 * MS, 400 * MS) == 150 * MS


def test_threshold_is_small() -> None:
    assert THRESHOLD_S <= 0.005


def test_a_closed_event_loops_monitor_does_not_discount_a_blocking_call() -> None:
    """An event loop's monitor leaves its `due` behind when the loop closes between ticks;
    a later blocking call on the same thread (no loop running) must not read it as a stall
    in progress, which would discount its whole latency."""
    from threading import get_ident

    clock = FakeClock()
    lb = LoadBalancer("users", BalancerPolicy(), OutlierPolicy(), clock=clock, rng=SeededRng(1))
    lb.update(endpoints(1))
    (state,) = lb.states()
    clock.stalls.due[get_ident()] = clock.now_ns()  # a loop that ran here once
    clock.advance(5.0)
    start = state.begin(clock.now_ns())
    clock.advance(0.3)
    state.end(start, clock.now_ns(), ok=True)
    assert state.ewma.latest_s > 0.29
