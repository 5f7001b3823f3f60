"""Power of two choices (Mitzenmacher, "The power of two choices in randomized load
balancing"; Finagle's `P2C`, tower's `p2c::Balance`): draw two distinct endpoints at random
(in proportion to their weights) and keep the better one — health first, then cost.

Two random choices avoid both herding (everyone picking the single least-loaded endpoint)
and the O(n) scan of a full least-loaded search, while exponentially reducing the worst
load compared with one random choice.

Costs (divided by the endpoint's weight, so a weight-3 endpoint is as attractive with
three times the load):
- `p2c-ewma`: peak-EWMA estimate * (in-flight + 1), the estimate raised to the current
  silence of a busy endpoint (`load/peak_ewma.py`, "stall bound"); the client's own
  stalls (`meshclient/_stall.py`) count neither in the samples nor in the silence.
- `p2c-least-request`: in-flight + 1 (`load/pending.py`).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence

from .._types import Rng
from ._base import EndpointState
from ._pickers import ACCEPT, MAX_EFFORT, rank, scan
from ._weights import WeightedDraw
from .load.pending import least_request_cost

Cost = Callable[[EndpointState, int], float]


def ewma_load(state: EndpointState, now_ns: int) -> float:
    """The peak-EWMA cost before the endpoint's weight (`ewma_cost` with equal weights)."""
    quiet = state.quiet_since_ns
    if state.in_flight:  # the silence of a busy endpoint, less the client's own stalls
        stalls = state.stalls
        if stalls is not None and stalls.events:
            quiet += stalls.overlap_ns(quiet, now_ns)
    return state.ewma.cost(now_ns, state.in_flight, quiet)


def ewma_cost(state: EndpointState, now_ns: int) -> float:
    return ewma_load(state, now_ns) / state.endpoint.weight


def pending_load(state: EndpointState, now_ns: int) -> float:
    return least_request_cost(state.in_flight)


def pending_cost(state: EndpointState, now_ns: int) -> float:
    return least_request_cost(state.in_flight) / state.endpoint.weight


#: With equal weights the division changes no comparison: the cost without it, which
#: does not read the endpoint (one memory access fewer per candidate in a large fleet).
_UNWEIGHTED: dict[Cost, Cost] = {ewma_cost: ewma_load, pending_cost: pending_load}


class P2C:
    """P2C over one generation of endpoints. Immutable after construction; safe to share.

    **Parameters:** `states` — the endpoints; `rng` — randomness; `cost` — `ewma_cost` or
    `pending_cost` (or any `(state, now_ns) -> float`); `weights` — the endpoints' weights,
    when the caller has them (else read from `states`).
    """

    __slots__ = ("_bounds", "_compare", "_cost", "_last", "_random", "_rng", "_states", "_table",
                 "_total", "_uniform", "_weights", "weights")

    def __init__(self, states: tuple[EndpointState, ...], rng: Rng, cost: Cost = ewma_cost,
                 *, weights: Sequence[int] | None = None,
                 draw: WeightedDraw | None = None) -> None:
        """`draw`: a draw built for the same weights (by the picker this one replaces)."""
        self._states = states
        self._rng = rng
        self._random = rng.random
        self._cost = cost
        if weights is None:
            weights = [s.endpoint.weight for s in states]
        self.weights = weights
        self._table = table = draw if draw is not None else WeightedDraw(weights)
        self._uniform = table.uniform
        # the draw's running sums, read by `pick` itself (two bisections, no calls)
        self._bounds, self._total, self._last = table.bounds
        #: Weights to compare costs by (load_a * w_b <= load_b * w_a, as load / weight
        #: would): the endpoints' own, read from a list, not from the endpoint objects
        #: (one memory access fewer per candidate in a large fleet). None: the costs are
        #: compared as they are (equal weights, or a cost of the caller's own).
        self._weights = weights if not self._uniform and cost in _UNWEIGHTED else None
        self._compare = (_UNWEIGHTED.get(cost, cost)
                         if self._uniform or self._weights is not None else cost)

    def pick(self, now_ns: int, exclude: frozenset[str], panic: bool) -> EndpointState | None:
        states = self._states
        n = len(states)
        if n < 2:
            return states[0] if states else None
        random = self._random
        if self._uniform:  # `WeightedDraw.draw_two`, inlined: the usual pick
            i = int(random() * n)
            j = int(random() * (n - 1))
            a, b = states[i], states[j + 1 if j >= i else j]
            if exclude or panic:
                ra, rb = rank(a, exclude, panic), rank(b, exclude, panic)
            else:
                ra, rb = a.rank(), b.rank()
            if ra == rb and ra <= ACCEPT:  # the usual case: compare costs alone
                compare = self._compare
                return a if compare(a, now_ns) <= compare(b, now_ns) else b
            return self._settle(now_ns, exclude, panic, a, ra, b, rb)
        # weighted: `WeightedDraw.draw_two` inlined but for a second draw that hit the
        # first, and the same steps as above with the costs compared by weight
        bounds, total, last = self._bounds, self._total, self._last
        i = bisect_right(bounds, random() * total, 0, last)
        j = bisect_right(bounds, random() * total, 0, last)
        if j == i:
            j = self._table.other(i, self._rng, 3)
        a, b = states[i], states[j]
        if exclude or panic:
            ra, rb = rank(a, exclude, panic), rank(b, exclude, panic)
        else:
            ra, rb = a.rank(), b.rank()
        if ra == rb and ra <= ACCEPT:
            compare, weights = self._compare, self._weights
            if weights is None:  # a cost of the caller's own: as it is
                return a if compare(a, now_ns) <= compare(b, now_ns) else b
            return a if compare(a, now_ns) * weights[j] <= compare(b, now_ns) * weights[i] else b
        return self._settle(now_ns, exclude, panic, a, ra, b, rb)

    @property
    def draw(self) -> WeightedDraw:
        return self._table

    def _settle(self, now_ns: int, exclude: frozenset[str], panic: bool,
                a: EndpointState, ra: int, b: EndpointState, rb: int) -> EndpointState | None:
        """The first pair differed in health or was unacceptable: health first, then cost,
        drawing again up to `MAX_EFFORT` pairs in all, then a bounded scan."""
        states, cost, rng = self._states, self._cost, self._rng
        best: EndpointState | None = None
        best_key = (0, 0.0)
        for attempt in range(MAX_EFFORT):
            if attempt:
                i, j = self._table.draw_two(rng)
                a, b = states[i], states[j]
                ra, rb = rank(a, exclude, panic), rank(b, exclude, panic)
            ka, kb = (ra, cost(a, now_ns)), (rb, cost(b, now_ns))
            cand, key = (a, ka) if ka <= kb else (b, kb)
            if key[0] <= ACCEPT:
                return cand
            if best is None or key < best_key:
                best, best_key = cand, key
        return scan(states, rng.randrange(len(states)), exclude, panic) or best

    def __repr__(self) -> str:
        return f"<P2C {self._cost.__name__} endpoints={[s.key for s in self._states]}>"
