"""Random: an endpoint drawn in proportion to its weight (`WeightedDraw`: a bisection of the
running sums, O(log n) in C; equal weights O(1)); redrawn, up to `MAX_EFFORT` times, while
the draw is unavailable or already tried."""

from __future__ import annotations

from collections.abc import Sequence

from .._types import Rng
from ._base import EndpointState
from ._pickers import ACCEPT, MAX_EFFORT, rank, scan
from ._weights import WeightedDraw


class RandomPicker:
    """Weighted random over one generation of endpoints. Immutable; safe to share."""

    __slots__ = ("_rng", "_states", "_table", "weights")

    def __init__(self, states: tuple[EndpointState, ...], rng: Rng, *,
                 weights: Sequence[int] | None = None,
                 draw: WeightedDraw | None = None) -> None:
        """`weights`: the endpoints' weights, when the caller has them; `draw`: a draw
        built for the same weights (by the picker this one replaces)."""
        self._states = states
        self._rng = rng
        self.weights = weights if weights is not None else [s.endpoint.weight for s in states]
        self._table = draw if draw is not None else WeightedDraw(self.weights)

    @property
    def draw(self) -> WeightedDraw:
        return self._table

    def pick(self, now_ns: int, exclude: frozenset[str], panic: bool) -> EndpointState | None:
        states = self._states
        if not states:
            return None
        best: EndpointState | None = None
        best_rank = 0
        for _ in range(MAX_EFFORT):
            state = states[self._table.draw(self._rng)]
            r = rank(state, exclude, panic)
            if r <= ACCEPT:
                return state
            if best is None or r < best_rank:
                best, best_rank = state, r
        return scan(states, self._rng.randrange(len(states)), exclude, panic) or best

    def __repr__(self) -> str:
        return f"<RandomPicker endpoints={[s.key for s in self._states]}>"
