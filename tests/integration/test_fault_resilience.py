"""Injected faults exercise retries and breakers like real ones (needs the resilience
package of issue-4; skipped on a tree without it)."""

from __future__ import annotations

import httpx
import pytest

from meshclient.policy import Policy
from meshclient.testing import LoopbackCluster

pytest.importorskip("meshclient.resilience.breaker")


@pytest.mark.slow
def test_injected_503s_are_retried(mesh, cluster: LoopbackCluster) -> None:
    caller = mesh(Policy.from_dict({"services": {"users": {
        "endpoints": cluster.addresses,
        "retry": {"attempts": 3, "budget": {"min_per_second": 1000}},
        # retries alone: no breaker or ejection taking endpoints away mid-test
        "breaker": {"failures": 10000}, "outlier": {"consecutive_failures": 0},
        "fault": {"abort": {"percent": 30, "status": 503}}}}}))
    n = 200
    failed = sum(caller.get("http://users/").status_code == 503 for _ in range(n))
    assert failed < 0.1 * n, failed  # 30% per attempt, about 2.7% after three attempts
    assert sum(cluster.hits()) == n - failed  # aborted attempts never reached a backend


def test_injected_connect_errors_open_the_breaker(mesh, cluster: LoopbackCluster) -> None:
    from meshclient.errors import CircuitOpen

    caller = mesh(Policy.from_dict({"services": {"users": {
        "endpoints": [cluster[0].address], "retry": {"attempts": 1},
        "breaker": {"failures": 3, "reset": "30s"},
        "fault": {"abort": {"percent": 100, "error": "connect"}}}}}))
    errors = []
    for _ in range(6):
        with pytest.raises(httpx.ConnectError) as info:
            caller.get("http://users/")
        errors.append(info.value)
    assert any(isinstance(e, CircuitOpen) for e in errors), errors
    assert cluster[0].hits == 0
