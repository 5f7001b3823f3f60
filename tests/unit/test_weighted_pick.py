"""A weighted P2C pick: the pair is two reference draws, its costs are compared as
load / weight, and it does so without calling into the draw or reading the endpoint
objects (the usual weighted pick in a large fleet)."""

from __future__ import annotations

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from meshclient.balance import _weights
from meshclient.balance._base import EndpointState
from meshclient.balance._weights import WeightedDraw
from meshclient.balance.load.peak_ewma import PeakEwma
from meshclient.balance.p2c import P2C, ewma_cost, ewma_load, pending_cost
from meshclient.discovery.endpoint import Endpoint
from meshclient.testing import FakeClock
from tests.unit.test_weighted_draw import Fixed, lines_run_in, reference

NOW = 10**12


class NoWeight:
    """An endpoint stand-in that has a key but fails if its weight is read."""

    key = "stand-in:1"

    @property
    def weight(self) -> int:
        raise AssertionError("the weighted pick read an endpoint's weight")


def states_of(weights: list[int], latencies: list[float]) -> tuple[EndpointState, ...]:
    clock = FakeClock()
    states = []
    for i, (weight, latency) in enumerate(zip(weights, latencies, strict=True)):
        state = EndpointState(Endpoint(f"10.0.0.{i}", 80, weight), PeakEwma(), clock)
        state.ewma.observe(latency, NOW - 10**6, True)
        states.append(state)
    return tuple(states)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5), st.floats(0.001, 2.0)), min_size=2,
                max_size=12), st.floats(0, 0.999), st.floats(0, 0.999), st.booleans())
def test_a_weighted_pick_is_the_pair_of_reference_draws_and_the_cheaper_by_weight(
        pairs: list[tuple[int, float]], r1: float, r2: float, least_request: bool) -> None:
    weights = [w for w, _ in pairs]
    assume(len(set(weights)) > 1)
    i, j = reference(weights, r1), reference(weights, r2)
    assume(i != j)
    states = states_of(weights, [latency for _, latency in pairs])
    cost = pending_cost if least_request else ewma_cost
    picker = P2C(states, Fixed(r1, r2), cost, weights=weights)  # type: ignore[arg-type]
    a, b = states[i], states[j]
    expected = a if cost(a, NOW) <= cost(b, NOW) else b
    load = ewma_load(expected, NOW) if not least_request else 1.0
    chosen = picker.pick(NOW, frozenset(), False)
    assert chosen is expected or (  # a tie within rounding of the two ways to compare
        chosen in (a, b) and abs(cost(a, NOW) - cost(b, NOW)) <= 1e-12 * max(load, 1.0))


def test_a_weighted_pick_reads_no_endpoint_and_runs_no_draw_code() -> None:
    weights = [1 + i % 3 for i in range(1_000)]
    states = states_of(weights, [0.01 + i / 10_000 for i in range(1_000)])
    picker = P2C(states, Fixed(0.1, 0.9), ewma_cost, weights=weights)  # type: ignore[arg-type]
    for state in states:
        state.endpoint = NoWeight()  # type: ignore[assignment]
    with lines_run_in(_weights) as counts:
        chosen = picker.pick(NOW, frozenset(), False)
    assert chosen in (states[reference(weights, 0.1)], states[reference(weights, 0.9)])
    assert sum(counts.values()) == 0, counts


def test_a_second_draw_that_hits_the_first_is_drawn_again() -> None:
    weights = [1, 5, 1]
    states = states_of(weights, [0.01, 0.01, 0.01])
    picker = P2C(states, Fixed(0.5, 0.5, 0.5, 0.5, 0.9), ewma_cost,  # type: ignore[arg-type]
                 weights=weights)
    assert picker.pick(NOW, frozenset(), False) in (states[1], states[2])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=33, max_size=400).flatmap(
           lambda w: st.tuples(st.just(w), st.lists(st.integers(0, len(w) - 1), max_size=3))),
       st.sampled_from([1, 1000, 2**40]),
       st.one_of(st.floats(0, 1, exclude_max=True), st.just(1 - 2**-53), st.just(0.0)))
def test_a_draw_in_a_large_set_is_the_reference_draw(
        weights_and_heavy: tuple[list[int], list[int]], heavy: int, r: float) -> None:
    """Hundreds of endpoints, a few of them very heavy: the draw and the pair P2C draws
    inline are the reference draws."""
    weights, at = weights_and_heavy
    weights = list(weights)
    for i in at:
        weights[i] = heavy
    assume(len(set(weights)) > 1)
    table = WeightedDraw(weights)
    assert table.draw(Fixed(r)) == reference(weights, r)
    states = states_of(weights, [0.01] * len(weights))
    picker = P2C(states, Fixed(r, 0.5), ewma_cost, weights=weights)  # type: ignore[arg-type]
    i, j = reference(weights, r), reference(weights, 0.5)
    if j == i:  # drawn again (0.5 each time), then the next index
        j = (i + 1) % len(weights)
    assert picker.pick(NOW, frozenset(), False) in (states[i], states[j])
