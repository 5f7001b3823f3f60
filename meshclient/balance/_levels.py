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

from collections import deque
from collections.abc import Callable, Sequence
from itertools import chain, compress, repeat
from operator import itemgetter

from ..discovery.endpoint import Endpoint
from ._base import UNAVAILABLE, EndpointState
from ._pickers import Picker

#: Endpoints a sweep step re-reads (breaker state), one step every `SWEEP_EVERY` picks
#: while a pass is due. A pass over n endpoints takes n * SWEEP_EVERY / SWEEP_CHUNK picks
#: (10,000 at 10,000 endpoints); it starts again at most every `RECOUNT_S`. A step's fixed
#: cost (the lock, the calls) is paid once per `SWEEP_EVERY` picks, and the usual pick
#: does no sweeping at all.
SWEEP_CHUNK = 16
SWEEP_EVERY = 16

#: Up to this many endpoints a sweep re-reads them all in one step (as often as a pass
#: may start) and `fastest_ns` is computed exactly; beyond, both come from the rolling sweep.
SMALL_FLEET = 64


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

    __slots__ = ("_fastest_s", "active", "cursor", "endpoints", "fastest_ns", "flags", "index",
                 "keys", "level_of", "levels", "local_flags", "panic", "states", "use_local",
                 "weights")

    def __init__(self, levels: tuple[Level, ...], zone: str | None,
                 down: Sequence[bytes] = (), keys: list[str] | None = None,
                 local_flags: bytes | None = None, index: dict[str, int] | None = None
                 ) -> None:
        """`down`: per level, which of its endpoints are unavailable (from the update,
        which knows it without asking each endpoint); `keys`, `local_flags`: the
        endpoints' keys and whether each is in `zone`, in order, when the update has
        them (from the endpoints, without reading every state); `index`: key ->
        position, when the update has patched the previous one."""
        self.levels = levels
        #: The update's endpoints, keys and weights in the states' order: set by the
        #: update when they allow the next one to be a patch (`_diff.py`), else None.
        self.endpoints: tuple[Endpoint, ...] | None = None
        self.keys: list[str] | None = None
        self.weights: list[int] | None = None
        if len(levels) == 1:  # the usual case: one priority group, no concatenation
            self.states = states = levels[0].states
            self.level_of: tuple[Level, ...] = ()  # (`_set`: the one level)
        else:
            self.states = states = tuple(chain.from_iterable(lv.states for lv in levels))
            self.level_of = tuple(chain.from_iterable(repeat(lv, len(lv.states))
                                                      for lv in levels))
        if index is None:
            if keys is None:
                keys = [s.endpoint.key for s in states]
            index = dict(zip(keys, range(len(states)), strict=True))
        self.index = index
        if local_flags is not None:
            self.local_flags = local_flags
        elif zone is None:
            self.local_flags = bytes(len(states))
        else:
            self.local_flags = bytes([s.endpoint.zone == zone for s in states])
        self.flags = bytearray(b"".join(down)) if down else bytearray(len(states))
        start = 0
        for level, flags in zip(levels, down, strict=False):
            level.down = flags.count(1)  # in C: flags are 0 or 1
            end = start + len(level.states)
            if level.local:  # both flags set: the AND of the two as integers, in C
                both = (int.from_bytes(flags, "big")
                        & int.from_bytes(self.local_flags[start:end], "big"))
                level.local_down = both.bit_count()  # (each byte is 0 or 1)
            start = end
        self.cursor = 0
        self.active = 0
        self.panic = False
        self.use_local = False
        self.fastest_ns: int | None = None  # the smallest latest estimate, per full sweep
        self._fastest_s = float("inf")

    def carry_over(self, keys: list[str], endpoints: Sequence[Endpoint],
                   make: Callable[[int], tuple[EndpointState, bool]],
                   ) -> tuple[list[EndpointState], bytearray, list[EndpointState]]:
        """The states of a new endpoint set (`keys[i]` is `endpoints[i].key`): this
        generation's where it has them, else `make(i)` -> (state, down). Returns the
        states, their down flags and the made ones. Every state gets its new `Endpoint`
        (weight, zone, metadata may change; the history stays). The per-endpoint steps
        run in C (`map`, `itemgetter`), which keeps an update of 10,000 endpoints at a
        few milliseconds."""
        absent = len(self.states)  # picks the None / 0 appended below
        found = list(map(self.index.get, keys, repeat(absent)))
        if not found:
            return [], bytearray(), []
        take = itemgetter(*found) if len(found) > 1 else lambda seq: (seq[found[0]],)
        states: list[EndpointState] = list(take((*self.states, None)))
        down = bytearray(take(bytes(self.flags) + b"\0"))
        made = []
        n = -1
        for _ in range(found.count(absent)):  # the new ones, found in C
            n = found.index(absent, n + 1)
            states[n], down[n] = make(n)
            made.append(states[n])
        deque(map(setattr, states, repeat("endpoint"), endpoints), maxlen=0)
        return states, down, made

    def _set(self, i: int, down: bool) -> None:
        self.flags[i] = down
        step = 1 if down else -1
        level = self.level_of[i] if self.level_of else self.levels[0]
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
            breaker = state.breaker
            if (flags[i] or state.phase or state.health_check is False or (
                    breaker is not None and not getattr(breaker, "clean", False))):
                down = state.rank() == UNAVAILABLE  # else: counted available, still is
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


