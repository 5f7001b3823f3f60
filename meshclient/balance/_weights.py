"""Weighted choice: a draw in proportion to the weights (for random and P2C: O(log n) per
draw, in C) and the smooth weighted round-robin schedule (nginx's algorithm, precomputed
once per update).

Both are built when the endpoint set changes, in C-level passes over the weights where the
work is O(n), and are immutable afterwards.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from functools import reduce
from itertools import accumulate
from math import gcd
from typing import overload

from .._types import Rng

#: Longest precomputed round-robin schedule; larger weight sums are scaled down to it.
MAX_SCHEDULE = 4096

#: Beyond this much work (schedule length x endpoints) nginx's O(n)-per-slot loop gives
#: way to `SpreadSchedule`, built in O(n).
MAX_SMOOTH_WORK = 1 << 16


def equal_weights(weights: Sequence[int], endpoints: Sequence[object] = ()) -> bool:
    """Whether all the weights are the same, told in C (`list.count`, not min and max).
    Raises `ValueError` naming the first weight below 1, its position and, when given,
    its endpoint (`endpoints[i]` has `weights[i]`)."""
    n = len(weights)
    if not n:
        return True
    first = weights[0]
    uniform = weights.count(first) == n
    if (first if uniform else min(weights)) <= 0:
        bad = next(i for i, w in enumerate(weights) if w <= 0)
        where = f" ({endpoints[bad]})" if endpoints else ""
        raise ValueError(f"weights must be positive: weight {weights[bad]!r} at position "
                         f"{bad} of {n}{where}")
    return uniform


class WeightedDraw:
    """Draw index i with probability `weights[i] / sum(weights)`: `random() * total` found
    among the running sums of the weights by bisection (`bisect_right`: the first running
    sum beyond it). Built by one `itertools.accumulate` pass (C, O(n) per update; the sums
    are floats, exact up to 2**53); a draw is one random number and an O(log n) bisection
    in C. With equal weights it is a plain `int(random() * n)` and nothing is built.

    Weights must be positive (Envoy's `load_balancing_weight` is at least 1; discovery turns
    an SRV weight of 0 into 1): a weight of 0 or less raises `ValueError` naming it
    (`equal_weights`)."""

    __slots__ = ("_bounds", "_last", "_n", "_total", "uniform")

    def __init__(self, weights: Sequence[int]) -> None:
        n = len(weights)
        self._n = n
        self._last = n - 1  # `bisect_right`'s bound: never past the last index
        self.uniform = equal_weights(weights)
        self._bounds: list[float] = []
        if not self.uniform:  # floats: a draw compares a float with them, the fast case
            self._bounds = list(accumulate(weights, initial=0.0))
            del self._bounds[0]
        self._total = self._bounds[-1] if self._bounds else n

    @property
    def bounds(self) -> tuple[list[float], float, int]:
        """The running sums, their total and the last index: what `draw` bisects (for a
        caller that draws inline)."""
        return self._bounds, self._total, self._last

    def draw(self, rng: Rng) -> int:
        if self.uniform:
            return int(rng.random() * self._n)
        return bisect_right(self._bounds, rng.random() * self._total, 0, self._last)

    def draw_two(self, rng: Rng) -> tuple[int, int]:
        """Two distinct indices (needs n >= 2). Unweighted: uniform in one step each;
        weighted: the second is redrawn (at most 4 times) until it differs.

        An index is `int(random() * n)`: one call into C where `randrange` runs several
        Python-level steps, with a bias below n / 2**53 (nothing at any fleet size)."""
        n = self._n
        if self.uniform:
            a = int(rng.random() * n)
            b = int(rng.random() * (n - 1))
            return a, b + 1 if b >= a else b
        a = self.draw(rng)
        return a, self.other(a, rng, 4)

    def other(self, a: int, rng: Rng, tries: int) -> int:
        """An index other than `a` (weighted; needs n >= 2): drawn up to `tries` times
        until it differs, then uniform among the others."""
        for _ in range(tries):
            b = self.draw(rng)
            if b != a:
                return b
        return (a + 1 + rng.randrange(self._n - 1)) % self._n


def smooth_schedule(weights: Sequence[int]) -> Sequence[int]:
    """nginx's smooth weighted round robin, unrolled: one period of the order in which the
    indices are served (weights 5,1,1 give a,a,b,a,c,a,a — spread out, not bursts).

    Weights are divided by their gcd; a sum beyond `MAX_SCHEDULE` is scaled down to it
    (each weight at least 1), which keeps shares within rounding of the configured ones.
    Equal weights give the endpoints in order (O(n)); a large weighted set is ordered by
    `SpreadSchedule` (built in O(n), not scaled down), so an update stays cheap at any
    fleet size.
    """
    if not weights:
        return ()
    first = weights[0]
    if weights.count(first) == len(weights):  # in C: an update of 10,000 stays cheap
        return tuple(range(len(weights)))
    divisor = reduce(gcd, weights)
    reduced = [w // divisor for w in weights] if divisor > 1 else list(weights)
    total = sum(reduced)
    if min(total, MAX_SCHEDULE) * len(reduced) > MAX_SMOOTH_WORK:
        return SpreadSchedule(reduced)
    if total > MAX_SCHEDULE:
        reduced = [max(1, round(w * MAX_SCHEDULE / total)) for w in reduced]
        total = sum(reduced)
    current = [0] * len(reduced)
    order = []
    for _ in range(total):
        for i, w in enumerate(reduced):
            current[i] += w
        best = max(range(len(current)), key=current.__getitem__)
        current[best] -= total
        order.append(best)
    return tuple(order)



class SpreadSchedule(Sequence[int]):
    """A weighted order for large sets, built in O(n): turn k serves the endpoint whose
    slice of the cumulative weights holds `frac(k * phi) * total` (a golden-ratio Weyl
    sequence, the most evenly spread sequence known), found by bisection. Every endpoint
    gets its weight's share, its turns spread out; a pick is O(log n)."""

    __slots__ = ("_bounds", "_total")

    _PHI = 0.6180339887498949  # 1 / golden ratio

    def __init__(self, weights: Sequence[int]) -> None:
        self._bounds = list(accumulate(weights))
        self._total = self._bounds[-1]

    def __len__(self) -> int:
        return self._total

    @overload
    def __getitem__(self, k: int) -> int: ...

    @overload
    def __getitem__(self, k: slice) -> Sequence[int]: ...

    def __getitem__(self, k: int | slice) -> int | Sequence[int]:
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(self._total))]
        point = (k * self._PHI) % 1.0 * self._total
        return bisect_right(self._bounds, point)
