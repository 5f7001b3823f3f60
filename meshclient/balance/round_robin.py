"""Round robin: each endpoint in turn, weights honoured by a precomputed smooth schedule
(nginx's smooth weighted round robin, so weights 3,1 give a,a,b,a rather than a,a,a,b).

The schedule is built once per endpoint update; a pick is one atomic `next()` on an
`itertools.count` (atomic in CPython) plus an index.

An unavailable or already-tried endpoint is not replaced by its neighbour in the schedule
(which would hand the neighbour twice its share): the pick moves to a random position of
the schedule instead, up to `MAX_EFFORT` times, then scans from a random position at most
`MAX_SCAN` places. The skipped share is so spread over all the others in proportion to
their weights, as Envoy's round robin does by rebuilding its scheduler over the healthy
hosts.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from .._types import Rng
from ._base import EndpointState
from ._pickers import ACCEPT, MAX_EFFORT, MAX_SCAN, rank
from ._weights import smooth_schedule


class RoundRobinPicker:
    """Smooth weighted round robin over one generation of endpoints."""

    __slots__ = ("_counter", "_rng", "_schedule", "_states", "weights")

    def __init__(self, states: tuple[EndpointState, ...],
                 counter: itertools.count[int] | None = None, rng: Rng | None = None, *,
                 weights: Sequence[int] | None = None,
                 schedule: Sequence[int] | None = None) -> None:
        """`weights`: the endpoints' weights, when the caller has them; `schedule`: one
        built for the same weights (by the picker this one replaces)."""
        self._states = states
        self.weights = weights if weights is not None else [s.endpoint.weight for s in states]
        self._schedule = schedule if schedule is not None else smooth_schedule(self.weights)
        self._counter = counter if counter is not None else itertools.count()
        if rng is None:
            from .._clock import RNG
            rng = RNG
        self._rng = rng

    @property
    def schedule(self) -> Sequence[int]:
        return self._schedule

    @property
    def counter(self) -> itertools.count[int]:
        """Carried to the next generation so an update does not restart at the first."""
        return self._counter

    def pick(self, now_ns: int, exclude: frozenset[str], panic: bool) -> EndpointState | None:
        schedule, states = self._schedule, self._states
        if not schedule:
            return None
        size = len(schedule)
        state = states[schedule[next(self._counter) % size]]
        best_rank = rank(state, exclude, panic)
        if best_rank <= ACCEPT or size == 1:
            return state
        best = state
        randrange = self._rng.randrange
        for _ in range(MAX_EFFORT):  # a random other position: the share spreads evenly
            state = states[schedule[randrange(size)]]
            r = rank(state, exclude, panic)
            if r <= ACCEPT:
                return state
            if r < best_rank:
                best, best_rank = state, r
        start = randrange(size)
        for step in range(min(size, MAX_SCAN)):
            state = states[schedule[(start + step) % size]]
            r = rank(state, exclude, panic)
            if r <= ACCEPT:
                return state
            if r < best_rank:
                best, best_rank = state, r
        return best

    def __repr__(self) -> str:
        return f"<RoundRobinPicker endpoints={[s.key for s in self._states]}>"
