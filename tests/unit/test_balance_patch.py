"""An update that hands over the previous `Endpoint` objects is a patch (`balance/_diff.py`):
the same generation as a full rebuild, on random adds, removals, replacements and weight,
zone and priority changes, and work in proportion to the change, not the fleet."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshclient.balance import LoadBalancer, _diff, _levels, balancer
from meshclient.balance._base import EndpointState
from meshclient.discovery.endpoint import Endpoint
from meshclient.policy import BalancerPolicy, OutlierPolicy
from meshclient.testing import FakeClock, SeededRng
from tests.unit.test_weighted_draw import lines_run_in


def endpoint(i: int, weight: int = 1, zone: str | None = None, priority: int = 0,
             port: int = 8000) -> Endpoint:
    return Endpoint(f"10.0.{i >> 8 & 255}.{i & 255}", port, weight, zone, priority=priority)


def balancer_of(kind: str, zone: str | None, seed: int = 3) -> LoadBalancer:
    return LoadBalancer("users", BalancerPolicy(kind=kind), OutlierPolicy(), clock=FakeClock(),
                        rng=SeededRng(seed), zone=zone)


def picker_view(picker: Any) -> tuple[Any, ...]:
    if picker is None:
        return (None,)
    table = getattr(picker, "_table", None)
    schedule = getattr(picker, "_schedule", None)
    return (type(picker).__name__, [s.key for s in picker._states],
            None if table is None else (table.uniform, table._bounds),
            list(schedule) if isinstance(schedule, tuple) else None)


def view(lb: LoadBalancer) -> dict[str, Any]:
    """Everything an update decides, by key (the two balancers have their own states)."""
    gen = lb._gen
    return {"keys": [s.key for s in gen.states],
            "endpoints": [s.endpoint for s in gen.states],
            "index": gen.index, "flags": bytes(gen.flags), "local": bytes(gen.local_flags),
            "decision": (gen.active, gen.panic, gen.use_local, gen.available),
            "levels": [(lv.priority, [s.key for s in lv.states], [s.key for s in lv.local],
                        lv.down, lv.local_down, picker_view(lv.picker),
                        picker_view(lv.local_picker)) for lv in gen.levels],
            "ejected": sorted(lb.detector._ejected)}


def step(rng: random.Random, eps: list[Endpoint], serial: list[int]) -> None:
    """One random change of `eps` in place: the endpoints it leaves are the same objects."""
    op = rng.choice(["add", "add", "remove", "remove", "replace", "weight", "zone",
                     "priority", "duplicate", "block"])
    at = rng.randrange(len(eps)) if eps else 0
    if op == "add" or not eps:
        serial[0] += 1
        eps.insert(at, endpoint(serial[0], rng.randint(1, 3), rng.choice(["a", "b", None])))
    elif op == "remove":
        del eps[at]
    elif op == "replace":
        eps[at] = replace(eps[at], port=eps[at].port + 1)
    elif op == "weight":
        eps[at] = replace(eps[at], weight=rng.randint(1, 4))
    elif op == "zone":
        eps[at] = replace(eps[at], zone=rng.choice(["a", "b", None]))
    elif op == "priority" and rng.random() < 0.2:  # then back in a few steps, mostly
        eps[at] = replace(eps[at], priority=rng.randint(0, 1))
    elif op == "priority":
        eps[:] = [e if e.priority == 0 else replace(e, priority=0) for e in eps]
    elif op == "duplicate" and rng.random() < 0.2:
        eps.insert(rng.randrange(len(eps) + 1), replace(eps[at]))
    elif op == "block":
        for i in range(at, min(at + rng.randint(1, 6), len(eps))):
            eps[i] = replace(eps[i], port=eps[i].port + 1)


@pytest.mark.parametrize("kind", ["p2c-ewma", "round-robin", "random"])
@pytest.mark.parametrize("zone", [None, "a"])
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(0, 40))
def test_a_patch_is_the_generation_a_full_rebuild_makes(kind: str, zone: str | None,
                                                        seed: int, size: int) -> None:
    rng = random.Random(seed)
    eps = [endpoint(i, rng.randint(1, 3), rng.choice(["a", "b", None])) for i in range(size)]
    serial = [size]
    patched, rebuilt = balancer_of(kind, zone), balancer_of(kind, zone)
    for _ in range(12):
        for _ in range(rng.randint(0, 3)):
            step(rng, eps, serial)
        endpoints = tuple(eps)
        before = {s.key: s for s in patched.states()}
        rebuilt._gen.endpoints = None  # no patch: the full rebuild, as the reference
        patched.update(endpoints)
        rebuilt.update(endpoints)
        assert view(patched) == view(rebuilt)
        gen = patched._gen
        if len(gen.index) == len(gen.states):  # the counts are the flags' (no duplicates)
            for lv in gen.levels:
                assert lv.down == sum(gen.flags[gen.index[s.key]] for s in lv.states)
                assert lv.local_down == sum(gen.flags[gen.index[s.key]] for s in lv.local)
        for state in patched.states():  # history is kept by key
            assert before.get(state.key, state) is state
        for lb in (patched, rebuilt):  # the same endpoints fail: the counts must follow
            for state in lb.states():
                if hash(state.key) % 5 == seed % 5:
                    state.set_health_check(False)
            lb.pick()


def test_a_bad_weight_in_a_patch_is_refused_and_nothing_changes() -> None:
    lb = balancer_of("p2c-ewma", None)
    eps = [endpoint(i) for i in range(100)]
    lb.update(tuple(eps))
    gen, state = lb._gen, lb.states()[40]
    eps[40] = replace(eps[40], weight=0)
    with pytest.raises(ValueError, match=r"weight 0 at position 40 of 100 \(10.0.0.40:8000\)"):
        lb.update(tuple(eps))
    assert lb._gen is gen and state.endpoint.weight == 1


def test_the_same_objects_again_change_nothing() -> None:
    lb = balancer_of("p2c-ewma", None)
    endpoints = tuple(endpoint(i) for i in range(50))
    lb.update(endpoints)
    gen = lb._gen
    lb.update(endpoints)
    lb.update(list(endpoints))  # type: ignore[arg-type]  # a list of the same objects too
    assert lb._gen is gen


@pytest.mark.parametrize("kind", ["p2c-ewma", "round-robin", "random"])
@pytest.mark.parametrize("zone", [None, "a"])
@pytest.mark.parametrize("change", ["replace", "add", "remove"])
def test_an_update_of_one_endpoint_runs_no_per_endpoint_python(kind: str, zone: str | None,
                                                               change: str) -> None:
    """One endpoint changed among 4,000 handed over as the same objects: the Python lines
    the update runs do not grow with the fleet (every per-endpoint step is in C)."""
    counts = []
    for n in (40, 4_000):
        lb = balancer_of(kind, zone)
        eps = [endpoint(i, 1 + i % 2, "a" if i % 3 else "b") for i in range(n)]
        lb.update(tuple(eps))
        if change == "replace":
            eps[n // 2] = replace(eps[n // 2], port=9000)
        elif change == "add":
            eps.insert(n // 2, endpoint(n + 1))
        else:
            del eps[n // 2]
        with lines_run_in(balancer) as a, lines_run_in(_diff) as b, \
                lines_run_in(_levels) as c:
            lb.update(tuple(eps))
        counts.append(sum(a.values()) + sum(b.values()) + sum(c.values()))
    assert counts[1] <= counts[0] + 5, counts


def test_a_survivor_keeps_its_state_and_takes_its_new_endpoint() -> None:
    lb = balancer_of("p2c-ewma", "a")
    eps = [endpoint(i, zone="b") for i in range(100)]
    lb.update(tuple(eps))
    state: EndpointState = lb.states()[10]
    eps[10] = replace(eps[10], weight=5, zone="a")
    lb.update(tuple(eps))
    assert lb.states()[10] is state and state.endpoint is eps[10]
    assert lb._gen.levels[0].local == (state,) and lb._gen.use_local


@pytest.mark.parametrize("patched", [True, False])
def test_round_robin_goes_on_from_where_it_was_after_an_update(patched: bool) -> None:
    lb = balancer_of("round-robin", None)
    eps = [endpoint(i) for i in range(4)]
    lb.update(tuple(eps))
    assert [lb.pick().key for _ in range(2)] == ["10.0.0.0:8000", "10.0.0.1:8000"]  # type: ignore[union-attr]
    if not patched:
        lb._gen.endpoints = None
    lb.update((*eps, endpoint(4)))
    assert [lb.pick().key for _ in range(3)] == [  # type: ignore[union-attr]
        "10.0.0.2:8000", "10.0.0.3:8000", "10.0.0.4:8000"]


@pytest.mark.parametrize("kind", ["p2c-ewma", "round-robin", "random"])
def test_the_same_weights_reuse_the_draw_and_a_changed_weight_rebuilds_it(kind: str) -> None:
    lb = balancer_of(kind, None)
    eps = [endpoint(i, 1 + i % 3) for i in range(300)]
    lb.update(tuple(eps))

    def built() -> object:
        picker: Any = lb._gen.levels[0].picker
        return picker.schedule if kind == "round-robin" else picker.draw

    first = built()
    eps[7] = replace(eps[7], port=9000)  # a new endpoint of the same weight
    lb.update(tuple(eps))
    assert built() is first
    eps[8] = replace(eps[8], weight=9)
    lb.update(tuple(eps))
    assert built() is not first
    reference = balancer_of(kind, None)
    reference.update(tuple(eps))
    assert picker_view(lb._gen.levels[0].picker) == picker_view(reference._gen.levels[0].picker)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 6), max_size=12), st.lists(st.integers(0, 6), max_size=12))
def test_the_unchanged_ends_are_the_longest_runs_of_the_same_objects(
        old_ids: list[int], new_ids: list[int]) -> None:
    pool = [endpoint(i) for i in range(7)]  # equal numbers: the very same objects
    old = tuple(pool[i] for i in old_ids)
    new = tuple(pool[i] if i % 2 else replace(pool[i]) for i in new_ids)  # evens: equal copies
    shorter = min(len(old), len(new))
    p = next((i for i in range(shorter) if new[i] is not old[i]), shorter)
    s = next((i for i in range(shorter - p) if new[-1 - i] is not old[-1 - i]), shorter - p)
    assert _diff.unchanged_ends(old, new) == (p, s)
