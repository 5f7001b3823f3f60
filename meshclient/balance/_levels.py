"""One generation of a balancer's endpoints: priority levels, their pickers, and live
counts of unavailable endpoints kept without O(n) work per request.

- **Levels.** Endpoints are grouped by `Endpoint.priority` (SRV priority, lowest first).
  Each level has its own picker (and a zone-local one), built once per update.
- **Counts.** `flags[i]` says whether endpoint `i` was last counted as unavailable; each
  level keeps the number of its unavailable endpoints (all, and in the local zone). A
  change is applied per endpoint: `touch(state)` when an ejection, return or health-check
  change names it, and a rolling `sweep` that re-reads `SWEEP_CHUNK` endpoints per call
  (it catches breaker transitions, which nobody announces). No request ever recounts the
  whole set.
- **Decisions** (`active`, `panic`, `use_local`) are derived from the counts in
  O(levels) and stored on the generation, so a pick reads three attributes.

Mutated only under the owning balancer's lock; readers read single attributes.
"""

from __future__ import annotations

from collections.abc import Callable

from ._base import UNAVAILABLE, EndpointState
from ._pickers import Picker

#: Endpoints a sweep step re-reads (breaker state) per pick that finds a sweep due.
SWEEP_CHUNK = 8

#: Up to this many endpoints `fastest_ns` is computed exactly; beyond, by the sweep.
EXACT_FASTEST = 64


class Level:
    """The endpoints of one priority, with their pickers and unavailable counts."""

    __slots__ = ("down", "local", "local_down", "local_picker", "picker", "priority",
                 "states")

    def __init__(self, priority: int, states: tuple[EndpointState, ...], picker: Picker,
                 local: tuple[EndpointState, ...], local_picker: Picker | None) -> None:
        self.priority = priority
        self.states = states
        self.picker = picker
        self.local = local
        self.local_picker = local_picker
        self.down = 0
        self.local_down = 0

    @property
    def available(self) -> int:
        return len(self.states) - self.down


class Generation:
    """Everything `update()` builds, swapped in with one assignment."""

    __slots__ = ("_fastest_s", "active", "cursor", "fastest_ns", "flags", "index", "level_of",
                 "levels", "local_flags", "panic", "states", "use_local")

    def __init__(self, levels: tuple[Level, ...], zone: str | None) -> None:
        self.levels = levels
        self.states = tuple(s for level in levels for s in level.states)
        self.index = {s.key: i for i, s in enumerate(self.states)}
        self.level_of = tuple(level for level in levels for _ in level.states)
        self.local_flags = bytes(zone is not None and s.endpoint.zone == zone
                                 for s in self.states)
        self.flags = bytearray(len(self.states))
        self.cursor = 0
        self.active = 0
        self.panic = False
        self.use_local = False
        self.fastest_ns: int | None = None  # the smallest latest estimate, per full sweep
        self._fastest_s = float("inf")
        for i, state in enumerate(self.states):  # the first count: O(n), once per update
            if state.rank() == UNAVAILABLE:
                self._set(i, True)

    def _set(self, i: int, down: bool) -> None:
        self.flags[i] = down
        step = 1 if down else -1
        level = self.level_of[i]
        level.down += step
        if self.local_flags[i]:
            level.local_down += step

    def touch(self, state: EndpointState) -> bool:
        """Re-read one endpoint's health; True when its count changed."""
        i = self.index.get(state.key)
        if i is None or self.states[i] is not state:
            return False
        down = state.rank() == UNAVAILABLE
        if bool(self.flags[i]) == down:
            return False
        self._set(i, down)
        return True

    def sweep(self, limit: int) -> tuple[bool, bool]:
        """Re-read the next `limit` endpoints: (any count changed, a full pass completed)."""
        states, n = self.states, len(self.states)
        changed = False
        start = self.cursor
        end = min(start + limit, n)
        flags = self.flags
        fastest = self._fastest_s
        for i in range(start, end):
            state = states[i]
            down = state.rank() == UNAVAILABLE
            if bool(flags[i]) != down:
                self._set(i, down)
                changed = True
            ewma = state.ewma
            if ewma.samples and ewma.latest_s < fastest:
                fastest = ewma.latest_s
        done = end >= n
        if done:
            self.fastest_ns = None if fastest == float("inf") else int(fastest * 1e9)
            fastest = float("inf")
        self._fastest_s = fastest
        self.cursor = 0 if done else end
        return changed, done

    def decide(self, threshold: float) -> None:
        """Active level (the lowest with an available endpoint, else the first), panic and
        zone preference within it."""
        levels = self.levels
        active = 0
        for i, level in enumerate(levels):
            if level.available > 0:
                active = i
                break
        if not levels:
            self.active, self.panic, self.use_local = 0, False, False
            return
        level = levels[active]
        total = len(level.states)
        local_ok = len(level.local) - level.local_down
        self.use_local = local_ok > 0 and local_ok * 100 >= threshold * len(level.local)
        self.panic = total > 0 and level.available * 100 < threshold * total
        self.active = active

    @property
    def available(self) -> int:
        return len(self.states) - sum(level.down for level in self.levels)


def build_levels(states: tuple[EndpointState, ...], zone: str | None,
                 picker: Callable[[tuple[EndpointState, ...], int, bool], Picker],
                 ) -> tuple[Level, ...]:
    """Group `states` by priority (stable within a group); `picker(states, priority,
    local)` builds each picker."""
    groups: dict[int, list[EndpointState]] = {}
    for state in states:
        groups.setdefault(state.endpoint.priority, []).append(state)
    levels = []
    for priority in sorted(groups):
        members = tuple(groups[priority])
        local = tuple(s for s in members if zone is not None and s.endpoint.zone == zone)
        levels.append(Level(priority, members, picker(members, priority, False), local,
                            picker(local, priority, True) if local else None))
    return tuple(levels)
