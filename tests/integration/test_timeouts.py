"""Per-try and total timeouts, overrides and the caller's own httpx timeout."""

from __future__ import annotations

import time

import httpx
import pytest

import meshclient
from meshclient.testing import LoopbackCluster

pytestmark = pytest.mark.slow


def test_per_try_timeout_retries_elsewhere(mesh, cluster: LoopbackCluster) -> None:
    cluster.set(0, hang=True)
    # connect-error too: the per-try timeout also bounds connecting, and on a busy machine
    # connecting to a healthy backend can outlast 200 ms (a ConnectTimeout, not a timeout)
    caller = mesh(cluster.policy("users", timeout={"total": "3s", "per_try": "200ms"},
                                 retry={"on": ["timeout", "connect-error", "503"],
                                        "backoff": {"base": "1ms", "max": "2ms"}}))
    for _ in range(3):
        started = time.monotonic()
        assert caller.get("http://users/a").status_code == 200
        assert time.monotonic() - started < 2.0  # never the 3 s total


def test_total_timeout_raises_deadline_exceeded(mesh, cluster: LoopbackCluster) -> None:
    for i in range(3):
        cluster.set(i, hang=True)
    caller = mesh(cluster.policy("users", timeout={"total": "300ms"},
                                 retry={"on": ["timeout"]}))
    started = time.monotonic()
    with pytest.raises(httpx.TimeoutException) as info:
        caller.get("http://users/a")
    assert isinstance(info.value, meshclient.DeadlineExceeded)
    assert 0.25 < time.monotonic() - started < 2.5  # the backends never answer


def test_total_bounds_retries_and_backoff(mesh, cluster: LoopbackCluster) -> None:
    for i in range(3):
        cluster.set(i, latency_ms=400, status=503)
    caller = mesh(cluster.policy("users", timeout={"total": "250ms"},
                                 retry={"attempts": 5}))
    started = time.monotonic()
    with pytest.raises(meshclient.DeadlineExceeded):
        caller.get("http://users/a")
    assert time.monotonic() - started < 1.5  # five attempts of 400 ms would take over 2 s


def test_request_override(mesh, cluster: LoopbackCluster) -> None:
    for i in range(3):
        cluster.set(i, hang=True)
    caller = mesh(cluster.policy("users"))
    started = time.monotonic()
    with pytest.raises(meshclient.DeadlineExceeded):
        caller.get("http://users/a", extensions={"meshclient.timeout": 0.2})
    assert time.monotonic() - started < 3.0  # the policy's 15 s total plays no part
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        caller.get("http://users/a",
                   extensions={"meshclient.timeout": {"total": 5, "per_try": 0.2}})
    assert time.monotonic() - started < 3.0  # the policy's 15 s total plays no part


def test_callers_httpx_timeout_is_never_exceeded(mesh, cluster: LoopbackCluster) -> None:
    for i in range(3):
        cluster.set(i, hang=True)
    caller = mesh(cluster.policy("users"))
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        caller.get("http://users/a", timeout=0.2)
    assert time.monotonic() - started < 3.0  # the policy's 15 s total plays no part


def test_no_retry_when_the_deadline_is_shorter_than_the_fastest_endpoint(mesh) -> None:
    with LoopbackCluster(2) as cluster:
        cluster.set(0, latency_ms=300)
        cluster.set(1, status=503)
        caller = mesh(cluster.policy("users", retry={"backoff": {"base": "1ms", "max": "2ms"}}))
        for _ in range(2):  # a latency estimate for the only healthy endpoint: ~300 ms
            assert caller.get("http://users/a").status_code == 200
        seen = []
        for _ in range(4):
            before = cluster.hits()[0]
            try:
                r = caller.get("http://users/a", extensions={"meshclient.timeout": 0.25})
                seen.append((r.status_code, cluster.hits()[0] - before))
            except meshclient.DeadlineExceeded:
                seen.append(("deadline", cluster.hits()[0] - before))
        # A fast 503 is returned, not retried onto an endpoint that cannot answer in time.
        assert (503, 0) in seen


def _drip_policy(address: str) -> meshclient.Policy:
    return meshclient.Policy.from_dict({"services": {"slow": {
        "endpoints": [address], "timeout": {"total": "1s"}, "retry": {"attempts": 1}}}})


@pytest.mark.parametrize("reused", [False, True], ids=["new-connection", "reused-connection"])
def test_total_bounds_a_peer_dripping_its_headers(mesh, reused: bool) -> None:
    from tests.servers.slow_peer import DripServer

    with DripServer() as server:
        caller = mesh(_drip_policy(server.address))
        if reused:  # the slow answer comes on a keep-alive connection already open
            assert caller.get("http://slow/fast").status_code == 200
        started = time.monotonic()
        with pytest.raises(meshclient.DeadlineExceeded):
            caller.get("http://slow/drip-headers")  # ~44 s at 1 byte / 0.2 s
        assert time.monotonic() - started < 3.0
        assert caller.get("http://slow/fast").status_code == 200  # the pool recovers


def test_total_bounds_a_peer_dripping_its_body(mesh) -> None:
    from tests.servers.slow_peer import DripServer

    with DripServer() as server:
        caller = mesh(_drip_policy(server.address))
        started = time.monotonic()
        with pytest.raises(meshclient.DeadlineExceeded):
            caller.get("http://slow/drip-body")  # 40 s at 1 byte / 0.2 s
        assert time.monotonic() - started < 3.0


def test_total_bounds_reading_a_streamed_body(mesh) -> None:
    from tests.servers.slow_peer import DripServer

    with DripServer() as server:
        caller = mesh(_drip_policy(server.address))
        started = time.monotonic()
        with pytest.raises(meshclient.DeadlineExceeded):
            caller.stream_lines("GET", "http://slow/drip-body")
        assert time.monotonic() - started < 3.0
