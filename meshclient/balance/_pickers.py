"""The shared part of every picker: how a candidate is scored before its cost.

A candidate's rank is its health (`EndpointState.rank()`: healthy 0, degraded 1,
unavailable 2 — ignored in panic mode), plus 3 if a retry already tried it (`exclude`).
A picker returns the first candidate ranked 0 or 1 it finds within `MAX_EFFORT` tries,
or else the best it saw (Finagle's `maxEffort`), so a pick is O(1) in the endpoint count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ._base import DEGRADED, EndpointState

#: Candidates (pairs, for P2C) tried before settling for the best one seen.
MAX_EFFORT = 5

#: Added to the rank of an endpoint a retry has already tried.
EXCLUDED = 3

#: The worst acceptable rank for an immediate answer.
ACCEPT = DEGRADED


def rank(state: EndpointState, exclude: frozenset[str], panic: bool) -> int:
    r = 0 if panic else state.rank()
    if exclude and state.endpoint.key in exclude:
        r += EXCLUDED
    return r


#: Positions a fallback scan looks at when the random tries found nothing acceptable.
MAX_SCAN = 32


def scan(states: tuple[EndpointState, ...], start: int, exclude: frozenset[str],
         panic: bool) -> EndpointState | None:
    """The first acceptable endpoint from `start` on, looking at most `MAX_SCAN` places:
    the bounded fallback that makes "avoid what a retry tried" hold with few endpoints."""
    n = len(states)
    for step in range(min(n, MAX_SCAN)):
        state = states[(start + step) % n]
        if rank(state, exclude, panic) <= ACCEPT:
            return state
    return None


class Picker(Protocol):
    """Immutable selection over one generation of endpoints (round robin keeps a counter).
    `weights`: the endpoints' weights it was built with."""

    @property
    def weights(self) -> Sequence[int]: ...

    def pick(self, now_ns: int, exclude: frozenset[str], panic: bool) -> EndpointState | None:
        ...
