"""The demo's pure parts: the view of a snapshot (today's keys and the full contract),
narration of mesh events, statistics, the scenario's policy documents and timeline."""

from __future__ import annotations

import math
from typing import Any

import pytest

from meshclient import Policy, PolicyError, _events
from meshclient.demo.driver import Sample
from meshclient.demo.narrate import Narrator
from meshclient.demo.scenario import PHASES, Mesh, policy_doc, timeline
from meshclient.demo.stats import Stat, percentile, plain_table, summarize, table
from meshclient.demo.view import Monitor, budget_label, latency_label, state_label

NAMES = {"127.0.0.2:1": "users-0", "127.0.0.3:1": "users-1"}


def _ep(address: str, requests: int, **extra: Any) -> dict[str, Any]:
    return {"endpoint": address, "zone": None, "weight": 1, "in_flight": 0,
            "requests": requests, "failures": 0, **extra}


def _snapshot(req_a: int, req_b: int, extra_a: dict[str, Any] | None = None,
              extra_b: dict[str, Any] | None = None, **service: Any) -> dict[str, Any]:
    return {"policy": "v1", "services": {"users": {
        "service": "users", **service,
        "endpoints": [_ep("127.0.0.2:1", req_a, **(extra_a or {})),
                      _ep("127.0.0.3:1", req_b, **(extra_b or {}))]}}}


def test_view_of_todays_snapshot_shows_shares_and_dashes() -> None:
    monitor = Monitor(NAMES)
    monitor.view(0.0, _snapshot(0, 0), [], "meshclient")
    samples = [Sample(0.9, "meshclient", "users", True, 20.0, "users-0", None),
               Sample(0.9, "round-robin", "users", True, 99.0, "users-0", None)]
    view = monitor.view(1.0, _snapshot(30, 10), samples, "meshclient")
    a, b = view.services[0].endpoints
    assert (a.name, a.share, b.share) == ("users-0", 0.75, 0.25)
    assert latency_label(a) == "20 ms obs" and latency_label(b) == "-"
    assert state_label(a) == "-"
    assert budget_label(view.services[0]) == "retries: not in this build"
    assert view.canary_share is None


def test_view_of_the_full_contract_snapshot() -> None:
    monitor = Monitor(NAMES)
    snap = _snapshot(5, 5, kind="p2c-ewma", panic=True, budget_balance=3, retries=12,
                     budget_exhausted=4,
                     extra_a={"estimate_ms": 412.3, "ejected": False, "breaker": "half-open"},
                     extra_b={"estimate_ms": 9.0, "ejected": True, "ejected_until_s": 3.0,
                        "breaker": "open"})
    view = monitor.view(1.0, snap, [], "meshclient")
    service = view.services[0]
    a, b = service.endpoints
    assert service.kind == "p2c-ewma"
    assert latency_label(a) == "412 ms" and state_label(a) == "half-open"
    assert state_label(b) == "ejected"
    assert budget_label(service) == "retries 12, budget 3, refused 4, PANIC"


def test_canary_share_counts_answers_from_users_v2_once_tracked() -> None:
    monitor = Monitor(NAMES)
    monitor.track_canary = True
    samples = [Sample(1.0, "meshclient", "users", True, 5, name, None)
               for name in ("users-v2-0", "users-0", "users-1", "users-v2-1")]
    assert monitor.view(1.5, _snapshot(0, 0), samples, "meshclient").canary_share == 0.5


def test_narrator_turns_events_into_lines_and_counts() -> None:
    clock = [0.0]
    narrator = Narrator(NAMES, clock=lambda: clock[0])
    emit = _events.emit
    narrator.start()
    try:
        emit(_events.RETRY, "users", endpoint="127.0.0.2:1")
        emit(_events.RETRY, "users", endpoint="127.0.0.3:1")
        emit(_events.BUDGET_EXHAUSTED, "orders", reason="budget", attempts=1)
        emit(_events.BUDGET_EXHAUSTED, "orders", reason="budget", attempts=1)
        emit(_events.BUDGET_EXHAUSTED, "orders", reason="attempts", attempts=3)
        emit(_events.EJECTED, "users", endpoint="127.0.0.2:1", until_s=3.0)
        emit(_events.RETURNED, "users", endpoint="127.0.0.2:1")
        emit(_events.POLICY_APPLIED, "", version="v2", summary="")
        emit(_events.POLICY_APPLIED, "", version="v2", summary="")
        emit(_events.DISCOVERY_REFRESH, "users", endpoints=2, source="dns")
    finally:
        narrator.stop()
    emit(_events.RETRY, "users")  # after stop: not counted
    assert narrator.counts() == (2, 2) and narrator.gave_up == 1
    assert narrator.drain() == [
        "orders: retry budget exhausted - further retries refused (no retry storm)",
        "users: users-0 ejected (outlier)",
        "users: users-0 returned to the pool",
        "policy 'v2' applied",
    ]
    assert narrator.drain() == []
    assert not narrator.claim_policy("v2") and narrator.claim_policy("v3")


