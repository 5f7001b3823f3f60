"""File-based SRV-style priority groups through both shells: when the first group fails,
callers keep getting answers from the next group (retries fall through to it at once, and
first attempts follow once the failing endpoints are ejected), and traffic returns when the
first group recovers."""

from __future__ import annotations

import json
import os
from pathlib import Path

from meshclient import Policy
from meshclient.testing import LoopbackCluster
from tests.servers.helpers import until


def write(path: Path, data: object) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def policy(path: Path, consecutive_failures: int) -> Policy:
    return Policy.from_dict({"services": {"users": {
        "discovery": f"file://{path}",
        "retry": {"attempts": 3, "backoff": {"base": "1ms", "max": "2ms"},
                    "budget": {"ratio": 1.0, "min_per_second": 1000}},
        "breaker": {"failures": 1000},
        "outlier": {"consecutive_failures": consecutive_failures, "base_ejection": "300ms",
                    "max_ejected_percent": 100}}}})


def test_retries_fall_through_to_the_next_priority_group(mesh, tmp_path: Path,
                                                         cluster: LoopbackCluster) -> None:
    """Both endpoints of priority 0 answer 503 and are never ejected: every call still
    succeeds, on its third attempt, from priority 1."""
    path = tmp_path / "users.json"
    write(path, [{"address": cluster[0].address, "priority": 0},
                 {"address": cluster[1].address, "priority": 0},
                 {"address": cluster[2].address, "priority": 1}])
    caller = mesh(policy(path, consecutive_failures=0))
    assert caller.get("http://users/").json()["backend"] in {"backend-0", "backend-1"}
    cluster.set(0, status=503)
    cluster.set(1, status=503)
    for _ in range(10):
        r = caller.get("http://users/")
        assert r.status_code == 200 and r.json()["backend"] == "backend-2"
    hits = cluster.hits()
    assert hits[0] > 0 and hits[1] > 0  # the first group was still tried first


def test_failover_and_return_with_ejection(mesh, tmp_path: Path,
                                           cluster: LoopbackCluster) -> None:
    """Once the failing group is ejected, first attempts go to priority 1 directly; when
    it heals, its probe brings it back and traffic returns to priority 0."""
    path = tmp_path / "users.json"
    write(path, [{"address": cluster[0].address, "priority": 0},
                 {"address": cluster[1].address, "priority": 1}])
    caller = mesh(policy(path, consecutive_failures=2))
    cluster.set(0, status=503)
    for _ in range(6):
        assert caller.get("http://users/").status_code == 200
    assert caller.transport.registry.snapshot()["users"]["priority"] == 1
    before = cluster.hits()[0]
    for _ in range(10):
        assert caller.get("http://users/").json()["backend"] == "backend-1"
    assert cluster.hits()[0] == before  # no first attempt spent on the ejected group
    cluster.heal()
    assert until(lambda: caller.get("http://users/").json()["backend"] == "backend-0", 10,
                 every_s=0.05)