def build_levels(states: Sequence[EndpointState], endpoints: Sequence[Endpoint], down: bytes,
                 zone: str | None,
                 picker: Callable[[tuple[EndpointState, ...], list[int], int, bool], Picker],
                 weights: list[int],
                 ) -> tuple[tuple[Level, ...], list[bytes], bytes]:
    """Group `states` by priority (stable within a group) with their `down` flags;
    `endpoints[i]` is `states[i]`'s endpoint and `weights[i]` its weight (read instead of
    the states: the update has just made them). `picker(states, weights, priority, local)`
    builds each picker. Returns the levels, their down flags and, in level order, which
    states are in `zone`."""
    priorities = {e.priority for e in endpoints}
    groups: dict[int, tuple[tuple[EndpointState, ...], Sequence[Endpoint], bytes, list[int]]]
    if len(priorities) <= 1:  # the usual case: one group, no regrouping
        groups = {priorities.pop() if priorities else 0:
                  (tuple(states), endpoints, down, weights)}
    else:
        members: dict[int, list[int]] = {p: [] for p in priorities}
        for i, endpoint in enumerate(endpoints):
            members[endpoint.priority].append(i)
        groups = {p: (tuple(states[i] for i in idx), [endpoints[i] for i in idx],
                      bytes(down[i] for i in idx), [weights[i] for i in idx])
                  for p, idx in members.items()}
    levels, downs, masks = [], [], []
    for priority in sorted(groups):
        group, members_of, flags, weights = groups[priority]
        mask = bytes(len(group)) if zone is None else bytes([e.zone == zone for e in members_of])
        levels.append(make_level(priority, group, weights, mask, zone, picker))
        downs.append(flags)
        masks.append(mask)
    return tuple(levels), downs, b"".join(masks)


def make_level(priority: int, states: tuple[EndpointState, ...], weights: list[int],
               mask: bytes, zone: str | None,
               picker: Callable[[tuple[EndpointState, ...], list[int], int, bool], Picker],
               ) -> Level:
    """One level's pickers: over all its `states`, and over those `mask` says are in
    `zone` (none without a zone)."""
    local: tuple[EndpointState, ...] = ()
    local_picker: Picker | None = None
    if zone is not None:
        local = tuple(compress(states, mask))
        if local:
            local_picker = picker(local, list(compress(weights, mask)), priority, True)
    return Level(priority, states, picker(states, weights, priority, False), local,
                 local_picker)
