"""Balancing benchmark: which picker keeps latency low when one backend turns slow?

Six real loopback backends answer in ~10 ms; one of them answers in 500 ms for the middle
third of each run. A fixed offered load (open loop: requests start on schedule whether or
not earlier ones finished) goes through `AsyncMeshTransport` with each `balancer.kind`,
and through a hand-built round-robin `httpx.AsyncClient` as the baseline; every request
has a 1 s timeout. For each it reports the success rate, p50/p99/p99.9 latency, the
healthy-phase p99.9, and the slow backend's share of requests while it was slow.

The backends run in a child process, so their threads do not share the client's GIL.

    python -m benchmarks.balance                 # about 2 minutes
    python -m benchmarks.balance --case tail     # latency tail vs HAProxy and nginx
    python -m benchmarks.balance --case recovery # time to fair share after an outage
    python -m benchmarks.balance --duration 30 --rate 300

Targets: p2c-ewma's p99 at least 5x lower than round robin's; its p99.9 within
1.5x of the same run's healthy phase; under 2% of requests to the slow backend while slow.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing
import multiprocessing.connection
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

import meshclient
from meshclient.policy import Policy

VARIANTS = ("p2c-ewma", "p2c-least-request", "round-robin", "random", "httpx-round-robin")
BACKENDS = 6
SLOW = 2  # index of the backend that turns slow
FAST_MS, SLOW_MS, TIMEOUT_S = 10.0, 500.0, 1.0


def _serve(conn: multiprocessing.connection.Connection) -> None:
    """Child process: run the backends, obey ("set", i, latency_ms) / ("hits",) / ("stop",)."""
    from meshclient.testing import LoopbackCluster

    with LoopbackCluster(BACKENDS) as cluster:
        for i in range(BACKENDS):
            cluster.set(i, latency_ms=FAST_MS, body_size=64)
        conn.send(cluster.addresses)
        while True:
            msg = conn.recv()
            if msg[0] == "set":
                cluster.set(msg[1], latency_ms=msg[2])
                conn.send(None)
            elif msg[0] == "hits":
                conn.send(cluster.hits())
            else:
                break


class Cluster:
    def __init__(self) -> None:
        self._conn, child = multiprocessing.Pipe()
        self._proc = multiprocessing.Process(target=_serve, args=(child,), daemon=True)
        self._proc.start()
        self.addresses: list[str] = self._conn.recv()

    def call(self, *msg: Any) -> Any:
        self._conn.send(msg)
        return self._conn.recv()

    def close(self) -> None:
        self._conn.send(("stop",))
        self._proc.join(10)


@dataclass
class Sample:
    sent: float  # when the request really started, seconds since the run started
    latency: float
    ok: bool


@dataclass
class Result:
    variant: str
    samples: list[Sample]
    slow_share: float
    duration: float
    lag: float

    def _latencies(self, lo: float = 0.0, hi: float = float("inf")) -> list[float]:
        return sorted(s.latency for s in self.samples if lo <= s.sent < hi)

    @staticmethod
    def _pct(values: list[float], q: float) -> float:
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(q / 100 * len(values)))]

    def pct(self, q: float) -> float:
        return self._pct(self._latencies(), q)

    def healthy_pct(self, q: float) -> float:
        """Over the requests that finished before the slowdown began."""
        edge = self.duration / 3
        return self._pct(sorted(s.latency for s in self.samples
                                if s.sent + s.latency < edge), q)

    @property
    def success(self) -> float:
        return sum(s.ok for s in self.samples) / max(len(self.samples), 1)


async def _drive(client: httpx.AsyncClient, urls: itertools.cycle[str] | None, rate: float,
                 duration: float, cluster: Cluster) -> tuple[list[Sample], float, float]:
    samples: list[Sample] = []
    start = time.monotonic()

    async def one() -> None:
        url = next(urls) if urls is not None else "http://bench/"
        t = time.monotonic()
        try:
            r = await asyncio.wait_for(client.get(url), TIMEOUT_S)  # a deadline for the
            ok = r.status_code < 500  # whole call: httpx's timeout is per operation
        except (httpx.HTTPError, asyncio.TimeoutError):
            ok = False
        samples.append(Sample(t - start, min(time.monotonic() - t, TIMEOUT_S), ok))

    tasks = []
    total = int(rate * duration)
    hits: list[list[int]] = []
    phase = 0
    lag = 0.0  # how far behind schedule the generator fell: a loaded client shows here
    for i in range(total):
        due = start + i / rate
        if phase < 2 and due - start >= duration * (phase + 1) / 3:
            hits.append(cluster.call("hits"))
            cluster.call("set", SLOW, SLOW_MS if phase == 0 else FAST_MS)
            phase += 1
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            lag = max(lag, -delay)
        tasks.append(asyncio.ensure_future(one()))
    await asyncio.gather(*tasks)
    if len(hits) < 2:
        hits.append(cluster.call("hits"))
        cluster.call("set", SLOW, FAST_MS)
    during = [b - a for a, b in zip(hits[0], hits[1], strict=True)]
    return samples, during[SLOW] / max(sum(during), 1), lag


async def run_variant(variant: str, cluster: Cluster, rate: float,
                      duration: float) -> Result:
    cluster.call("set", SLOW, FAST_MS)
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=100)
    if variant == "httpx-round-robin":
        urls = itertools.cycle([f"http://{a}/" for a in cluster.addresses])
        client = httpx.AsyncClient(timeout=TIMEOUT_S, limits=limits)
        cycle: itertools.cycle[str] | None = urls
    else:
        policy = Policy.from_dict({"services": {"bench": {
            "endpoints": cluster.addresses, "balancer": {"kind": variant},
            "timeout": {"total": f"{TIMEOUT_S}s"}}}})
        transport = meshclient.AsyncMeshTransport(policy, limits=limits)
        client = httpx.AsyncClient(transport=transport, timeout=TIMEOUT_S)
        cycle = None
    async with client:
        for _ in range(3 * BACKENDS):  # warm connections (and the balancer's estimates)
            await client.get(next(cycle) if cycle is not None else "http://bench/")
        samples, share, lag = await _drive(client, cycle, rate, duration, cluster)
    return Result(variant, samples, share, duration, lag)


def table(results: list[Result]) -> str:
    lines = ["| client | success | p50 ms | p99 ms | p99.9 ms | healthy-phase p99.9 ms | "
             "slow backend share while slow |", "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(
            f"| {r.variant} | {r.success:.2%} | {r.pct(50) * 1000:.1f} | "
            f"{r.pct(99) * 1000:.1f} | {r.pct(99.9) * 1000:.1f} | "
            f"{r.healthy_pct(99.9) * 1000:.1f} | {r.slow_share:.2%} |")
    return "\n".join(lines)


def verdict(results: list[Result]) -> list[str]:
    by = {r.variant: r for r in results}
    ewma, rr = by.get("p2c-ewma"), by.get("round-robin")
    if ewma is None or rr is None:
        return []
    ratio = rr.pct(99) / ewma.pct(99)
    tail = ewma.pct(99.9) / ewma.healthy_pct(99.9)
    return [
        f"p99 round-robin / p2c-ewma = {ratio:.1f}x (target >= 5x): "
        f"{'met' if ratio >= 5 else 'NOT met'}",
        f"p2c-ewma p99.9 / its healthy-phase p99.9 = {tail:.2f}x (target <= 1.5x): "
        f"{'met' if tail <= 1.5 else 'NOT met'}",
        f"p2c-ewma slow backend share while slow = {ewma.slow_share:.2%} (target < 2%): "
        f"{'met' if ewma.slow_share < 0.02 else 'NOT met'}",
    ]


def plot(results: list[Result], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(len(results), 1, figsize=(9, 2.1 * len(results)), sharex=True,
                             sharey=True)
    for ax, r in zip(axes, results, strict=True):
        ax.axvspan(r.duration / 3, 2 * r.duration / 3, color="0.92", lw=0)
        ok = [s for s in r.samples if s.ok]
        bad = [s for s in r.samples if not s.ok]
        ax.scatter([s.sent for s in ok], [s.latency * 1000 for s in ok], s=2, alpha=0.5)
        ax.scatter([s.sent for s in bad], [s.latency * 1000 for s in bad], s=4, c="red")
        ax.set_yscale("log")
        ax.set_ylabel("ms")
        ax.set_title(f"{r.variant}: p99 {r.pct(99) * 1000:.0f} ms, slow share "
                     f"{r.slow_share:.1%}", fontsize=9, loc="left")
    axes[-1].set_xlabel("seconds into the run (grey: one backend at 500 ms)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.balance", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=20.0,
                        help="seconds per client (default 20; five clients run)")
    parser.add_argument("--rate", type=float, default=100.0,
                        help="offered requests per second (default 100)")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated subset of {', '.join(VARIANTS)}")
    parser.add_argument("--table", type=Path, default=None,
                        help="write the Markdown table here (default docs/img/balance.md; "
                             "none with --quick)")
    parser.add_argument("--plot", type=Path, default=None,
                        help="write the latency-over-time PNG here, needs matplotlib "
                             "(default docs/img/balance.png; none with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="a short smoke run (3 s per client), writing no files")
    parser.add_argument("--case", choices=("slow", "tail", "recovery"), default="slow",
                        help="slow: one backend turns slow (this module); tail: one backend's "
                        "latency tail against HAProxy and nginx; recovery: time to fair share "
                        "after a total outage (`balance_tail.py`)")
    args = parser.parse_args(argv)
    if args.case != "slow":
        from . import balance_tail

        if args.case == "tail":
            lines = (balance_tail.tail(n=500, open_n=200) if args.quick
                     else balance_tail.tail())
        else:
            lines = (balance_tail.recovery(before=1, after=4) if args.quick
                     else balance_tail.recovery())
        print("\n".join(lines))
        return
    if args.quick:
        args.duration = min(args.duration, 3.0)
    else:
        args.table = args.table or Path("docs/img/balance.md")
        args.plot = args.plot or Path("docs/img/balance.png")
    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants: {unknown}")
    cluster = Cluster()
    try:
        results = []
        for variant in variants:
            print(f"running {variant} for {args.duration:g}s at {args.rate:g} rps ...",
                  flush=True)
            result = asyncio.run(run_variant(variant, cluster, args.rate, args.duration))
            results.append(result)
            print(f"  done; the load generator fell at most {result.lag * 1000:.0f} ms "
                  "behind schedule", flush=True)
    finally:
        cluster.close()
    text = table(results)
    lines = verdict(results)
    print()
    print(text)
    print()
    for line in lines:
        print(line)
    header = (f"{args.rate:g} requests/s for {args.duration:g}s per client, {BACKENDS} "
              f"backends at {FAST_MS:g} ms, backend {SLOW} at {SLOW_MS:g} ms in the middle "
              f"third, {TIMEOUT_S:g}s timeout.\n\n")
    if args.table is not None:
        args.table.parent.mkdir(parents=True, exist_ok=True)
        args.table.write_text(header + text + "\n\n" + "\n".join(f"- {x}" for x in lines)
                              + "\n")
        print(f"\ntable: {args.table}")
    if args.plot is not None and plot(results, args.plot):
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
