"""meshclient against a sidecar: throughput, latency and CPU, side by side in one run.

Clients, each one `httpx.Client` / `httpx.AsyncClient` (one pool) unless it is the mesh:

* `bare-one` - bare httpx to one backend;
* `bare-spread` - bare httpx spreading the requests over the same backends by hand
  (round robin over their URLs, one pool): the reference the targets are stated against;
* `mesh` - meshclient with the default policy (P2C peak-EWMA, a pool per endpoint);
* `haproxy`, `nginx` - bare httpx through a local HAProxy (`leastconn`) or nginx
  (`least_conn`) acting as the sidecar (one worker, keep-alive upstream); skipped when not
  installed.

Over 3 backends (and 10, for `mesh` against `bare-spread`), sync (threads) and async
(tasks), at concurrency 1, 16, 64 and 128. Backends are `meshclient._bench.upstream`
servers in their own processes (their CPU is never counted). CPU is the client process's
(`time.process_time`) plus, for a sidecar, its processes' (/proc); "queued" is the time
the client's callers spent runnable but waiting for a CPU, per request (schedstat).

The client runs alone on the first half of the CPUs, the backends and sidecars on the
rest (`_load.Placement`; `--shared-cpus` leaves placement to the scheduler). On shared
CPUs a Python backend woken on the client's CPU hands it straight back, while a client
woken from the other CPU can wait out another process's time slice; a proxy in between
changes which happens, so bare httpx through nginx looked cheaper than bare httpx direct.
With CPUs of its own, every client is woken from another CPU, as by a remote backend.

Each concurrency level starts every variant afresh: a new client, one prefilled connection
per caller, a warm-up at that level (`_load.py`); then each figure is the median of
interleaved rounds (the variants' order flipped each round), printed with the rounds' range.

    python -m benchmarks.sidecar            # 3 rounds; 20+ minutes on a loaded 2-core machine
    python -m benchmarks.sidecar --busy     # the same next to a CPU-heavy neighbour process
    python -m benchmarks.sidecar --quick    # c=1 and 16, 3 backends: about a minute
    python -m benchmarks.sidecar --shared-cpus   # client, backends and sidecars on any CPU

Targets (against `bare-spread`): mesh throughput >= 1.10x at async c=64 and c=128,
>= 1.0x at c=16; mesh CPU per request below HAProxy's and nginx's client+proxy CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import httpx

from benchmarks import _load
from benchmarks._common import FastServer, base_parser
from benchmarks._sidecar_report import Results, Sample, plot, report, verdicts
from benchmarks._sidecars import Sidecar
from meshclient import AsyncMeshTransport, MeshTransport, Policy

LIMITS = httpx.Limits(max_connections=256, max_keepalive_connections=256,
                      keepalive_expiry=None)
SERVICE = "users"


def _policy(backends: list[FastServer]) -> Policy:
    return Policy.from_dict({"version": "bench", "services": {
        SERVICE: {"endpoints": [b.address for b in backends]}}})


def _pctl(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Variant:
    """One client setup: its URLs (cycled by request), how to make its client, its sidecar."""

    def __init__(self, name: str, urls: list[str], make: Callable[[], Any],
                 sidecar: Sidecar | None = None) -> None:
        self.name, self.urls, self.make, self.sidecar = name, urls, make, sidecar

    def mark(self) -> tuple[float, float, float]:
        """(proxy CPU, client CPU, wall) now: the start of a sample."""
        return (self.sidecar.cpu_seconds() if self.sidecar else 0.0, time.process_time(),
                time.perf_counter())

    def sample(self, start: tuple[float, float, float], latencies: list[float],
               queued: float = 0.0) -> Sample:
        """The figures of the sample begun at `start` (`mark()`); `queued`: seconds the
        client's callers waited for a CPU while runnable."""
        wall, cpu = time.perf_counter() - start[2], time.process_time() - start[1]
        proxy = (self.sidecar.cpu_seconds() if self.sidecar else 0.0) - start[0]
        n = len(latencies)
        return {"rps": n / wall, "cpu_us": (cpu + proxy) / n * 1e6,
                "client_cpu_us": cpu / n * 1e6, "queued_us": queued / n * 1e6,
                "p50_ms": _pctl(latencies, 0.5) * 1e3, "p99_ms": _pctl(latencies, 0.99) * 1e3}


def _variants(shell: str, backends: list[FastServer], sidecars: dict[str, Sidecar],
              ) -> list[Variant]:
    """The client setups for one fleet (a fresh client per concurrency level)."""
    sync = shell == "sync"
    make: Any = httpx.Client if sync else httpx.AsyncClient
    shell_transport: Any = MeshTransport if sync else AsyncMeshTransport
    spread = [b.url + "/" for b in backends]
    policy = _policy(backends)
    out = [Variant("bare-spread", spread, lambda: make(limits=LIMITS)),
           Variant("mesh", [f"http://{SERVICE}/"], lambda: make(
               transport=shell_transport(policy, limits=LIMITS)))]
    if len(backends) == 3:
        out.insert(0, Variant("bare-one", spread[:1], lambda: make(limits=LIMITS)))
        out += [Variant(kind, [s.url + "/"], lambda: make(limits=LIMITS), s)
                for kind, s in sidecars.items()]
    return out


