"""One-layer retries across real hops: client -> a (meshclient inside) -> c (all 503), and
client -> b -> c -> leaf with b, c and leaf as real processes."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from meshclient.context import RETRIES_SPENT_HEADER
from meshclient.policy import Policy
from meshclient.policy._model import BudgetPolicy
from meshclient.testing import LoopbackCluster
from tests.servers.caller import Caller
from tests.servers.chain import BUDGET_TTL_S, ChainService
from tests.servers.hop import Hop


def retry(one_layer: bool) -> dict[str, Any]:
    return {"attempts": 3, "one_layer": one_layer, "backoff": {"base": "1ms", "max": "2ms"}}


@pytest.mark.parametrize("one_layer", [True, False])
def test_only_one_layer_retries(mesh, one_layer: bool) -> None:
    with LoopbackCluster(2, first=20) as leaf:
        for b in leaf.backends:
            b.set(status=503)
        inner = Policy.from_dict({"services": {"c": leaf.service(retry=retry(one_layer))}})
        with Hop("127.0.0.30", "c", inner) as a, Hop("127.0.0.31", "c", inner) as a2:
            outer = Policy.from_dict({"services": {"a": {"endpoints": [a.address, a2.address],
                                                         "retry": retry(one_layer)}}})
            caller = mesh(outer)
            r = caller.get("http://a/x")
            assert r.status_code == 503
            hops = a.hits + a2.hits
            if one_layer:
                assert (hops, sum(leaf.hits())) == (1, 3)
                # the hop forwards c's 3 attempts; the caller's own 1 does not lower it
                assert r.headers[RETRIES_SPENT_HEADER] == "3"
            else:
                assert (hops, sum(leaf.hits())) == (3, 9)


# client -> b -> c -> leaf, each service its own process; leaf answers 503, b and c call on
# through the mesh with 3 attempts (breakers and ejection off). Only c, the layer next to
# the failure, retries, within its budget: b and the client see marked answers.
N_REQUESTS = 40
RATE = 20.0  # top-level requests per second


@pytest.mark.parametrize(("kind", "shell"), [("asgi", "async"), ("wsgi", "sync"),
                                             ("handler", "sync")])
def test_bottom_service_load_bounded_by_budget_across_real_processes(kind: str,
                                                                     shell: str) -> None:
    with ChainService("leaf", "127.0.0.41") as leaf, \
            ChainService(kind, "127.0.0.42", leaf.address) as c, \
            ChainService(kind, "127.0.0.43", c.address) as b:
        caller = Caller(shell, Policy.from_dict({"services": {"b": {
            "endpoints": [b.address], "retry": {"attempts": 3},
            "breaker": {"failures": 10_000}, "outlier": {"consecutive_failures": 0}}}}))
        try:
            start = time.monotonic()
            for i in range(N_REQUESTS):  # paced at RATE, never faster
                pause = start + i / RATE - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                r = caller.get("http://b/x")
                assert r.status_code == 503
                assert int(r.headers[RETRIES_SPENT_HEADER]) >= 1
            elapsed = time.monotonic() - start
        finally:
            caller.close()
        assert (b.hits(), c.hits()) == (N_REQUESTS, N_REQUESTS)  # nobody above c retried
        budget = BudgetPolicy()
        # c's retries: `ratio` of its requests plus the reserve of `min_per_second * ttl`
        # in each ttl window the run touched (at 20/s in the steady state this is
        # 1 + 0.2 + 10/20 = 1.7 leaf requests per top-level request).
        windows = math.ceil(elapsed / BUDGET_TTL_S) + 1
        bound = N_REQUESTS * (1 + budget.ratio) + budget.min_per_second * BUDGET_TTL_S * windows
        leaf_hits = leaf.hits()
        assert N_REQUESTS < leaf_hits <= bound, (leaf_hits, bound, elapsed)
