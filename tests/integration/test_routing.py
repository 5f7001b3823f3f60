"""Routes, splits, faults and mirroring against real loopback backends, through both shells.

Three services on three backends: `users` (backend-0), `users-v2` (backend-1) and
`shadow` (backend-2); routes on `users` send some requests to `users-v2`.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from meshclient.context import MIRROR_HEADER
from meshclient.policy import Policy
from meshclient.routing import FAULT_HEADER
from meshclient.testing import LoopbackCluster
from tests.servers.helpers import wait_until


def policy(cluster: LoopbackCluster, **users: Any) -> Policy:
    users.setdefault("retry", {"attempts": 1})  # counts stay exact once retries land
    # injected failures must not open breakers or eject the single endpoint mid-count
    users.setdefault("breaker", {"failures": 10000})
    users.setdefault("outlier", {"consecutive_failures": 0})
    return Policy.from_dict({"services": {
        "users": {"endpoints": [cluster[0].address], **users},
        "users-v2": {"endpoints": [cluster[1].address], "retry": {"attempts": 1}},
        "shadow": {"endpoints": [cluster[2].address]},
    }})


def to_v2(match: dict[str, Any]) -> dict[str, Any]:
    return {"match": match, "to": [{"service": "users-v2", "weight": 1}]}


MATCH_CASES = [
    ({"method": ["POST"]}, {"method": "POST"}, {"method": "GET"}),
    ({"path": {"exact": "/exact"}}, {"url": "/exact"}, {"url": "/exact/more"}),
    ({"path": {"prefix": "/beta/"}}, {"url": "/beta/x?q=1"}, {"url": "/betax"}),
    ({"path": {"regex": "/items/[0-9]+"}}, {"url": "/items/42?x=y"}, {"url": "/items/42/x"}),
    ({"headers": {"X-Env": {"exact": "staging"}}}, {"headers": {"x-env": "staging"}},
     {"headers": {"x-env": "prod"}}),
    ({"headers": {"x-user": {"regex": "u-1[0-9]*"}}}, {"headers": {"x-user": "u-12"}},
     {"headers": {"x-user": "u-2"}}),
    ({"headers": {"x-canary": {"present": True}}}, {"headers": {"x-canary": ""}}, {}),
    ({"headers": {"x-old": {"present": False}}}, {}, {"headers": {"x-old": "1"}}),
    ({"query": {"flag": {"exact": "on"}}}, {"url": "/q?flag=on"}, {"url": "/q?flag=off"}),
    ({"query": {"debug": {"present": True}}}, {"url": "/q?debug="}, {"url": "/q?debugx=1"}),
]


@pytest.mark.slow
@pytest.mark.parametrize(("match", "hit", "miss"), MATCH_CASES,
                         ids=[str(next(iter(c[0].values()))) for c in MATCH_CASES])
def test_each_match_kind(mesh, cluster: LoopbackCluster, match: dict[str, Any],
                         hit: dict[str, Any], miss: dict[str, Any]) -> None:
    caller = mesh(policy(cluster, routes=[to_v2(match)]))

    def backend(req: dict[str, Any]) -> str:
        r = caller.request(req.get("method", "GET"), "http://users" + req.get("url", "/"),
                           headers=req.get("headers"))
        assert r.status_code == 200
        assert r.json()["headers"]["Host"] == "users"  # the logical name is kept
        return str(r.json()["backend"])

    assert backend(hit) == "backend-1"
    assert backend(miss) == "backend-0"


def test_first_match_wins_and_no_match_means_the_service(mesh, cluster) -> None:
    routes = [
        {"match": {"path": {"prefix": "/a"}}, "to": [{"service": "shadow", "weight": 1}]},
        to_v2({"path": {"prefix": "/a"}}),
        to_v2({"path": {"prefix": "/b"}}),
    ]
    caller = mesh(policy(cluster, routes=routes))
    assert caller.get("http://users/a").json()["backend"] == "backend-2"
    assert caller.get("http://users/b").json()["backend"] == "backend-1"
    assert caller.get("http://users/c").json()["backend"] == "backend-0"


@pytest.mark.slow
def test_weighted_split_within_bounds(mesh, cluster) -> None:
    caller = mesh(policy(cluster, routes=[{"to": [{"service": "users", "weight": 80},
                                                  {"service": "users-v2", "weight": 20}]}]))
    n = 400
    for _ in range(n):
        assert caller.get("http://users/").status_code == 200
    share = cluster[1].hits / n
    assert cluster[0].hits + cluster[1].hits == n
    assert 0.12 < share < 0.28, share  # 20% ± 4 standard deviations


def test_blue_green_switch_is_total(mesh, cluster) -> None:
    caller = mesh(policy(cluster, routes=[{"to": [{"service": "users", "weight": 0},
                                                  {"service": "users-v2", "weight": 100}]}]))
    for _ in range(30):
        caller.get("http://users/")
    assert cluster.hits()[:2] == [0, 30]


@pytest.mark.slow
def test_sticky_ab_by_header(mesh, cluster) -> None:
    caller = mesh(policy(cluster, routes=[{"hash_on": "x-user",
                                           "to": [{"service": "users", "weight": 50},
                                                  {"service": "users-v2", "weight": 50}]}]))
    sides: dict[str, set[str]] = {}
    for _round in range(3):
        for user in range(40):
            r = caller.get("http://users/", headers={"x-user": f"user-{user}"})
            sides.setdefault(f"user-{user}", set()).add(r.json()["backend"])
    assert all(len(s) == 1 for s in sides.values()), sides
    firsts = [next(iter(s)) for s in sides.values()]
    assert 8 <= firsts.count("backend-1") <= 32  # both sides get users


@pytest.mark.slow
def test_fault_delay_percentage(mesh, cluster) -> None:
    # 150 ms: a request that is not delayed stays well under it even on a loaded machine
    fault = {"delay": {"percent": 50, "duration": "150ms"}}
    caller = mesh(policy(cluster, fault=fault))
    slow = 0
    n = 30
    for _ in range(n):
        start = time.monotonic()
        assert caller.get("http://users/").status_code == 200
        slow += time.monotonic() - start >= 0.148
    assert 5 <= slow <= 25, slow  # 15 expected; the bounds are about 3.6 sd


@pytest.mark.slow
def test_fault_abort_percentage_never_reaches_backend(mesh, cluster) -> None:
    caller = mesh(policy(cluster, fault={"abort": {"percent": 30, "status": 503}}))
    n = 200
    aborted = 0
    for _ in range(n):
        r = caller.get("http://users/")
        if r.status_code == 503:
            assert r.headers[FAULT_HEADER] == "abort"
            aborted += 1
        else:
            assert r.status_code == 200
    assert 30 <= aborted <= 90, aborted
    assert cluster[0].hits == n - aborted


def test_fault_abort_connect_error_only_with_header(mesh, cluster) -> None:
    fault = {"abort": {"percent": 100, "error": "connect"}, "header": "x-drill"}
    caller = mesh(policy(cluster, routes=[{"match": {"path": {"prefix": "/drill"}},
                                           "fault": fault}]))
    with pytest.raises(httpx.ConnectError, match="fault injected"):
        caller.get("http://users/drill", headers={"x-drill": "1"})
    assert caller.get("http://users/drill").status_code == 200  # no header: no fault
    assert caller.get("http://users/other", headers={"x-drill": "1"}).status_code == 200
    assert cluster[0].hits == 2


def test_fault_abort_reset_error(mesh, cluster) -> None:
    caller = mesh(policy(cluster, fault={"abort": {"percent": 100, "error": "reset"}}))
    with pytest.raises(httpx.ReadError):
        caller.get("http://users/")


def test_mirror_copies_marked_requests(mesh, cluster) -> None:
    caller = mesh(policy(cluster, routes=[{"mirror": {"to": "shadow", "percent": 100}}]))
    r = caller.request("POST", "http://users/orders?x=1", content=b"payload")
    assert r.json()["backend"] == "backend-0"
    wait_until(lambda: cluster[2].hits == 1)
    method, path, headers, body = cluster[2].requests[0]
    assert (method, path, body) == ("POST", "/orders?x=1", b"payload")
    assert headers[MIRROR_HEADER] == "1"
    assert headers["Host"] == "shadow"
    assert MIRROR_HEADER.lower() not in {k.lower() for k in cluster[0].requests[0][2]}


@pytest.mark.slow
def test_mirror_percentage(mesh, cluster) -> None:
    caller = mesh(policy(cluster, routes=[{"mirror": {"to": "shadow", "percent": 25}}]))
    for _ in range(200):
        caller.get("http://users/")
    wait_until(lambda: caller.transport.mirrors.gate.in_flight == 0)
    assert 25 <= cluster[2].hits <= 75, cluster[2].hits


def test_streamed_body_is_not_mirrored(mesh, cluster) -> None:
    caller = mesh(policy(cluster, routes=[{"mirror": {"to": "shadow", "percent": 100}}]))

    def chunks():
        yield b"abc"

    async def achunks():
        yield b"abc"

    content = chunks() if caller.kind == "sync" else achunks()
    assert caller.request("POST", "http://users/", content=content).json()["body_bytes"] == 3
    caller.get("http://users/")
    wait_until(lambda: cluster[2].hits == 1)
    wait_until(lambda: caller.transport.mirrors.gate.in_flight == 0)  # no copy still on its way
    assert cluster[2].hits == 1


@pytest.mark.slow
def test_hanging_mirror_never_slows_or_fails_the_caller(mesh, cluster) -> None:
    cluster.set(2, hang=True)
    caller = mesh(policy(cluster, routes=[{"mirror": {"to": "shadow", "percent": 100}}]))
    limit = caller.transport.mirrors.gate.limit
    waiting = caller.transport.mirrors.queue_size = 4  # copies that may wait for a sender
    n = limit + waiting + 14
    start = time.monotonic()
    for _ in range(n):
        assert caller.get("http://users/").status_code == 200
    elapsed = time.monotonic() - start
    assert elapsed < n * 0.1, elapsed  # no request waited on its copy
    stats = caller.transport.mirrors.gate.stats
    assert stats.dropped >= n - limit - waiting  # over the bounds: dropped
    assert caller.transport.mirrors.gate.in_flight <= limit


def test_mirror_to_dead_service_is_harmless(mesh, cluster) -> None:
    cluster.stop(2)
    caller = mesh(policy(cluster, routes=[{"mirror": {"to": "shadow", "percent": 100}}]))
    for _ in range(5):
        assert caller.get("http://users/").status_code == 200
    wait_until(lambda: caller.transport.mirrors.gate.stats.failed == 5)
