"""The latency-tail and recovery cases of `python -m benchmarks.balance --case tail|recovery`.

**tail**: six loopback backends (~1 ms); one adds 200 ms to 20% of its answers. 5,000
requests at concurrency 8 (closed loop, async) through meshclient (`p2c-ewma`, and
`round-robin` as the floor) and through bare httpx via a local HAProxy `leastconn` and
nginx `least_conn`, on a quiet client and with a CPU-heavy neighbour process; then an open
loop at a fixed offered rate below saturation. Reported: the slow backend's share, p50,
p99, p99.9. Targets: slow share <= 1.5% quiet and <= 3% with the neighbour; open-loop
p50 within 10% of the best least-connections p50; p99 <= half of round robin's.

**recovery**: three backends, 40 requests/s; all answer 503 for 5 s, then all are
healthy again. With the default policy and with Envoy-style fixed 30 s ejection and
breakers, reported: the share of requests served, and each endpoint's share, per second
after recovery; the time until every endpoint carries at least half its fair share.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from typing import Any

import httpx

import meshclient
from meshclient.policy import Policy
from meshclient.testing import LoopbackCluster

from ._proxies import proxy

TAIL_BACKENDS, TAIL_SLOW, TAIL_RATIO, TAIL_MS, BASE_MS = 6, 2, 0.2, 200.0, 1.0
VARIANTS = ("p2c-ewma", "round-robin", "haproxy-leastconn", "nginx-least_conn")


def _burn(stop: Any) -> None:
    """The CPU-heavy neighbour: a busy loop until told to stop."""
    x = 0
    while not stop.is_set():
        for _ in range(10_000):
            x = (x * 31 + 7) % 1_000_003


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q / 100 * len(values)))] if values else float("nan")


def _client(variant: str, addresses: list[str], proxied: str | None) -> tuple[httpx.AsyncClient, str]:
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    if proxied is not None:
        return httpx.AsyncClient(limits=limits, timeout=5.0), f"http://{proxied}/"
    policy = Policy.from_dict({"services": {"bench": {
        "endpoints": addresses, "balancer": {"kind": variant}}}})
    transport = meshclient.AsyncMeshTransport(policy, limits=limits)
    return httpx.AsyncClient(transport=transport, timeout=5.0), "http://bench/"


async def _one(client: httpx.AsyncClient, url: str) -> tuple[float, str]:
    """One request: (latency, the backend that answered, or "failed")."""
    t = time.monotonic()
    try:
        r = await client.get(url)
        backend = r.json()["backend"] if r.status_code < 500 else "failed"
    except httpx.HTTPError:
        backend = "failed"
    return time.monotonic() - t, backend


async def _closed(client: httpx.AsyncClient, url: str, n: int, c: int) -> list[tuple[float, str]]:
    out: list[tuple[float, str]] = []
    left = iter(range(n))

    async def worker() -> None:
        for _ in left:
            out.append(await _one(client, url))

    await asyncio.gather(*(worker() for _ in range(c)))
    return out


async def _open(client: httpx.AsyncClient, url: str, n: int, rate: float) -> list[tuple[float, str]]:
    out: list[tuple[float, str]] = []
    start = time.monotonic()

    async def one() -> None:
        out.append(await _one(client, url))

    tasks = []
    for i in range(n):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one()))
    await asyncio.gather(*tasks)
    return out


async def _measure(variant: str, addresses: list[str], mode: str, n: int, c: int,
                   rate: float) -> dict[str, Any]:
    async def go(proxied: str | None) -> list[tuple[float, str]]:
        client, url = _client(variant, addresses, proxied)
        async with client:
            for _ in range(50):  # warm connections and estimates
                await client.get(url)
            if mode == "closed":
                return await _closed(client, url, n, c)
            return await _open(client, url, n, rate)

    if variant in ("haproxy-leastconn", "nginx-least_conn"):
        with proxy(variant, addresses) as (address, _pid):
            samples = await go(address)
    else:
        samples = await go(None)
    lat = [s for s, _ in samples]
    slow = sum(1 for _, b in samples if b == f"backend-{TAIL_SLOW}")
    failed = sum(1 for _, b in samples if b == "failed")
    return {"variant": variant, "failed": failed, "slow_share": slow / len(samples), "p50": _pct(lat, 50),
            "p99": _pct(lat, 99), "p999": _pct(lat, 99.9)}


def tail(n: int = 5000, c: int = 8, rate: float = 200.0, open_n: int = 2000) -> list[str]:
    """Run the tail case; the lines of its report."""
    lines = [f"tail case: {TAIL_BACKENDS} backends ~{BASE_MS:g} ms, backend-{TAIL_SLOW} adds "
             f"{TAIL_MS:g} ms to {TAIL_RATIO:.0%}; load average {os.getloadavg()[0]:.1f}",
             f"{'case':<22}{'variant':<20}{'slow share':>11}{'p50 ms':>9}{'p99 ms':>9}"
             f"{'p99.9 ms':>10}"]
    with LoopbackCluster(TAIL_BACKENDS) as cluster:
        for i in range(TAIL_BACKENDS):
            cluster.set(i, latency_ms=BASE_MS)
        cluster.set(TAIL_SLOW, tail_ratio=TAIL_RATIO, tail_ms=TAIL_MS)
        runs = [("closed c=8 quiet", "closed", False), ("closed c=8 neighbour", "closed", True),
                (f"open {rate:g}/s quiet", "open", False)]
        for label, mode, busy in runs:
            stop = multiprocessing.Event()
            burner = multiprocessing.Process(target=_burn, args=(stop,), daemon=True)
            if busy:
                burner.start()
            try:
                for variant in VARIANTS:
                    r = asyncio.run(_measure(variant, cluster.addresses, mode,
                                             n if mode == "closed" else open_n, c, rate))
                    lines.append(f"{label:<22}{variant:<20}{r['slow_share']:>10.2%} "
                                 f"{r['p50'] * 1e3:>8.1f} {r['p99'] * 1e3:>8.1f} "
                                 f"{r['p999'] * 1e3:>9.1f}"
                                 + (f"  ({r['failed']} failed)" if r["failed"] else ""))
            finally:
                if busy:
                    stop.set()
                    burner.join(10)
    return lines


POLICIES: dict[str, dict[str, Any]] = {
    "default": {},
    "fixed 30 s (Envoy-style)": {
        "outlier": {"ejection": "linear", "base_ejection": "30s", "max_ejection": "300s"},
        "breaker": {"reset": "30s", "reset_min": "30s"}},
}


async def _recovery_run(addresses: list[str], sections: dict[str, Any], cluster: LoopbackCluster,
                        rate: float, before: float, outage: float, after: float
                        ) -> list[tuple[float, str | None]]:
    policy = Policy.from_dict({"services": {"bench": {"endpoints": addresses, **sections}}})
    client = httpx.AsyncClient(transport=meshclient.AsyncMeshTransport(policy), timeout=5.0)
    out: list[tuple[float, str | None]] = []
    start = time.monotonic()
    total = int((before + outage + after) * rate)
    phase = 0
    async with client:
        async def one(t: float) -> None:
            try:
                r = await client.get("http://bench/")
                out.append((t, r.json()["backend"] if r.status_code < 500 else None))
            except httpx.HTTPError:
                out.append((t, None))

        tasks = []
        for i in range(total):
            t = i / rate
            if phase == 0 and t >= before:
                for j in range(len(addresses)):
                    cluster.set(j, status=503)
                phase = 1
            elif phase == 1 and t >= before + outage:
                cluster.heal()
                phase = 2
            delay = start + t - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(t - before - outage)))
        await asyncio.gather(*tasks)
    return out


def recovery(rate: float = 40.0, before: float = 3.0, outage: float = 5.0,
             after: float = 15.0) -> list[str]:
    lines = [f"recovery case: 3 backends, {rate:g} requests/s, all 503 for {outage:g} s; "
             f"load average {os.getloadavg()[0]:.1f}"]
    with LoopbackCluster(3) as cluster:
        for name, sections in POLICIES.items():
            cluster.heal()
            out = asyncio.run(_recovery_run(cluster.addresses, sections, cluster, rate, before,
                                            outage, after))
            served, fair_at = [], None
            for s in range(int(after)):
                window = [b for t, b in out if s <= t < s + 1]
                served.append(sum(b is not None for b in window) / max(1, len(window)))
                shares = [sum(b == f"backend-{j}" for b in window) / max(1, len(window))
                          for j in range(3)]
                if fair_at is None and min(shares) >= 1 / 6:
                    fair_at = s + 1
            lines.append(f"  {name:<26} served per second after recovery: "
                         + " ".join(f"{x:.0%}" for x in served[:12]))
            lines.append(f"  {'':<26} every endpoint >= half its fair share within: "
                         + (f"{fair_at} s" if fair_at is not None else f"> {after:g} s"))
    return lines