def _breaker(old: str, new: str, endpoint: str = "127.0.0.3:1") -> None:
    _events.emit(_events.BREAKER_STATE, "users", endpoint=endpoint, old=old, new=new)


def test_narrator_folds_breaker_probes() -> None:
    narrator = Narrator(NAMES)
    narrator.start()
    try:
        _breaker("closed", "open")
        for _ in range(3):
            _breaker("open", "half-open")
            _breaker("half-open", "open")
        _breaker("open", "half-open")
        _breaker("half-open", "closed")
        _breaker("open", "half-open", endpoint="127.0.0.2:1")
    finally:
        narrator.stop()
    assert narrator.drain() == [
        "users: breaker of users-1 closed -> open",
        "users: breaker of users-1 probe failed, open (further failed probes counted)",
        "users: breaker of users-1 probe succeeded after 3 failed probes, closed",
    ]
    assert narrator.drain(flush=True) == ["users: breaker of users-0 open -> half-open"]


def test_narrator_shows_flapping_panic_as_one_stretch() -> None:
    clock = [0.0]
    narrator = Narrator(NAMES, clock=lambda: clock[0])
    narrator.start()
    try:
        for _ in range(3):
            _events.emit(_events.PANIC, "orders", active=True, healthy=0, total=3)
            clock[0] += 0.5
            _events.emit(_events.PANIC, "orders", active=False, healthy=2, total=3)
            clock[0] += 0.5
        assert narrator.drain() == ["orders: panic mode - only 0/3 healthy, balancing over all"]
        clock[0] += 0.6
        assert narrator.drain() == ["orders: panic mode over"]
    finally:
        narrator.stop()


def test_percentile_and_stats() -> None:
    assert percentile([], 50) != percentile([], 50)  # NaN
    assert percentile([3, 1, 2, 4], 50) == 2
    assert percentile(list(range(1, 101)), 99) == 99
    assert percentile([7], 99) == 7
    stat = Stat.of([Sample(0, "c", "s", ok, ms, None, None)
                    for ok, ms in ((True, 10), (False, 30), (True, 20), (True, 40))])
    assert (stat.count, stat.success, stat.p50_ms, stat.p99_ms) == (4, 0.75, 20, 40)
    assert math.isnan(Stat.of([]).success)


def test_summary_rows_by_phase_and_overall() -> None:
    samples = [Sample(t, c, "users", t < 5, 10.0 * (1 + t), None, None)
               for t in (1, 6) for c in ("meshclient", "round-robin")]
    rows = summarize(samples, [("a", 0, 5), ("b", 5, 10)], ["meshclient", "round-robin"])
    assert [r.label for r in rows] == ["a", "b", "overall"]
    assert rows[0].stats["meshclient"].success == 1.0
    assert rows[2].stats["round-robin"].count == 2
    header, cells = table(rows, ["meshclient", "round-robin"])
    assert header[1:4] == ["meshclient ok", "meshclient p50", "meshclient p99"]
    assert cells[0][1:4] == ["100.0%", "20 ms", "20 ms"]
    lines = plain_table(header, cells)
    assert len({len(line) for line in lines}) == 1  # aligned


def test_timeline_scales_and_covers_the_run() -> None:
    steps = timeline(30)
    assert [p.key for p, _, _ in steps] == [p.key for p in PHASES]
    assert steps[0][1] == 0 and steps[-1][2] == pytest.approx(30)
    assert all(a < b for _, a, b in steps)


def _mesh() -> Mesh:
    """A mesh whose backends have ports but are not started (policy documents only)."""
    mesh = Mesh()
    for cluster in mesh.clusters.values():
        for i, backend in enumerate(cluster.backends):
            backend.port = 8001 + i
    return mesh


def test_the_demo_policy_parses() -> None:
    policy = Policy.from_dict(policy_doc(_mesh(), scale=8 / 60))
    assert set(policy.services) == {"users", "users-v2", "orders"}
    assert policy.resolved["orders"].breaker.reset == pytest.approx(0.3)


@pytest.mark.parametrize("weight", [20, 100])
def test_the_canary_policy_parses_once_routing_exists(weight: int) -> None:
    """Contract check for the routing branch: the demo's canary document must parse."""
    doc = policy_doc(_mesh(), scale=1.0, canary=weight)
    assert doc["services"]["users"]["routes"][0]["to"][-1] == {"service": "users-v2",
                                                               "weight": weight}
    try:
        Policy.from_dict(doc)
    except PolicyError as exc:
        if any("routes is not a known field" in e for e in exc.errors):
            pytest.skip("routing is not in this build")
        raise
