"""An update as a patch of the previous generation: work in proportion to what changed
(and the full rebuild it falls back to, and pickers built on the ones they replace).

A discovery source that keeps its `Endpoint` objects from one answer to the next (etcd's
watch keeps one per key; the DNS and file resolvers do not, they rebuild their answer) hands the
balancer the same objects for the endpoints that did not change. The patch finds, by
identity and in C (`map(is_not, ...)` into `bytes`), the longest run of
unchanged endpoints at the start and at the end of the set; only the endpoints between the
two are looked up by key, given a state and a new `Endpoint`. The rest of the generation
(states, down flags, keys, weights, zone mask, the key index when the size is the same) is
the previous one's, sliced and joined in C, so a 1% change of 10,000 endpoints does not
hash, compare or re-read the other 9,900.

The patch declines (`None`: the balancer rebuilds in full, with the same result) when the
previous generation has several priority groups or duplicate keys, when a changed endpoint
moves to another priority group, when a key would appear twice, or when the changed span
is over an eighth of the set (every endpoint a new object, as from a source that rebuilds
its answer: the rebuild's C-level passes are then the quicker). A single endpoint
changed in the middle of the set, an endpoint added or removed anywhere (a sorted set
shifts the rest by one) and a block replaced are all patches.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import is_not

from .._types import Rng
from ..discovery.endpoint import Endpoint
from ._base import EndpointState
from ._levels import Generation, Level, build_levels, make_level
from ._pickers import Picker
from ._weights import equal_weights
from .p2c import P2C, ewma_cost, pending_cost
from .round_robin import RoundRobinPicker
from .weighted_random import RandomPicker

Make = Callable[[int], tuple[EndpointState, bool]]
#: Largest share of the set (1 in N) a patch re-reads one by one in Python; beyond it the
#: full rebuild, whose per-endpoint steps run in C, is the quicker.
PATCH_SHARE = 8

PickerOf = Callable[[tuple[EndpointState, ...], list[int], int, bool], Picker]


def unchanged_ends(old: tuple[Endpoint, ...], new: tuple[Endpoint, ...]) -> tuple[int, int]:
    """(p, s): the first p and last s endpoints of `new` are the same objects as those
    of `old`, and p + s is at most the length of either. One pass of `is_not` into a
    bytes object (C, no int objects made) and `find`; a second over what is left of the
    shorter when the lengths differ."""
    n, m = len(old), len(new)
    if not n or not m or (new[0] is not old[0] and new[-1] is not old[-1]):
        return 0, 0  # (every endpoint a new object, as a rebuilt answer: no pass at all)
    differs = bytes(map(is_not, new, old))  # over the first min(n, m)
    p = differs.find(1)
    if p < 0:
        return min(n, m), 0
    if n == m:
        return p, n - 1 - differs.rfind(1)
    k = min(n, m) - p  # the ends, aligned at the last endpoint of each
    last = bytes(map(is_not, new[m - k:], old[n - k:])).rfind(1)
    return p, k - 1 - last


def patch(gen: Generation, endpoints: tuple[Endpoint, ...], ends: tuple[int, int],
          zone: str | None, make: Make, picker: PickerOf,
          ) -> tuple[Generation, list[EndpointState]] | None:
    """The generation for `endpoints`, patched from `gen`, with the states it made
    (`make(i)` -> (state, down) for `endpoints[i]`, new to this balancer); `ends`: their
    `unchanged_ends` against `gen.endpoints`. None when the update must rebuild in full.
    A weight below 1 raises `ValueError` before anything changes (as `equal_weights`
    names it)."""
    old, keys, weights = gen.endpoints, gen.keys, gen.weights
    if old is None or keys is None or weights is None or not endpoints:
        return None
    n, m = len(old), len(endpoints)
    p, s = ends
    end_old, end_new = n - s, m - s
    middle = endpoints[p:end_new]
    if max(len(middle), end_old - p) > max(16, m // PATCH_SHARE):
        return None
    level = gen.levels[0]
    priority = level.priority
    for endpoint in middle:
        if endpoint.priority != priority:
            return None
    mid_keys = [e.key for e in middle]
    new_keys = keys[:p] + mid_keys + keys[end_old:]
    mid_weights = [e.weight for e in middle]
    new_weights = weights[:p] + mid_weights + weights[end_old:]
    if mid_weights and min(mid_weights) <= 0:  # (the others were checked before)
        equal_weights(new_weights, endpoints)  # raises, naming it: nothing has changed
    old_index = gen.index
    if n == m:  # positions outside the middle stay: patch a copy of the index
        index = old_index.copy()
        for key in keys[p:end_old]:
            del index[key]
        index.update(zip(mid_keys, range(p, end_new), strict=True))
    else:
        index = dict(zip(new_keys, range(m), strict=True))
    if len(index) != m:  # a key twice: the full rebuild decides, as it always has
        return None
    states, flags = gen.states, gen.flags
    mid_states: list[EndpointState] = []
    mid_down = bytearray(len(middle))
    made: list[EndpointState] = []
    for k, key in enumerate(mid_keys):
        j = old_index.get(key)
        if j is not None and p <= j < end_old:  # a survivor, maybe with a new Endpoint
            state = states[j]
            state.endpoint = middle[k]
            mid_down[k] = flags[j]
        else:
            state, down = make(p + k)
            mid_down[k] = down
            made.append(state)
        mid_states.append(state)
    all_states = states[:p] + tuple(mid_states) + states[end_old:]
    down_flags = bytes(flags[:p]) + bytes(mid_down) + bytes(flags[end_old:])
    if zone is None:
        mask = bytes(m)
    else:
        mask = gen.local_flags[:p] + bytes([e.zone == zone for e in middle]) + \
            gen.local_flags[end_old:]
    levels: tuple[Level, ...] = (make_level(priority, all_states, new_weights, mask, zone,
                                            picker),)
    new = Generation(levels, zone, [down_flags], None, mask, index)
    remember(new, endpoints, new_keys, new_weights)
    return new, made


def rebuild(gen: Generation, endpoints: tuple[Endpoint, ...], zone: str | None, make: Make,
            picker: PickerOf) -> tuple[Generation, list[EndpointState]]:
    """The generation for `endpoints` built in full (states carried over from `gen` by
    key), with the states it made."""
    weights = [e.weight for e in endpoints]
    equal_weights(weights, endpoints)  # a bad weight is refused before anything changes
    keys = [e.key for e in endpoints]
    states, down, added = gen.carry_over(keys, endpoints, make)
    levels, downs, local = build_levels(tuple(states), endpoints, bytes(down), zone, picker,
                                        weights)
    new = Generation(levels, zone, downs, keys if len(levels) == 1 else None, local)
    remember(new, endpoints, keys, weights)
    return new, added


def next_picker(kind: str, rng: Rng, old: Picker | None, states: tuple[EndpointState, ...],
                weights: list[int]) -> Picker:
    """A picker of `kind` built on `old`, the one it replaces: round robin's counter goes
    on, and the same weights (compared in C; a patch rarely changes a weight) reuse the
    draw or the schedule."""
    same = old is not None and old.weights == weights
    if kind == "round-robin":
        counter = old.counter if isinstance(old, RoundRobinPicker) else None
        schedule = old.schedule if same and isinstance(old, RoundRobinPicker) else None
        return RoundRobinPicker(states, counter, rng, weights=weights, schedule=schedule)
    if kind == "random":
        draw = old.draw if same and isinstance(old, RandomPicker) else None
        return RandomPicker(states, rng, weights=weights, draw=draw)
    draw = old.draw if same and isinstance(old, P2C) else None
    return P2C(states, rng, pending_cost if kind == "p2c-least-request" else ewma_cost,
               weights=weights, draw=draw)


def remember(gen: Generation, endpoints: tuple[Endpoint, ...], keys: list[str],
             weights: list[int]) -> None:
    """Keep what the next update needs to patch `gen` (one priority group, every key
    once; otherwise it rebuilds in full)."""
    if len(gen.levels) == 1 and len(gen.index) == len(endpoints):
        gen.endpoints, gen.keys, gen.weights = endpoints, keys, weights
