"""Balancer cost against fleet size: one pick, and one endpoint-set update, from 3 to 10,000
endpoints, for every `balancer.kind`, with weights, with a local zone, and with ejections.

No network: `LoadBalancer` alone, as the transport drives it. Every endpoint has a real
(in-memory) breaker, as the runtime attaches one, and 5% of them are ejected, so the
counting of available endpoints is part of the cost.

- **b2b**: mean µs per pick, picks back to back (real clock).
- **paced**: one pick when picks are 1 ms apart (1,000 requests per second): the
  balancer's clock (a fake one) moves 1 ms between picks, so every periodic job (recounts,
  sweeps, probes) falls due as often as it would at that rate. Median, 99th percentile and
  mean µs; an O(n) step every 100 picks shows in p99 and the mean. On a shared machine
  the mean also carries the odd multi-millisecond preemption; **paced CPU µs** is the
  mean of this thread's CPU time per pick (the timers' own cost taken off), which leaves
  the preemptions out and keeps every periodic job in.
- **update**: ms for one update that replaces 1% of the endpoints (median of a few), wall
  time and this thread's CPU time (which leaves out the time other processes had the CPU:
  on a busy machine the code's own cost). The unchanged endpoints are the previous
  `Endpoint` objects, as a source that keeps them hands them on (etcd's watch), so the
  update is a patch (`meshclient/balance/_diff.py`);
  **new objects** is the CPU time of the same update when every endpoint is a new
  object (a full rebuild, which also frees the previous objects).

    python -m benchmarks.scale            # about a minute
    python -m benchmarks.scale --quick    # smaller sizes, fewer picks

Instruction counts, which do not move with the machine's load: `--updates K` builds each
chosen balancer and K new endpoint sets and runs the K updates, printing nothing;
`--updates K --no-update` does the same without the updates; `--new-objects` makes every
endpoint of every set a new object (the full rebuild). Under
`valgrind --tool=cachegrind --cache-sim=no`, the difference of the two totals divided by
K is the instructions of one update (the command in docs/benchmarks.md). `--paced K` runs
K paced picks with a seeded random source (`--paced 0`: everything but the picks), for
the instructions of one paced pick the same way.

Targets: at 10,000 endpoints a paced pick of at most 5 µs and an update of at most 10 ms,
for every variant.
"""

from __future__ import annotations

import gc
import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks._common import base_parser, table
from meshclient._clock import CLOCK, RNG
from meshclient._types import Clock
from meshclient.balance import LoadBalancer
from meshclient.discovery.endpoint import Endpoint
from meshclient.policy import BalancerPolicy, BreakerPolicy, OutlierPolicy
from meshclient.resilience.breaker import Breaker
from meshclient.testing import FakeClock

SIZES = (3, 100, 1_000, 10_000)
HEADER = ("variant", "endpoints", "b2b µs", "paced p50 µs", "paced p99 µs", "paced mean µs",
          "paced CPU µs", "update ms", "update CPU ms", "update CPU ms, new objects")


@dataclass(frozen=True)
class Variant:
    name: str
    kind: str
    weighted: bool = False
    zone: str | None = None


VARIANTS = (
    Variant("p2c-ewma", "p2c-ewma"),
    Variant("p2c-least-request", "p2c-least-request"),
    Variant("round-robin", "round-robin"),
    Variant("random", "random"),
    Variant("round-robin weighted", "round-robin", weighted=True),
    Variant("p2c-ewma weighted", "p2c-ewma", weighted=True),
    Variant("p2c-ewma zone-aware", "p2c-ewma", zone="a"),
)


