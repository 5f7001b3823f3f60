"""`WeightedDraw`, the weighted choice of the random and P2C pickers (pure; seeded rng):
each draw is the reference draw (the first running sum of the weights beyond
`random() * total`), shares follow the weights at any fleet size, bad weights are refused
by name, and building one for a large fleet runs no per-endpoint Python code."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from meshclient.balance import LoadBalancer, _weights
from meshclient.balance._weights import WeightedDraw, smooth_schedule
from meshclient.discovery.endpoint import Endpoint
from meshclient.policy import BalancerPolicy, OutlierPolicy
from meshclient.testing import FakeClock, SeededRng
from tests.unit.test_pickers import KINDS


class Fixed:
    """An `Rng` whose `random()` returns the given values in turn (then the last again)."""

    def __init__(self, *values: float) -> None:
        self.values = list(values)

    def random(self) -> float:
        return self.values.pop(0) if len(self.values) > 1 else self.values[0]

    def randrange(self, stop: int, /) -> int:
        return 0


def reference(weights: list[int], r: float) -> int:
    """The index whose slice of [0, total) holds r * total, by a plain scan."""
    point, running = r * sum(weights), 0
    for i, weight in enumerate(weights):
        running += weight
        if point < running:
            return i
    return len(weights) - 1


weight_lists = st.lists(st.integers(min_value=1, max_value=1_000), min_size=1, max_size=60)
unit = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)


@settings(max_examples=300, deadline=None)
@given(weight_lists, unit)
def test_a_draw_is_the_reference_draw(weights: list[int], r: float) -> None:
    assert WeightedDraw(weights).draw(Fixed(r)) == reference(weights, r)


@settings(max_examples=300, deadline=None)
@given(weight_lists.filter(lambda w: len(set(w)) > 1), unit, unit)
def test_a_weighted_pair_is_two_reference_draws(weights: list[int], r1: float,
                                                r2: float) -> None:
    a, b = reference(weights, r1), reference(weights, r2)
    assume(a != b)
    assert WeightedDraw(weights).draw_two(Fixed(r1, r2)) == (a, b)


@settings(max_examples=200, deadline=None)
@given(weight_lists.filter(lambda w: len(w) >= 2), st.integers(0, 2**32))
def test_two_draws_are_distinct_indices_in_range(weights: list[int], seed: int) -> None:
    table, rng = WeightedDraw(weights), SeededRng(seed)
    for _ in range(20):
        a, b = table.draw_two(rng)
        assert 0 <= a < len(weights) and 0 <= b < len(weights) and a != b


def test_the_highest_random_number_draws_the_last_index() -> None:
    top = 1.0 - 2.0**-53  # the largest `random()` can return
    assert WeightedDraw([1, 2, 7]).draw(Fixed(top)) == 2
    assert WeightedDraw([1, 1, 1]).draw(Fixed(top)) == 2
    assert WeightedDraw([2**62, 2**62 + 1]).draw(Fixed(top)) == 1  # rounding: still in range
    assert WeightedDraw([3, 1]).draw(Fixed(0.75)) == 1  # a slice includes its start
    assert WeightedDraw([3, 1]).draw(Fixed(0.7499)) == 0


def test_shares_follow_the_weights_in_a_large_fleet() -> None:
    """10,000 endpoints weighted 1, 2, 3 in turn: each weight class gets its share."""
    weights = [1 + i % 3 for i in range(10_000)]
    table, rng = WeightedDraw(weights), SeededRng(11)
    draws = 60_000
    by_weight = Counter(weights[table.draw(rng)] for _ in range(draws))
    for weight in (1, 2, 3):
        assert by_weight[weight] / draws == pytest.approx(weight / 6, abs=0.01)


def test_equal_weights_are_a_plain_uniform_draw() -> None:
    table = WeightedDraw([5] * 4)
    assert table.uniform
    assert [table.draw(Fixed(r)) for r in (0.0, 0.26, 0.5, 0.99)] == [0, 1, 2, 3]


@pytest.mark.parametrize(("weights", "message"), [
    ([1, 0], "weight 0 at position 1 of 2"),
    ([0, 0, 0], "weight 0 at position 0 of 3"),
    ([4, 2, -3, 1], "weight -3 at position 2 of 4"),
])
def test_a_weight_below_one_is_refused_by_value_and_position(weights: list[int],
                                                               message: str) -> None:
    with pytest.raises(ValueError, match="weights must be positive") as caught:
        WeightedDraw(weights)
    assert message in str(caught.value)


def test_the_error_for_a_large_fleet_names_the_weight_not_the_list() -> None:
    weights = [1] * 10_000
    weights[9_999] = 0
    with pytest.raises(ValueError) as caught:
        WeightedDraw(weights)
    assert "weight 0 at position 9999 of 10000" in str(caught.value)
    assert len(str(caught.value)) < 200


@pytest.mark.parametrize("kind", KINDS)
def test_an_update_with_a_weight_below_one_changes_nothing(kind: str) -> None:
    """Refused with the endpoint named; the balancer keeps its endpoints, their weights
    and its picks (a weight of 0 on a kept state would divide a cost by zero)."""
    lb = LoadBalancer("users", BalancerPolicy(kind=kind), OutlierPolicy(), clock=FakeClock(),
                      rng=SeededRng(5))
    good = tuple(Endpoint(f"127.0.0.{i + 2}", 8000, 1 + i) for i in range(3))
    lb.update(good)
    before = lb.states()
    bad = (Endpoint("127.0.0.2", 8000, 4), Endpoint("127.0.0.3", 8000, 0),
           Endpoint("127.0.0.9", 8000, 1))
    with pytest.raises(ValueError, match=r"weight 0 at position 1 of 3 \(127.0.0.3:8000\)"):
        lb.update(bad)
    assert lb.states() == before
    assert [s.endpoint for s in lb.states()] == list(good)
    assert [e["weight"] for e in lb.snapshot()["endpoints"]] == [1, 2, 3]
    for _ in range(50):
        assert lb.pick() in before


@contextmanager
def lines_run_in(module: Any) -> Iterator[Counter[str]]:
    """Counts the Python lines executed in `module`'s file (by function) while inside."""
    counts: Counter[str] = Counter()
    filename = module.__file__

    def trace(frame: FrameType, event: str, arg: object) -> Any:
        if frame.f_code.co_filename != filename:
            return None
        if event == "line":
            counts[frame.f_code.co_name] += 1
        return trace

    old = sys.gettrace()
    sys.settrace(trace)
    try:
        yield counts
    finally:
        sys.settrace(old)


@pytest.mark.parametrize("weights", [[1 + i % 3 for i in range(10_000)],
                                     [7] * 10_000])
def test_building_for_ten_thousand_endpoints_runs_no_per_endpoint_python(
        weights: list[int]) -> None:
    """The running sums, the check for positive weights and the check for equal weights
    are C-level passes: a few dozen lines of Python at any fleet size (not a loop over
    the endpoints, which an update of 10,000 endpoints cannot afford)."""
    with lines_run_in(_weights) as counts:
        WeightedDraw(weights)
        smooth_schedule(weights)
    assert sum(counts.values()) < 60, counts
