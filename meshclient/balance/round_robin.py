"""Round robin over the current endpoint set."""

from __future__ import annotations

import itertools

from ..discovery._base import Endpoint
from ._base import EndpointState


class RoundRobin:
    """Each endpoint in turn; `exclude` skips endpoints a retry has already tried.

    The endpoint tuple is swapped whole on `update` (readers see one generation); the
    counter is an `itertools.count`, whose `next()` is atomic in CPython.
    """

    def __init__(self) -> None:
        self._states: tuple[EndpointState, ...] = ()
        self._counter = itertools.count()

    def update(self, endpoints: tuple[Endpoint, ...]) -> None:
        old = {s.endpoint.key: s for s in self._states}
        states = []
        for endpoint in endpoints:
            state = old.get(endpoint.key)
            if state is None:
                state = EndpointState(endpoint)
            else:
                state.endpoint = endpoint  # weight/zone may change; history stays
            states.append(state)
        self._states = tuple(states)

    def pick(self, exclude: frozenset[str] = frozenset()) -> EndpointState | None:
        states = self._states
        if not states:
            return None
        start = next(self._counter)
        for i in range(len(states)):
            state = states[(start + i) % len(states)]
            if state.endpoint.key not in exclude and state.health_ok:
                return state
        for i in range(len(states)):  # every healthy one tried: an unhealthy one, not none
            state = states[(start + i) % len(states)]
            if state.endpoint.key not in exclude:
                return state
        return states[start % len(states)]  # every endpoint tried: reuse rather than fail

    def states(self) -> tuple[EndpointState, ...]:
        return self._states

    def __repr__(self) -> str:
        return f"<RoundRobin endpoints={[s.endpoint.key for s in self._states]}>"