def fleet(n: int, variant: Variant, generation: int = 0,
          previous: tuple[Endpoint, ...] | None = None) -> tuple[Endpoint, ...]:
    """`n` endpoints; from one generation to the next, 1% of them (at least one, a block
    of neighbours) are replaced by new ones (an update's churn), the rest are the same
    addresses. With `previous` (the last generation), the unchanged endpoints are its very
    objects, as a source that keeps them hands them on (etcd's watch); without it, every
    endpoint is a new object (a source that rebuilds its answer, as DNS and files do)."""
    step = max(1, n // 100)  # endpoints replaced per generation, in blocks of `step`
    blocks = max(1, n // step)

    def port(i: int) -> int:  # 8000 + the last generation that replaced i's block
        last = generation - (generation - 1 - i // step) % blocks
        return 8000 + max(last, 0)

    def endpoint(i: int) -> Endpoint:
        if previous is not None and previous[i].port == port(i):
            return previous[i]
        return Endpoint(f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}", port(i),
                        1 + i % 3 if variant.weighted else 1,
                        ("a" if i % 2 == 0 else "b") if variant.zone else None)

    return tuple(endpoint(i) for i in range(n))


def build(n: int, variant: Variant, clock: Clock = CLOCK) -> LoadBalancer:
    lb = LoadBalancer("bench", BalancerPolicy(kind=variant.kind), OutlierPolicy(),
                      clock=clock, rng=RNG, zone=variant.zone)
    lb.update(fleet(n, variant))
    policy = BreakerPolicy()
    for state in lb.states():
        state.breaker = Breaker("bench", state.key, policy, clock)
    for state in lb.states()[: n * 5 // 100]:  # 5% ejected: bookkeeping is part of the cost
        for _ in range(OutlierPolicy().consecutive_failures):
            state.end(state.begin(clock.now_ns()), None, False)
    return lb


def pick_b2b_us(lb: LoadBalancer, picks: int) -> float:
    pick = lb.pick
    started = time.perf_counter()
    for _ in range(picks):
        pick()
    return (time.perf_counter() - started) / picks * 1e6


def _noop() -> None:
    return None


def _paced(call: Callable[[], object], clock: FakeClock, picks: int,
           ) -> tuple[list[int], list[int]]:
    """Wall and CPU (this thread's) ns of `call`, once per fake millisecond."""
    wall, cpu = [], []
    thread_ns, perf_ns = time.thread_time_ns, time.perf_counter_ns
    for _ in range(picks):
        clock.advance(0.001)
        cpu_started = thread_ns()
        started = perf_ns()
        call()
        ended = perf_ns()
        cpu.append(thread_ns() - cpu_started)
        wall.append(ended - started)
    return wall, cpu


def pick_paced_us(lb: LoadBalancer, clock: FakeClock, picks: int,
                  ) -> tuple[float, float, float, float]:
    """Wall p50, p99 and mean µs of a paced pick, and its mean CPU µs (the timers' own
    cost, measured around a call that does nothing, taken off)."""
    samples, cpu = _paced(lb.pick, clock, picks)
    _, idle = _paced(_noop, FakeClock(), picks)
    samples.sort()
    overhead = statistics.median(idle)
    return (samples[len(samples) // 2] / 1e3, samples[len(samples) * 99 // 100] / 1e3,
            statistics.fmean(samples) / 1e3, (statistics.fmean(cpu) - overhead) / 1e3)


def update_ms(lb: LoadBalancer, n: int, variant: Variant, rounds: int,
              ) -> tuple[float, float, float]:
    """Median wall and CPU (this thread's) ms of one update replacing 1% of the endpoints
    whose unchanged endpoints are the previous objects, and the CPU ms of the same update
    when every endpoint is a new object (the balancer rebuilds in full, and the previous
    objects are freed)."""
    wall: list[float] = []
    cpu: list[float] = []
    cpu_new: list[float] = []
    last = tuple(state.endpoint for state in lb.states())
    for generation in range(1, 2 * rounds + 1):
        rebuilt = generation > rounds
        endpoints = fleet(n, variant, generation, None if rebuilt else last)
        started, started_cpu = time.perf_counter(), time.thread_time()
        lb.update(endpoints)
        (cpu_new if rebuilt else cpu).append(time.thread_time() - started_cpu)
        if not rebuilt:
            wall.append(time.perf_counter() - started)
        last = endpoints
        del endpoints  # the balancer's states hold the last reference
    return (statistics.median(wall) * 1e3, statistics.median(cpu) * 1e3,
            statistics.median(cpu_new) * 1e3)


def updates_only(n: int, variant: Variant, count: int, run: bool, kept: bool) -> None:
    """`count` updates replacing 1% each (or, `run` False, only what precedes them): for
    counting an update's instructions as the difference of two runs. `kept`: unchanged
    endpoints are the previous objects (else every endpoint is new)."""
    lb = build(n, variant)
    last = tuple(state.endpoint for state in lb.states())
    fleets = []
    for generation in range(1, count + 1):
        last = fleet(n, variant, generation, last if kept else None)
        fleets.append(last)
    gc.collect()
    for endpoints in fleets if run else ():
        lb.update(endpoints)


def paced_only(n: int, variant: Variant, picks: int) -> None:
    """`picks` paced picks (1 ms apart by a fake clock) with a seeded random source: for
    counting a paced pick's instructions as the difference of two runs (`picks` and 0)."""
    RNG.seed(1)
    clock = FakeClock()
    lb = build(n, variant, clock)
    pick, advance = lb.pick, clock.advance
    for _ in range(picks):
        advance(0.001)
        pick()


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--variants", nargs="+", default=[v.name for v in VARIANTS],
                        choices=[v.name for v in VARIANTS], metavar="NAME")
    parser.add_argument("--updates", type=int, default=0, metavar="K",
                        help="only run K updates per variant and size (for cachegrind)")
    parser.add_argument("--no-update", action="store_true",
                        help="with --updates: everything but the updates")
    parser.add_argument("--new-objects", action="store_true",
                        help="with --updates: every endpoint a new object (a full rebuild)")
    parser.add_argument("--paced", type=int, default=None, metavar="K",
                        help="only run K paced picks per variant and size, seeded (for "
                             "cachegrind; 0: everything but the picks)")
    args = parser.parse_args(argv)
    logging.getLogger("meshclient").setLevel(logging.ERROR)  # the 5% ejections are logged
    if args.paced is not None:
        for variant in (v for v in VARIANTS if v.name in args.variants):
            for n in args.sizes:
                paced_only(n, variant, args.paced)
        return 0
    if args.updates:
        for variant in (v for v in VARIANTS if v.name in args.variants):
            for n in args.sizes:
                updates_only(n, variant, args.updates, not args.no_update,
                             not args.new_objects)
        return 0
    sizes = [s for s in args.sizes if s <= 1_000] if args.quick else args.sizes
    b2b, paced, rounds = (2_000, 300, 2) if args.quick else (20_000, 3_000, 5)
    rows = []
    for variant in (v for v in VARIANTS if v.name in args.variants):
        for n in sizes:
            b2b_us = pick_b2b_us(build(n, variant), b2b)
            clock = FakeClock()
            lb = build(n, variant, clock)
            rows.append((variant.name, n, b2b_us, *pick_paced_us(lb, clock, paced),
                         *update_ms(lb, n, variant, rounds)))
            print(table([rows[-1]], HEADER).splitlines()[-1], flush=True)
    print()
    print(table(rows, HEADER))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
