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
(`time.process_time`) plus, for a sidecar, its processes' (/proc). Each figure is the
median of interleaved rounds (the variants' order flipped each round).

    python -m benchmarks.sidecar            # a few minutes
    python -m benchmarks.sidecar --quick    # a short run

Targets (against `bare-spread`): mesh throughput >= 1.10x at async c=64 and c=128,
>= 1.0x at c=16; mesh CPU per request below HAProxy's and nginx's client+proxy CPU.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import httpx

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
    """One client setup: its URLs (cycled by request), its client, its sidecar."""

    def __init__(self, name: str, urls: list[str], client: Any,
                 sidecar: Sidecar | None = None) -> None:
        self.name, self.urls, self.client, self.sidecar = name, urls, client, sidecar

    def sample(self, run: Callable[[], list[float]], n: int) -> Sample:
        proxy0 = self.sidecar.cpu_seconds() if self.sidecar else 0.0
        cpu0, wall0 = time.process_time(), time.perf_counter()
        latencies = run()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        proxy = (self.sidecar.cpu_seconds() if self.sidecar else 0.0) - proxy0
        return {"rps": n / wall, "cpu_us": (cpu + proxy) / n * 1e6,
                "client_cpu_us": cpu / n * 1e6,
                "p50_ms": _pctl(latencies, 0.5) * 1e3, "p99_ms": _pctl(latencies, 0.99) * 1e3}


def _sync_run(variant: Variant, c: int, n: int) -> list[float]:
    latencies: list[float] = []
    lock = threading.Lock()
    urls, client = variant.urls, variant.client

    def worker(start: int) -> None:
        mine = []
        for i in range(start, n, c):
            t0 = time.perf_counter()
            client.get(urls[i % len(urls)]).read()
            mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)

    if c == 1:
        worker(0)
    else:
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(c)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return latencies


async def _async_run(variant: Variant, c: int, n: int) -> list[float]:
    latencies: list[float] = []
    urls, client = variant.urls, variant.client

    async def worker(start: int) -> None:
        for i in range(start, n, c):
            t0 = time.perf_counter()
            await (await client.get(urls[i % len(urls)])).aread()
            latencies.append(time.perf_counter() - t0)

    await asyncio.gather(*(worker(i) for i in range(c)))
    return latencies


def _variants(shell: str, backends: list[FastServer], sidecars: dict[str, Sidecar],
              ) -> list[Variant]:
    """The clients for one fleet (`_rounds` closes them)."""
    sync = shell == "sync"
    make = httpx.Client if sync else httpx.AsyncClient
    spread = [b.url + "/" for b in backends]
    out = [Variant("bare-spread", spread, make(limits=LIMITS)),
           Variant("mesh", [f"http://{SERVICE}/"], make(transport=(
               MeshTransport if sync else AsyncMeshTransport)(_policy(backends), limits=LIMITS)))]
    if len(backends) == 3:
        out.insert(0, Variant("bare-one", spread[:1], make(limits=LIMITS)))
        out += [Variant(kind, [s.url + "/"], make(limits=LIMITS), s)
                for kind, s in sidecars.items()]
    return out


def _rounds(shell: str, variants: list[Variant], levels: tuple[int, ...], n: int,
            rounds: int) -> dict[tuple[int, str], list[Sample]]:
    """Per (concurrency, variant): one sample per round, variants interleaved."""
    out: dict[tuple[int, str], list[Sample]] = {}

    async def run_async() -> None:
        for v in variants:
            await _async_run(v, max(levels), max(levels) * 4)  # warm: every connection
        for c in levels:
            for r in range(rounds):
                for v in variants if r % 2 == 0 else variants[::-1]:
                    proxy0 = v.sidecar.cpu_seconds() if v.sidecar else 0.0
                    cpu0, wall0 = time.process_time(), time.perf_counter()
                    print(f"  async c={c} {v.name}", file=sys.stderr, flush=True)
                    lat = await _async_run(v, c, n)
                    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
                    proxy = (v.sidecar.cpu_seconds() if v.sidecar else 0.0) - proxy0
                    out.setdefault((c, v.name), []).append({
                        "rps": n / wall, "cpu_us": (cpu + proxy) / n * 1e6,
                        "client_cpu_us": cpu / n * 1e6,
                        "p50_ms": _pctl(lat, 0.5) * 1e3, "p99_ms": _pctl(lat, 0.99) * 1e3})
        for v in variants:
            await v.client.aclose()

    if shell == "async":
        asyncio.run(run_async())
        return out
    for v in variants:
        _sync_run(v, max(levels), max(levels) * 4)
    for c in levels:
        for r in range(rounds):
            for v in variants if r % 2 == 0 else variants[::-1]:
                print(f"  sync c={c} {v.name}", file=sys.stderr, flush=True)
                out.setdefault((c, v.name), []).append(
                    v.sample(lambda v=v, c=c: _sync_run(v, c, n), n))  # type: ignore[misc]
    for v in variants:
        v.client.close()
    return out


