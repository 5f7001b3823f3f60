"""Round robin: each endpoint in turn, weights honoured by a precomputed smooth schedule
(nginx's smooth weighted round robin, so weights 3,1 give a,a,b,a rather than a,a,a,b).

The schedule is built once per endpoint update; a pick is one atomic `next()` on an
`itertools.count` (atomic in CPython) plus an index. Unavailable and already-tried
endpoints are skipped, looking at most `MAX_SCAN` (32) positions ahead.
"""

from __future__ import annotations

import itertools

from ._base import EndpointState
from ._pickers import ACCEPT, MAX_SCAN, rank
from ._weights import smooth_schedule


class RoundRobinPicker:
    """Smooth weighted round robin over one generation of endpoints."""

    __slots__ = ("_counter", "_schedule", "_states")

    def __init__(self, states: tuple[EndpointState, ...],
                 counter: itertools.count[int] | None = None) -> None:
        self._states = states
        self._schedule = smooth_schedule([s.endpoint.weight for s in states])
        self._counter = counter if counter is not None else itertools.count()

    @property
    def counter(self) -> itertools.count[int]:
        """Carried to the next generation so an update does not restart at the first."""
        return self._counter

    def pick(self, now_ns: int, exclude: frozenset[str], panic: bool) -> EndpointState | None:
        schedule, states = self._schedule, self._states
        if not schedule:
            return None
        size = len(schedule)
        start = next(self._counter)
        best: EndpointState | None = None
        best_rank = 0
        for step in range(min(size, MAX_SCAN)):
            state = states[schedule[(start + step) % size]]
            r = rank(state, exclude, panic)
            if r <= ACCEPT:
                return state
            if best is None or r < best_rank:
                best, best_rank = state, r
        return best

    def __repr__(self) -> str:
        return f"<RoundRobinPicker endpoints={[s.key for s in self._states]}>"
