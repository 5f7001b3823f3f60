"""Active health checks on static endpoints, through both shells: a failing endpoint is
skipped until it passes again."""

from __future__ import annotations

from typing import Any

import pytest

from meshclient.testing import LoopbackCluster
from tests.servers.helpers import backends_of, until, wait_until


def health_of(caller: Any, key: str) -> str:
    endpoints = caller.transport.snapshot()["services"]["users"]["endpoints"]
    return str(next(e["health"] for e in endpoints if e["endpoint"] == key))


@pytest.mark.slow
def test_failing_endpoint_is_skipped_until_it_passes(mesh, cluster: LoopbackCluster) -> None:
    caller = mesh(cluster.policy("users", health={"path": "/healthz", "interval": "100ms",
                                                  "timeout": "100ms", "unhealthy_after": 2,
                                                  "healthy_after": 2},
                                   balancer={"kind": "round-robin"},
                                   # health checks alone decide (no passive ejection)
                                   outlier={"consecutive_failures": 0},
                                   breaker={"failures": 10000}))
    assert backends_of(caller, 6) == {"backend-0", "backend-1", "backend-2"}
    cluster.set(1, status=503)
    # marked by the checks alone (2 rounds 100 ms apart), with no request to it meanwhile
    wait_until(lambda: health_of(caller, cluster[1].address) == "failing-health-check")
    for _ in range(10):  # skipped every time, not just sometimes
        r = caller.get("http://users/")
        assert r.status_code == 200 and r.json()["backend"] != "backend-1"
    cluster.heal()
    assert until(lambda: "backend-1" in backends_of(caller, 6), 3)
