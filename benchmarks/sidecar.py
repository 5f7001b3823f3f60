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
(`time.process_time`) plus, for a sidecar, its processes' (/proc). Each concurrency level
starts every variant afresh: a new client, one prefilled connection per caller, a warm-up
at that level (`_load.py`); then each figure is the median of interleaved rounds (the
variants' order flipped each round), printed with the rounds' range.

    python -m benchmarks.sidecar            # 3 rounds, about ten minutes on 2 cores
    python -m benchmarks.sidecar --busy     # the same next to a CPU-heavy neighbour process
    python -m benchmarks.sidecar --quick    # c=1 and 16, 3 backends: about a minute

Targets (against `bare-spread`): mesh throughput >= 1.10x at async c=64 and c=128,
>= 1.0x at c=16; mesh CPU per request below HAProxy's and nginx's client+proxy CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import httpx

from benchmarks import _load
from benchmarks._common import FastServer, base_parser, table
from benchmarks._sidecars import Sidecar
from meshclient import AsyncMeshTransport, MeshTransport, Policy

LIMITS = httpx.Limits(max_connections=256, max_keepalive_connections=256,
                      keepalive_expiry=None)
SERVICE = "users"
Sample = dict[str, float]


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

    def sample(self, start: tuple[float, float, float], latencies: list[float]) -> Sample:
        """The figures of the sample begun at `start` (`mark()`)."""
        wall, cpu = time.perf_counter() - start[2], time.process_time() - start[1]
        proxy = (self.sidecar.cpu_seconds() if self.sidecar else 0.0) - start[0]
        n = len(latencies)
        return {"rps": n / wall, "cpu_us": (cpu + proxy) / n * 1e6,
                "client_cpu_us": cpu / n * 1e6,
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
                    start = v.mark()
                    out[v.name].append(v.sample(start, await _load.async_run(
                        clients[v.name], v.urls, c, n)))
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
                start = v.mark()
                out[v.name].append(v.sample(start, _load.sync_run(clients[v.name], v.urls, c, n)))
    finally:
        for client in clients.values():
            client.close()
    return out


def _median(samples: list[Sample], key: str) -> float:
    return statistics.median(s[key] for s in samples)


def _span(values: list[float], digits: int = 0) -> str:
    """`min-max` of the rounds' values."""
    return f"{min(values):.{digits}f}-{max(values):.{digits}f}"


Results = dict[tuple[str, int, int, str], list[Sample]]


def ratios(results: Results, key: tuple[str, int, int, str]) -> list[float]:
    """Per round: the variant's throughput over `bare-spread`'s (same level, same round)."""
    ref = results.get((*key[:3], "bare-spread"))
    if not ref:
        return []
    return [a["rps"] / b["rps"] for a, b in zip(results[key], ref, strict=True)]


def report(results: Results) -> str:
    """Medians over the rounds, with the rounds' range for throughput, ratio and CPU."""
    rows = []
    for key, samples in results.items():
        shell, fleet, c, name = key
        rps, ratio = [s["rps"] for s in samples], ratios(results, key)
        cpu = [s["cpu_us"] for s in samples]
        rows.append((shell, fleet, c, name, round(statistics.median(rps)), _span(rps),
                     f"{statistics.median(ratio):.2f}" if ratio else "-",
                     _span(ratio, 2) if ratio else "-", round(statistics.median(cpu)), _span(cpu),
                     round(_median(samples, "client_cpu_us")),
                     _median(samples, "p50_ms"), _median(samples, "p99_ms")))
    return table(rows, ("shell", "backends", "c", "client", "req/s", "range", "vs spread",
                        "range", "CPU us/req", "range", "client CPU", "p50 ms", "p99 ms"))


def _target(shell: str, c: int) -> float | None:
    """The mesh/spread throughput target at this level (None: no target)."""
    if shell == "async" and c >= 64:
        return 1.10
    return 1.0 if c == 16 else None


def verdicts(results: Results) -> list[str]:
    """Each target, met or not (on the medians), with the figure and the rounds' range."""
    lines = []
    for key, samples in results.items():
        shell, fleet, c, name = key
        want = _target(shell, c)
        if name != "mesh":
            continue
        if want is not None:
            ratio = ratios(results, key)
            got = statistics.median(ratio)
            lines.append(f"{shell} {fleet} backends c={c}: mesh/spread throughput {got:.2f} "
                         f"({_span(ratio, 2)}) {'meets' if got >= want else 'MISSES'} "
                         f">= {want:.2f}")
        for proxy in ("haproxy", "nginx"):
            other = results.get((shell, fleet, c, proxy))
            if other:
                mine, theirs = _median(samples, "cpu_us"), _median(other, "cpu_us")
                lines.append(f"{shell} c={c}: mesh CPU/request {mine:.0f} us "
                             f"{'below' if mine < theirs else 'NOT below'} {proxy}'s "
                             f"client+proxy {theirs:.0f} us")
    return lines


def plot(results: Results, path: str, title: str = "") -> bool:
    """Throughput (median, bars: the rounds' range) and CPU per request by concurrency,
    per client, 3 backends; False without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    for col, shell in enumerate(("sync", "async")):
        names = sorted({k[3] for k in results if k[0] == shell and k[1] == 3})
        for name in names:
            keys = sorted(k for k in results if k[:2] == (shell, 3) and k[3] == name)
            xs = [str(k[2]) for k in keys]
            for row, field in enumerate(("rps", "cpu_us")):
                values = [[s[field] for s in results[k]] for k in keys]
                mid = [statistics.median(v) for v in values]
                axes[row][col].errorbar(xs, mid, marker="o", capsize=3, label=name, yerr=[
                    [m - min(v) for m, v in zip(mid, values, strict=True)],
                    [max(v) - m for m, v in zip(mid, values, strict=True)]])
        axes[0][col].set_title(f"{shell}, 3 backends{title}")
        axes[1][col].set_xlabel("concurrency")
    axes[0][0].set_ylabel("requests/s")
    axes[1][0].set_ylabel("CPU us/request (client+proxy)")
    axes[0][1].legend()
    fig.tight_layout()
    fig.savefig(path)
    return True


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
    # terminated: unwind, so the proxies, backends and neighbours are stopped too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with ExitStack() as stack:
        backends = [stack.enter_context(FastServer(f"127.0.0.{i + 2}")) for i in range(max(fleets))]
        sidecars = {kind: stack.enter_context(Sidecar(kind, [b.address for b in backends[:3]]))
                    for kind in ("haproxy", "nginx") if Sidecar.available(kind)}
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
          f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}, {os.cpu_count()} CPUs")
    print(report(results))
    for line in verdicts(results):
        print(line)
    if args.plot and not plot(results, args.plot, " (busy)" if args.busy else ""):
        print("plot skipped: matplotlib is not installed (the demo extra)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