def _median(samples: list[Sample], key: str) -> float:
    return statistics.median(s[key] for s in samples)


def report(results: dict[tuple[str, int, int, str], list[Sample]]) -> str:
    rows = []
    for (shell, fleet, c, name), samples in results.items():
        ref = results.get((shell, fleet, c, "bare-spread"))
        ratio = (statistics.median(a["rps"] / b["rps"] for a, b in zip(samples, ref, strict=True))
                 if ref else float("nan"))
        rows.append((shell, fleet, c, name, round(_median(samples, "rps")), ratio,
                     _median(samples, "cpu_us"), _median(samples, "client_cpu_us"),
                     _median(samples, "p50_ms"), _median(samples, "p99_ms")))
    return table(rows, ("shell", "backends", "c", "client", "req/s", "vs spread",
                        "CPU us/req", "client CPU", "p50 ms", "p99 ms"))


def verdicts(results: dict[tuple[str, int, int, str], list[Sample]]) -> list[str]:
    """Each target, met or not, with the figure."""
    lines = []
    for (shell, fleet, c, name), samples in results.items():
        if name != "mesh":
            continue
        ref = results[(shell, fleet, c, "bare-spread")]
        ratio = statistics.median(a["rps"] / b["rps"] for a, b in zip(samples, ref, strict=True))
        want = 1.10 if (shell == "async" and c >= 64) else 1.0 if c == 16 else None
        if want is not None:
            lines.append(f"{shell} {fleet} backends c={c}: mesh/spread throughput "
                         f"{ratio:.2f} {'meets' if ratio >= want else 'MISSES'} >= {want:.2f}")
        for proxy in ("haproxy", "nginx"):
            other = results.get((shell, fleet, c, proxy))
            if other:
                mine, theirs = _median(samples, "cpu_us"), _median(other, "cpu_us")
                lines.append(f"{shell} c={c}: mesh CPU/request {mine:.0f} us "
                             f"{'below' if mine < theirs else 'NOT below'} {proxy}'s "
                             f"client+proxy {theirs:.0f} us")
    return lines


def plot(results: dict[tuple[str, int, int, str], list[Sample]], path: str) -> bool:
    """Throughput by concurrency per client (3 backends); False without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, shell in zip(axes, ("sync", "async"), strict=True):
        names = sorted({k[3] for k in results if k[0] == shell and k[1] == 3})
        for name in names:
            keys = sorted(k for k in results if k[:2] == (shell, 3) and k[3] == name)
            ax.plot([str(k[2]) for k in keys], [_median(results[k], "rps") for k in keys],
                    marker="o", label=name)
        ax.set_title(f"{shell}, 3 backends")
        ax.set_xlabel("concurrency")
    axes[0].set_ylabel("requests/s")
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(path)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=None, help="requests per sample")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--plot", default=None, help="write a PNG here (needs matplotlib)")
    args = parser.parse_args(argv)
    n = args.requests or (200 if args.quick else 640)
    rounds = args.rounds or (1 if args.quick else 3)
    levels = (1, 16) if args.quick else (1, 16, 64, 128)
    fleets = (3,) if args.quick else (3, 10)
    results: dict[tuple[str, int, int, str], list[Sample]] = {}
    # terminated: unwind, so the proxies and backends are stopped too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with ExitStack() as stack:
        backends = [stack.enter_context(FastServer(f"127.0.0.{i + 2}")) for i in range(max(fleets))]
        sidecars = {kind: stack.enter_context(Sidecar(kind, [b.address for b in backends[:3]]))
                    for kind in ("haproxy", "nginx") if Sidecar.available(kind)}
        for shell in ("sync", "async"):
            for fleet in fleets:
                print(f"{shell}, {fleet} backends ...", file=sys.stderr, flush=True)
                variants = _variants(shell, backends[:fleet], sidecars)
                got = _rounds(shell, variants, levels, n, rounds)
                results.update({(shell, fleet, c, name): s for (c, name), s in got.items()})
    load = os.getloadavg()
    print(f"{n} requests per sample, {rounds} rounds, load average "
          f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}, {os.cpu_count()} CPUs")
    print(report(results))
    for line in verdicts(results):
        print(line)
    if args.plot and not plot(results, args.plot):
        print("plot skipped: matplotlib is not installed (the demo extra)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