def per_sample(n: int, c: int) -> int:
    """Requests per sample at concurrency `c`: at least `n`, and 4 per caller, a multiple of c."""
    return -(-max(n, 4 * c) // c) * c


def _order(variants: list[Variant], r: int) -> list[Variant]:
    return variants if r % 2 == 0 else variants[::-1]


def _level(shell: str, variants: list[Variant], c: int, n: int, rounds: int,
           ) -> dict[str, list[Sample]]:
    """One concurrency level: every variant gets a fresh client, `c` prefilled connections
    and a warm-up at `c`, then `rounds` interleaved samples (the order flipped each round)."""
    out: dict[str, list[Sample]] = {v.name: [] for v in variants}
    n = per_sample(n, c)
    warm = per_sample(4 * c, c)

    def say(v: Variant, what: str) -> None:
        print(f"  {shell} c={c} {v.name} {what}", file=sys.stderr, flush=True)

    async def run_async() -> None:
        clients = {v.name: v.make() for v in variants}
        try:
            for v in variants:
                say(v, "warm")
                await _load.async_prefill(clients[v.name], v.urls, c)
                await _load.async_run(clients[v.name], v.urls, c, warm)
            for r in range(rounds):
                for v in _order(variants, r):
                    say(v, f"round {r + 1}")
                    start, queued = v.mark(), _load.queued_seconds()
                    latencies = await _load.async_run(clients[v.name], v.urls, c, n)
                    out[v.name].append(v.sample(start, latencies,
                                                _load.queued_seconds() - queued))
        finally:
            for client in clients.values():
                await client.aclose()

    if shell == "async":
        asyncio.run(run_async())
        return out
    clients = {v.name: v.make() for v in variants}
    try:
        for v in variants:
            say(v, "warm")
            _load.sync_prefill(clients[v.name], v.urls, c)
            _load.sync_run(clients[v.name], v.urls, c, warm)
        for r in range(rounds):
            for v in _order(variants, r):
                say(v, f"round {r + 1}")
                start, waits = v.mark(), list[float]()
                latencies = _load.sync_run(clients[v.name], v.urls, c, n, waits)
                out[v.name].append(v.sample(start, latencies, sum(waits)))
    finally:
        for client in clients.values():
            client.close()
    return out


def _numbers(parser: argparse.ArgumentParser, name: str, text: str) -> tuple[int, ...]:
    """`--levels 1,16`: positive integers, or a usage error naming the option and value."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        parser.error(f"--{name} must be positive integers separated by commas, not {text!r}")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=None,
                        help="requests per sample (at least 4 per caller)")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--busy", type=int, nargs="?", const=1, default=0, metavar="N",
                        help="run next to N CPU-heavy neighbour processes (busy loops; 1)")
    parser.add_argument("--levels", default=None, help="concurrency levels (e.g. 16,64)")
    parser.add_argument("--backends", default=None, help="fleet sizes (e.g. 3,10)")
    parser.add_argument("--shells", default="sync,async", help="sync, async or both")
    parser.add_argument("--plot", default=None, help="write a PNG here (needs matplotlib)")
    parser.add_argument("--shared-cpus", action="store_true",
                        help="leave CPU placement to the scheduler (by default the client "
                             "runs alone on half the CPUs, backends and sidecars on the rest)")
    args = parser.parse_args(argv)
    for field in ("requests", "rounds", "busy"):
        value = getattr(args, field)
        if value is not None and value < (0 if field == "busy" else 1):
            parser.error(f"--{field} must be positive, not {value!r}")
    n = args.requests or (200 if args.quick else 640)
    rounds = args.rounds or 3
    levels: tuple[int, ...] = (1, 16) if args.quick else (1, 16, 64, 128)
    if args.levels:
        levels = _numbers(parser, "levels", args.levels)
    shells = [s.strip() for s in args.shells.split(",") if s.strip()]
    if not shells or set(shells) - {"sync", "async"}:
        parser.error(f"--shells must be sync, async or both, not {args.shells!r}")
    fleets: tuple[int, ...] = (3,) if args.quick else (3, 10)
    if args.backends:
        fleets = _numbers(parser, "backends", args.backends)
    results: Results = {}
    # terminated: unwind as on Ctrl-C, so the proxies, backends and neighbours are stopped
    # too (asyncio.run cancels its task on KeyboardInterrupt; a SystemExit raised inside
    # a request's task did not always end the run)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with ExitStack() as stack:
        backends = [stack.enter_context(FastServer(f"127.0.0.{i + 2}")) for i in range(max(fleets))]
        sidecars = {kind: stack.enter_context(Sidecar(kind, [b.address for b in backends[:3]]))
                    for kind in ("haproxy", "nginx") if Sidecar.available(kind)}
        placement = stack.enter_context(_load.Placement(
            [*(b.pid for b in backends), *(pid for s in sidecars.values() for pid in s.pids)],
            enabled=not args.shared_cpus))
        stack.enter_context(_load.Neighbour(args.busy))
        for shell in shells:
            for fleet in fleets:
                print(f"{shell}, {fleet} backends ...", file=sys.stderr, flush=True)
                variants = _variants(shell, backends[:fleet], sidecars)
                for c in levels:
                    got = _level(shell, variants, c, n, rounds)
                    results.update({(shell, fleet, c, name): s for name, s in got.items()})
                    print(report({k: v for k, v in results.items() if k[:3] == (shell, fleet, c)}),
                          file=sys.stderr, flush=True)  # each level as it is done
    load = os.getloadavg()
    busy = f", {args.busy} busy neighbour process(es)" if args.busy else ", no neighbour"
    print(f"at least {n} requests per sample (4 per caller), {rounds} rounds{busy}, "
          f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}, {os.cpu_count()} CPUs, "
          f"{placement.describe()}")
    print(report(results))
    for line in verdicts(results):
        print(line)
    if args.plot and not plot(results, args.plot, " (busy)" if args.busy else ""):
        print("plot skipped: matplotlib is not installed (the demo extra)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
