"""Mirroring off the caller's path, with real loopback backends through both shells: the
caller's latency does not follow a slow shadow, copies over the queue are dropped and
counted (stats, metric, status, one log line per interval), nothing is lost silently, the
senders stop on close and start again in a forked child."""

from __future__ import annotations

import logging
import os
import statistics
import threading
import time
from typing import Any

import httpx
import pytest

from meshclient import Policy
from meshclient._cli.status import render
from meshclient._core.actions import Mirror
from meshclient._runtime import Registry
from meshclient.context import MIRROR_HEADER
from meshclient.routing.mirror import mirror_copy
from meshclient.testing import LoopbackCluster
from meshclient.transport._mirror import MirrorSender
from tests.servers.helpers import reap, until
from tests.servers.otel import Otel, otel_fixture  # noqa: F401 (the `otel` fixture)

SHADOW_MS = 300


def policy(cluster: LoopbackCluster, percent: float = 100) -> Policy:
    return Policy.from_dict({"services": {
        "users": {"endpoints": [cluster[0].address], "retry": {"attempts": 1},
                  "routes": [{"mirror": {"to": "shadow", "percent": percent}}]},
        "shadow": {"endpoints": [cluster[2].address], "outlier": {"consecutive_failures": 0},
                   "breaker": {"failures": 10000}},
    }})


def accounted(mirrors: Any) -> int:
    stats = mirrors.gate.stats
    return int(stats.sent + stats.dropped + stats.failed)


def test_a_slow_shadow_does_not_slow_the_caller(mesh, cluster: LoopbackCluster) -> None:
    plain = mesh(Policy.from_dict({"services": {"users": {"endpoints": [cluster[0].address]}}}))
    mirrored = mesh(policy(cluster))
    cluster.set(2, latency_ms=SHADOW_MS)

    def latencies(caller: Any, n: int) -> list[float]:
        out = []
        for _ in range(n):
            start = time.monotonic()
            assert caller.get("http://users/").json()["backend"] == "backend-0"
            out.append(time.monotonic() - start)
        return out

    plain_s = statistics.median(latencies(plain, 20))
    mirrored_s = statistics.median(latencies(mirrored, 20))
    # a caller that waited for its copy would take SHADOW_MS; generous bounds either way
    assert mirrored_s < SHADOW_MS / 1000 / 3, mirrored_s
    assert mirrored_s < plain_s * 5 + 0.02, (plain_s, mirrored_s)
    assert until(lambda: cluster[2].hits == 20, 10)  # every copy was sent, none dropped
    assert mirrored.transport.mirrors.gate.stats.dropped == 0


def test_drops_are_counted_reported_and_logged_once(mesh, cluster: LoopbackCluster,
                                                    otel: Otel,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    cluster.set(2, latency_ms=SHADOW_MS)
    caller = mesh(policy(cluster))
    mirrors = caller.transport.mirrors
    mirrors.queue_size = 4
    caplog.set_level(logging.WARNING, "meshclient.routing")
    n = 60
    for _ in range(n):
        assert caller.get("http://users/").status_code == 200
    stats = mirrors.gate.stats
    # 16 in flight and 4 waiting at most while the shadow answers in 300 ms
    assert stats.dropped >= n - 2 * (mirrors.gate.limit + mirrors.queue_size), stats
    assert until(lambda: accounted(mirrors) == n, 15), stats  # none lost silently
    assert cluster[2].hits == stats.sent
    services = caller.transport.registry.snapshot()
    assert services["shadow"]["mirror_dropped"] == stats.dropped
    text = render({"pid": 1, "registries": [{"policy": "v1", "generation": 1,
                                              "services": services}]})
    assert f"mirror_dropped={stats.dropped}" in text  # `meshclient status`
    (point,) = otel.points("meshclient.mirror.dropped", **{"meshclient.service": "shadow"})
    assert point.value == stats.dropped
    lines = [r for r in caplog.records if "mirror copies dropped" in r.getMessage()]
    assert len(lines) == 1  # once per interval, not once per copy


def test_senders_stop_on_close(shell: str, cluster: LoopbackCluster) -> None:
    import meshclient

    def senders() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "meshclient-mirror"]

    before = len(senders())
    if shell == "sync":
        transport = meshclient.MeshTransport(policy(cluster))
        with httpx.Client(transport=transport) as client:
            for _ in range(5):
                client.get("http://users/")
            assert until(lambda: cluster[2].hits == 5, 5)
            assert len(senders()) > before
        # closing the client closes the transport, which stops its senders
        assert until(lambda: len(senders()) == before, 2)
        return

    import anyio

    async def run() -> int:
        transport = meshclient.AsyncMeshTransport(policy(cluster))
        async with httpx.AsyncClient(transport=transport) as client:
            cluster.set(2, hang=True)  # copies stuck in flight: close must not wait on them
            for _ in range(5):
                await client.get("http://users/")
            tasks = len(transport.mirrors._tasks)
            started = time.monotonic()
        assert time.monotonic() - started < 3  # closing is bounded
        assert all(t.done() for t in transport.mirrors._tasks)
        return tasks

    assert anyio.run(run) > 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_senders_start_again_in_a_forked_child(cluster: LoopbackCluster) -> None:
    p = policy(cluster)
    sender = MirrorSender(Registry())
    shadow = p.resolved["shadow"]

    def action() -> Mirror:
        copy = httpx.Request("GET", "http://users/x")
        assert copy is not None
        return Mirror(copy, shadow)

    with httpx.HTTPTransport() as inner:
        sender.send_sync(inner, action())
        assert until(lambda: sender.gate.stats.sent == 1, 5)
        pid = os.fork()
        if pid == 0:  # the child: the parent's sender threads do not exist here
            code = 1
            try:
                with httpx.HTTPTransport() as fresh:
                    sender.send_sync(fresh, action())
                    if until(lambda: sender.gate.stats.sent == 2, 5):
                        code = 0
            finally:
                os._exit(code)
        assert reap(pid, 15) == 0
        assert cluster[2].hits == 2
    sender.close()


class RecordingSender(MirrorSender):
    """A real sender that also keeps what the caller handed it."""

    def __init__(self, registry: Registry) -> None:
        super().__init__(registry)
        self.handed: list[Mirror] = []

    def send_sync(self, inner: Any, action: Mirror) -> None:
        self.handed.append(action)
        super().send_sync(inner, action)

    def send_async(self, inner: Any, action: Mirror) -> None:
        self.handed.append(action)
        super().send_async(inner, action)


def test_the_caller_hands_off_its_own_request_and_the_sender_builds_the_copy(
        mesh, cluster: LoopbackCluster) -> None:
    """Nothing is copied on the caller's path: the hand-off holds the caller's request (its
    body the same bytes object); the marked copy is built by the sender and arrives."""
    caller = mesh(policy(cluster))
    sender = RecordingSender(caller.transport.registry)
    caller.transport.mirrors = sender
    body = b"x" * 4096
    response = caller.request("POST", "http://users/echo", content=body)
    assert response.status_code == 200
    assert len(sender.handed) == 1
    handed = sender.handed[0].request
    assert handed is response.request and handed.content is response.request.content
    assert MIRROR_HEADER not in handed.headers  # the caller's request stays unmarked
    assert until(lambda: sender.gate.stats.sent == 1, 10)
    copy = mirror_copy(handed, sender.handed[0].service)  # what the sender sends
    assert copy is not None and copy.headers[MIRROR_HEADER] == "1"
    assert copy.content is body  # shared, not copied
