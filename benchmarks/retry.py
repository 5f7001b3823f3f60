"""Retry benchmark: what retries cost a failing service, in one run.

`python -m benchmarks.retry` (from the repository root) runs three scenarios on loopback
backends and prints the figures and ratios:

(a) full outage (every endpoint answers 503) at a fixed offered load: backend hits per
    request for meshclient (retry budget) and for httpx + tenacity with 3 attempts;
    the budget's bound is 1 + ratio + min_per_second / offered rate.
(b) one of three endpoints refusing connections: failures seen by the caller for GET.
(c) a chain client -> a -> b -> c, each layer allowed 4 attempts, c answering 503:
    load on c per client request, naive (every layer retries, no budget: up to 4^3 = 64)
    against one-layer retries under the budget.

The budget uses ttl = 1 s (Finagle's lower bound) so a run of a few seconds is in steady
state; ratio 0.2 and min_per_second 10 are the defaults.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable
from typing import Any

import httpx
import tenacity

import meshclient
from meshclient.policy import Policy
from meshclient.resilience.budget import reset_budgets
from meshclient.testing import LoopbackCluster
from tests.servers.hop import Hop

from ._common import run_threads

BUDGET = {"ratio": 0.2, "min_per_second": 10, "ttl": "1s"}
NO_BREAKER = {"failures": 10_000}  # (a) and (c) measure retries, not fail-fast
FAST_BACKOFF = {"base": "1ms", "max": "5ms"}
last_elapsed = 0.0  # how long the last offered_load took (it falls behind when overloaded)


def offered_load(send: Callable[[int], object], rate: float, seconds: float,
                 workers: int = 8) -> int:
    """Call `send(i)` at `rate` per second for `seconds` (open loop, `workers` threads);
    returns how many calls were made."""
    total = int(rate * seconds)
    start = time.monotonic()

    def worker(k: int) -> None:
        for i in range(k, total, workers):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            send(i)

    run_threads(worker, workers)
    global last_elapsed
    last_elapsed = time.monotonic() - start
    return total


def _quiet(fn: Callable[[str], Any], url: str) -> None:
    with contextlib.suppress(httpx.HTTPError):  # CircuitOpen once the breakers open
        fn(url)


def _last_result(state: tenacity.RetryCallState) -> Any:
    assert state.outcome is not None
    return state.outcome.result()


def scenario_a(rate: float, seconds: float) -> dict[str, float]:
    with LoopbackCluster(3) as cluster:
        for b in cluster.backends:
            b.set(status=503)
        pol = cluster.policy("users", retry={"attempts": 3, "budget": BUDGET,
                                             "backoff": FAST_BACKOFF}, breaker=NO_BREAKER)
        with meshclient.Client(transport=meshclient.MeshTransport(pol)) as client:
            n = offered_load(lambda i: client.get("http://users/a"), rate, seconds)
        mesh = sum(cluster.hits()) / n
        achieved = n / last_elapsed
        cluster.reset_stats()
        reset_budgets()
        pol = cluster.policy("users", retry={"attempts": 3, "budget": BUDGET,
                                             "backoff": FAST_BACKOFF})
        with meshclient.Client(transport=meshclient.MeshTransport(pol)) as client:
            n = offered_load(lambda i: _quiet(client.get, "http://users/a"), rate, seconds)
        with_breakers = sum(cluster.hits()) / n
        cluster.reset_stats()

        urls = [b.url for b in cluster.backends]

        @tenacity.retry(stop=tenacity.stop_after_attempt(3),
                        wait=tenacity.wait_random_exponential(multiplier=0.001, max=0.005),
                        retry=tenacity.retry_if_result(lambda r: r.status_code >= 500),
                        retry_error_callback=_last_result)
        def naive(client: httpx.Client, i: int) -> httpx.Response:
            return client.get(urls[i % 3] + "/a")

        with httpx.Client() as plain:
            n2 = offered_load(lambda i: naive(plain, i), rate, seconds)
        return {"rate": rate, "requests": n, "meshclient": mesh, "breakers": with_breakers,
                "bound": 1 + 0.2 + 10 / rate, "achieved_bound": 1 + 0.2 + 10 / achieved,
                "naive": sum(cluster.hits()) / n2}


def scenario_b(requests: int) -> dict[str, float]:
    with LoopbackCluster(3) as cluster:
        cluster.stop(1)
        out: dict[str, float] = {"requests": requests}
        for label, attempts in (("meshclient", 3), ("no_retry", 1)):
            reset_budgets()
            pol = cluster.policy("users", retry={"attempts": attempts, "budget": BUDGET})
            failures = 0
            with meshclient.Client(transport=meshclient.MeshTransport(pol)) as client:
                for _ in range(requests):
                    try:
                        if client.get("http://users/a").status_code != 200:
                            failures += 1
                    except httpx.HTTPError:
                        failures += 1
            out[label] = failures
        return out


def _chain(one_layer: bool, budget: dict[str, Any], rate: float, seconds: float,
           sequential: int | None) -> float:
    reset_budgets()
    retry = {"attempts": 4, "one_layer": one_layer, "budget": budget, "backoff": FAST_BACKOFF}
    with LoopbackCluster(1, first=40) as leaf:
        leaf.set(0, status=503)
        c_policy = Policy.from_dict({"services": {"c": leaf.service(retry=retry,
                                                                    breaker=NO_BREAKER)}})
        with Hop("127.0.0.41", "c", c_policy) as b:
            b_policy = Policy.from_dict({"services": {"b": {"endpoints": [b.address],
                                                            "retry": retry,
                                                            "breaker": NO_BREAKER}}})
            with Hop("127.0.0.42", "b", b_policy) as a:
                a_policy = Policy.from_dict({"services": {"a": {"endpoints": [a.address],
                                                                "retry": retry,
                                                                "breaker": NO_BREAKER}}})
                with meshclient.Client(transport=meshclient.MeshTransport(a_policy)) as client:
                    if sequential is not None:
                        for _ in range(sequential):
                            client.get("http://a/x")
                        n = sequential
                    else:
                        n = offered_load(lambda i: client.get("http://a/x"), rate, seconds,
                                         workers=16)
        return leaf.hits()[0] / n


def scenario_c(rate: float, seconds: float) -> dict[str, float]:
    infinite = {"ratio": 1, "min_per_second": 1_000_000, "ttl": "1s"}
    return {"rate": rate,
            "naive": _chain(False, infinite, rate, seconds, sequential=10),
            "one_layer_no_budget": _chain(True, infinite, rate, seconds, sequential=20),
            "one_layer_budget": _chain(True, BUDGET, rate, seconds, sequential=None),
            "achieved": rate * seconds / last_elapsed}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="offered requests/s")
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of (a) and (c)")
    parser.add_argument("--quick", action="store_true", help="a short smoke run (1 s)")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds = min(args.seconds, 1.0)

    a = scenario_a(args.rate, args.seconds)
    print(f"(a) full outage, {a['requests']:.0f} requests at {a['rate']:.0f}/s: backend hits "
          f"per request: meshclient {a['meshclient']:.2f} (bound {a['bound']:.2f}; "
          f"{a['achieved_bound']:.2f} at the rate achieved), "
          f"httpx+tenacity {a['naive']:.2f}; ratio naive/meshclient "
          f"{a['naive'] / a['meshclient']:.2f}x; with breakers on (default 5 failures, 30 s) "
          f"{a['breakers']:.2f}")
    b = scenario_b(300)
    print(f"(b) 1 of 3 endpoints refusing, {b['requests']:.0f} GETs: failures meshclient "
          f"{b['meshclient']:.0f}, without retries {b['no_retry']:.0f}")
    c = scenario_c(args.rate, args.seconds)
    print(f"(c) chain client->a->b->c, 4 attempts per layer: load on c per request: naive "
          f"{c['naive']:.2f}, one-layer without budget {c['one_layer_no_budget']:.2f}, "
          f"one-layer with budget {c['one_layer_budget']:.2f} at {c['rate']:.0f}/s offered "
          f"({c['achieved']:.0f}/s achieved; budget bound {1.2 + 10 / c['achieved']:.2f}); "
          f"ratio naive/one-layer {c['naive'] / c['one_layer_budget']:.1f}x")


if __name__ == "__main__":
    main()
