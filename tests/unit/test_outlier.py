"""Outlier ejection: consecutive failures, the ejected-share cap, growing ejections and the
single return probe (pure; fake clock, seeded rng)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from meshclient import _events
from meshclient.balance import EndpointState, LoadBalancer
from meshclient.balance._base import IN_SERVICE
from meshclient.policy import BalancerPolicy, OutlierPolicy
from meshclient.testing import FakeClock, SeededRng
from tests.unit.test_pickers import endpoints


@pytest.fixture
def events() -> Any:
    seen: list[tuple[str, dict[str, Any]]] = []
    unsubscribe = _events.subscribe(lambda kind, svc, attrs: seen.append((kind, attrs)))
    yield seen
    unsubscribe()


def make(n: int = 4, clock: FakeClock | None = None, kind: str = "round-robin",
         **outlier: Any) -> LoadBalancer:
    policy = OutlierPolicy(**{"ejection": "linear", "base_ejection": 10.0, "max_ejection": 35.0,
                              **outlier})
    lb = LoadBalancer("users", BalancerPolicy(kind=kind), policy, clock=clock or FakeClock(),
                      rng=SeededRng(7))
    lb.update(endpoints(n))
    return lb


def attempt(state: EndpointState, clock: FakeClock, ok: bool) -> None:
    start = state.begin(clock.now_ns())
    clock.advance(0.001)
    state.end(start, clock.now_ns(), ok)


def fail(state: EndpointState, clock: FakeClock, times: int) -> None:
    for _ in range(times):
        attempt(state, clock, ok=False)


def test_ejected_after_consecutive_failures(events: list[Any],
                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "meshclient")
    clock = FakeClock()
    lb = make(clock=clock)
    bad = lb.states()[0]
    fail(bad, clock, 4)
    attempt(bad, clock, ok=True)  # a success breaks the streak
    fail(bad, clock, 4)
    assert bad.health() == "healthy"
    fail(bad, clock, 1)
    assert bad.health() == "ejected" and bad.times_ejected == 1
    assert all(lb.pick() is not bad for _ in range(50))
    snap = bad.snapshot(clock.now_ns())
    assert snap["ejected"] is True and snap["ejected_until_s"] == pytest.approx(10.0, abs=0.01)
    assert events == [(_events.EJECTED, {"endpoint": bad.key, "until_s": 10.0})]
    assert len([r for r in caplog.records if "ejected" in r.getMessage()]) == 1


def test_never_more_than_max_ejected_percent() -> None:
    clock = FakeClock()
    lb = make(6, clock=clock, max_ejected_percent=50)
    for state in lb.states():
        fail(state, clock, 5)
    assert sum(s.phase != 0 for s in lb.states()) == 3
    single = make(1, clock=clock)
    fail(single.states()[0], clock, 20)
    assert single.states()[0].health() == "healthy"  # nowhere else to go


def test_zero_disables_ejection() -> None:
    clock = FakeClock()
    lb = make(clock=clock, consecutive_failures=0)
    fail(lb.states()[0], clock, 50)
    assert lb.states()[0].health() == "healthy"


def test_exactly_one_probe_decides_the_return(events: list[Any]) -> None:
    clock = FakeClock()
    lb = make(clock=clock)
    bad = lb.states()[0]
    fail(bad, clock, 5)
    clock.advance(9.9)
    assert all(lb.pick() is not bad for _ in range(20))
    clock.advance(0.2)
    probe = lb.pick()
    assert probe is bad and bad.health() == "probing"
    assert all(lb.pick() is not bad for _ in range(20))  # one probe at a time
    start = bad.begin(clock.now_ns())
    clock.advance(0.005)
    bad.end(start, clock.now_ns(), ok=True)
    assert bad.health() == "healthy"
    assert (_events.RETURNED, {"endpoint": bad.key}) in events
    assert any(lb.pick() is bad for _ in range(20))


def test_failed_probe_ejects_for_longer_up_to_the_cap() -> None:
    clock = FakeClock()
    lb = make(clock=clock)
    bad = lb.states()[0]
    fail(bad, clock, 5)
    expected = [20.0, 30.0, 35.0, 35.0]
    for until in expected:
        clock.advance(until)  # past the current ejection
        assert lb.pick() is bad
        attempt(bad, clock, ok=False)
        assert bad.health() == "ejected"
        assert bad.snapshot(clock.now_ns())["ejected_until_s"] == pytest.approx(until)
    assert bad.times_ejected == 5


def test_multiplier_restarts_after_a_long_healthy_stretch() -> None:
    clock = FakeClock()
    lb = make(clock=clock)
    bad = lb.states()[0]
    fail(bad, clock, 5)
    clock.advance(10.1)
    assert lb.pick() is bad
    attempt(bad, clock, ok=True)
    clock.advance(40)  # longer than max_ejection in service
    fail(bad, clock, 5)
    assert bad.snapshot(clock.now_ns())["ejected_until_s"] == pytest.approx(10.0)


def test_an_unstarted_probe_is_reclaimed_after_base_ejection() -> None:
    clock = FakeClock()
    lb = make(clock=clock)
    bad = lb.states()[0]
    fail(bad, clock, 5)
    clock.advance(10.1)
    assert lb.pick() is bad  # claimed, but the caller never sends it
    clock.advance(5)
    assert all(lb.pick() is not bad for _ in range(10))
    clock.advance(5.1)
    assert lb.pick() is bad


def test_probe_skips_endpoints_a_retry_already_tried() -> None:
    clock = FakeClock()
    lb = make(clock=clock)
    bad = lb.states()[0]
    fail(bad, clock, 5)
    clock.advance(10.1)
    assert lb.pick(frozenset({bad.key})) is not bad
    assert lb.pick() is bad


def test_requests_begun_before_ejection_do_not_decide() -> None:
    clock = FakeClock()
    lb = make(clock=clock)
    bad = lb.states()[0]
    early = bad.begin(clock.now_ns())
    fail(bad, clock, 5)
    clock.advance(10.1)
    assert lb.pick() is bad
    bad.end(early, clock.now_ns(), ok=True)  # not the probe
    assert bad.health() == "probing"


def test_update_keeps_ejection_state_and_drops_removed() -> None:
    clock = FakeClock()
    lb = make(clock=clock)
    bad = lb.states()[0]
    fail(bad, clock, 5)
    lb.update(endpoints(4))
    assert lb.states()[0] is bad and bad.health() == "ejected"
    assert lb.detector.ejected_count == 1
    lb.update(endpoints(4)[1:])
    assert lb.detector.ejected_count == 0
    assert "ejected=[]" in repr(lb.detector)


def test_ejection_can_tip_into_panic() -> None:
    clock = FakeClock()
    lb = make(4, clock=clock, kind="round-robin", max_ejected_percent=100)
    for state in lb.states()[:3]:
        fail(state, clock, 5)
    lb.pick()
    assert lb.panic
    assert {s.key for s in (lb.pick() for _ in range(200)) if s} == {
        s.key for s in lb.states()}


def test_runtime_policy_swap_keeps_ejection_and_history() -> None:
    from meshclient._runtime import Registry
    from meshclient.policy import Policy

    clock = FakeClock()
    registry = Registry(clock=clock, rng=SeededRng(1), zone="a")

    def service(kind: str, failures: int) -> Any:
        return Policy.from_dict({"services": {"users": {
            "endpoints": ["127.0.0.2:80", "127.0.0.3:80", "127.0.0.4:80"],
            "balancer": {"kind": kind}, "outlier": {"consecutive_failures": failures}}}}
        ).resolved["users"]

    rt = registry.runtime(service("p2c-ewma", 2))
    bad = rt.balancer.states()[0]
    fail(bad, clock, 2)
    assert bad.health() == "ejected"
    rt = registry.runtime(service("round-robin", 3))
    assert rt.balancer.kind == "round-robin" and rt.balancer.states()[0] is bad
    assert bad.health() == "ejected" and rt.balancer.detector.ejected_count == 1
    assert rt.balancer.zone == "a"
    snap = registry.snapshot()["users"]
    assert snap["kind"] == "round-robin" and snap["endpoints"][0]["ejected"] is True


def test_a_closing_body_ends_the_attempt_by_the_balancers_clock() -> None:
    """`end(start, None, ok, error)` is a response's `on_close`: now is the balancer's
    clock, and an error reading the body makes the attempt a failure."""
    clock = FakeClock()
    lb = make(2, clock, consecutive_failures=2)
    good, bad = lb.states()
    start = good.begin(clock.now_ns())
    clock.advance(0.25)
    good.end(start, None, True)  # closed after a full read
    assert good.in_flight == 0 and good.failures == 0
    assert good.ewma.latest_s == pytest.approx(0.25)
    for _ in range(2):
        start = bad.begin(clock.now_ns())
        bad.end(start, None, True, ConnectionResetError("body cut off"))
    assert bad.failures == 2 and bad.phase != IN_SERVICE  # the streak ejected it


def test_claiming_a_probe_reads_few_of_many_ejected_endpoints() -> None:
    """500 ejected endpoints coming due one after another: each claim takes the earliest due
    (a heap), reading a handful of endpoints, not every ejected one per claim."""
    reads = 0

    class Counted(EndpointState):
        @property
        def key(self) -> str:
            nonlocal reads
            reads += 1
            return self.endpoint.key

    clock = FakeClock()
    fleet = endpoints(1000)
    states = [Counted(e, None, clock) for e in fleet]
    lb = LoadBalancer("users", BalancerPolicy(), OutlierPolicy(
        ejection="linear", base_ejection=10.0, max_ejected_percent=60.0),
        clock=clock, rng=SeededRng(7), carry=states)
    lb.update(fleet)
    assert lb.states()[0] is states[0]
    for state in states[:500]:
        fail(state, clock, 5)
        assert state.phase != IN_SERVICE
    clock.advance(10.0)
    reads = 0
    claimed = []
    for _ in range(500):
        clock.advance(0.001)
        probe = lb.detector.claim_probe(clock.now_ns(), frozenset())
        assert probe is not None
        claimed.append(probe)
    assert claimed == states[:500]  # in order of their ejection's end
    assert reads <= 500 * 4
