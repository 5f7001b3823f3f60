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

from collections.abc import Callable

from .._types import Rng
from ._base import EndpointState
from ._pickers import ACCEPT, MAX_EFFORT, rank, scan
from ._weights import AliasTable
from .load.pending import least_request_cost

Cost = Callable[[EndpointState, int], float]


def ewma_cost(state: EndpointState, now_ns: int) -> float:
    quiet = state.quiet_since_ns
    if state.in_flight:  # the silence of a busy endpoint, less the client's own stalls
        stalls = state.stalls
        if stalls is not None and stalls.events:
            quiet += stalls.overlap_ns(quiet, now_ns)
    return state.ewma.cost(now_ns, state.in_flight, quiet) / state.endpoint.weight


def pending_cost(state: EndpointState, now_ns: int) -> float:
    return least_request_cost(state.in_flight) / state.endpoint.weight


class P2C:
    """P2C over one generation of endpoints. Immutable after construction; safe to share.

    **Parameters:** `states` — the endpoints; `rng` — randomness; `cost` — `ewma_cost` or
    `pending_cost` (or any `(state, now_ns) -> float`).
    """

    __slots__ = ("_cost", "_rng", "_states", "_table")

    def __init__(self, states: tuple[EndpointState, ...], rng: Rng, cost: Cost = ewma_cost) -> None:
        self._states = states
        self._rng = rng
        self._cost = cost
        self._table = AliasTable([s.endpoint.weight for s in states])

    def pick(self, now_ns: int, exclude: frozenset[str], panic: bool) -> EndpointState | None:
        states = self._states
        if len(states) < 2:
            return states[0] if states else None
        cost = self._cost
        draw_two = self._table.draw_two
        rng = self._rng
        best: EndpointState | None = None
        best_key = (0, 0.0)
        for _ in range(MAX_EFFORT):
            i, j = draw_two(rng)
            a, b = states[i], states[j]
            ra, rb = rank(a, exclude, panic), rank(b, exclude, panic)
            if ra == rb and ra <= ACCEPT:  # the usual case: compare costs alone
                return a if cost(a, now_ns) <= cost(b, now_ns) else b
            ka, kb = (ra, cost(a, now_ns)), (rb, cost(b, now_ns))
            cand, key = (a, ka) if ka <= kb else (b, kb)
            if key[0] <= ACCEPT:
                return cand
            if best is None or key < best_key:
                best, best_key = cand, key
        return scan(states, self._rng.randrange(len(states)), exclude, panic) or best

    def __repr__(self) -> str:
        return f"<P2C {self._cost.__name__} endpoints={[s.key for s in self._states]}>"
