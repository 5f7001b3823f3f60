"""Breaker state in a real Redis that dies or freezes: calls neither stall nor flood the
log; the breakers run on local state and go back to Redis when it answers again."""

from __future__ import annotations

import ast
import logging
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

import meshclient
from meshclient.resilience.breaker_storage import REDIS_TIMEOUT_S, health_for
from meshclient.testing import LoopbackCluster
from tests.servers.helpers import until
from tests.servers.ports import free_port
from tests.servers.redis_server import RedisServer


def _breakers(caller) -> list[str]:
    return [e["breaker"] for e in caller.transport.snapshot()["services"]["users"]["endpoints"]]


@pytest.mark.parametrize("dies", [False, True], ids=["never-up", "dies-later"])
def test_a_dead_redis_logs_once_and_breakers_still_work(mesh, caplog, dies: bool) -> None:
    if dies and shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer().start() if dies else None
    url = server.url if server is not None else f"redis://127.0.0.1:{free_port()}/0"
    caplog.set_level(logging.DEBUG)
    try:
        with LoopbackCluster(1) as cluster:
            caller = mesh(cluster.policy("users", retry={"attempts": 1}, breaker={
                "storage": url, "failures": 2, "reset": "10s"}))
            assert caller.get("http://users/a").status_code == 200
            if server is not None:
                server.stop()  # Redis dies under a running breaker
            for _ in range(10):
                assert caller.get("http://users/a").status_code == 200
            cluster.set(0, status=503)
            for _ in range(2):
                assert caller.get("http://users/a").status_code == 503
            with pytest.raises(meshclient.CircuitOpen):  # local state: the breaker opened
                caller.get("http://users/a")
            assert _breakers(caller) == ["open"]
    finally:
        if server is not None:
            server.stop()
    records = [r for r in caplog.records if (r.levelno >= logging.WARNING
                                             and "storage" in r.getMessage())
               or r.name.startswith("pybreaker")]
    assert len(records) == 1, [r.getMessage() for r in records]
    assert url in records[0].getMessage()


def test_a_frozen_redis_costs_at_most_one_timeout_then_nothing(mesh, caplog) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    caplog.set_level(logging.WARNING)
    with RedisServer() as server, LoopbackCluster(1) as cluster:
        caller = mesh(cluster.policy("users", retry={"attempts": 1},
                                     breaker={"storage": server.url}))
        assert caller.get("http://users/a").status_code == 200
        pid = server._proc.pid  # type: ignore[union-attr]
        os.kill(pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            for _ in range(10):
                assert caller.get("http://users/a").status_code == 200
            elapsed = time.monotonic() - started
            # one storage timeout (0.2 s) at most, not ~0.8 s per request
            assert elapsed < 10 * REDIS_TIMEOUT_S, elapsed
            health = health_for(server.url)
            assert not health.up
        finally:
            os.kill(pid, signal.SIGCONT)
        assert until(lambda: health.up, 10.0)  # the background probe saw it answer
        assert caller.get("http://users/a").status_code == 200
    messages = [r.getMessage() for r in caplog.records if server.url in r.getMessage()]
    assert len(messages) == 2, messages  # unreachable, then back
    assert "unreachable" in messages[0] and "answers again" in messages[1]


def test_breaker_reads_no_private_pybreaker_attribute() -> None:
    """Only pybreaker's public API: its private shape may change in any release."""
    import meshclient.resilience.breaker as module

    tree = ast.parse(Path(module.__file__).read_text())
    private = [node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
               and isinstance(node.value, ast.Attribute) and node.value.attr == "_cb"
               and node.attr.startswith("_")]
    assert private == []


def test_a_call_with_less_time_left_than_a_redis_timeout_never_waits_on_redis() -> None:
    """The storage answers from the local copy when a Redis round trip could outlast the
    call (frozen Redis: the round trip would wait the whole operation timeout)."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    from meshclient._clock import CLOCK
    from meshclient.policy import Policy
    from meshclient.resilience.breaker import NORMAL, Breaker
    from meshclient.resilience.breaker_storage import call_time_left

    with RedisServer() as server:
        policy = Policy.from_dict({"services": {"users": {
            "endpoints": ["127.0.0.1:1"], "breaker": {"storage": server.url}}}})
        breaker = Breaker("users", "127.0.0.1:1", policy.services["users"].breaker, CLOCK)
        assert breaker.admit() == NORMAL  # read from Redis
        pid = server._proc.pid  # type: ignore[union-attr]
        os.kill(pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            for _ in range(5):
                assert breaker.admit(time_left_s=REDIS_TIMEOUT_S / 2) == NORMAL
                breaker.record(NORMAL, True, time_left_s=REDIS_TIMEOUT_S / 2)
            assert time.monotonic() - started < REDIS_TIMEOUT_S  # not one Redis wait
            assert health_for(server.url).up  # Redis was not even asked
            with call_time_left(None):  # no deadline: Redis is asked (and times out)
                breaker.admit()
            assert not health_for(server.url).up
        finally:
            os.kill(pid, signal.SIGCONT)


def test_a_call_shorter_than_a_redis_timeout_never_asks_a_frozen_redis(mesh) -> None:
    """`timeout.total` below one Redis operation's timeout: the breakers of the call use
    their local state, so a frozen Redis cannot hold the call past its deadline."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    with RedisServer() as server, LoopbackCluster(1) as cluster:
        caller = mesh(cluster.policy("users", retry={"attempts": 1},
                                     timeout={"total": "150ms"},
                                     breaker={"storage": server.url}))
        pid = server._proc.pid  # type: ignore[union-attr]
        os.kill(pid, signal.SIGSTOP)
        try:
            ok = 0
            for _ in range(10):  # a loaded machine may miss a 150 ms deadline on its own
                try:
                    ok += caller.get("http://users/a").status_code == 200
                except meshclient.DeadlineExceeded:
                    continue
                if ok == 3:
                    break
            assert ok >= 1
            assert health_for(server.url).up  # never asked, so never seen frozen
        finally:
            os.kill(pid, signal.SIGCONT)
