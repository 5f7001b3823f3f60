"""A client-side stall is not charged to the endpoint that had the request in flight
(real backends, both shells): the process is kept from running Python (one long C call
holding the GIL, as a busy neighbour or event loop would) while an answer is waiting."""

from __future__ import annotations

import threading
import time
from typing import Any

from meshclient.testing import LoopbackCluster
from tests.integration.test_balancing import endpoint_snapshot
from tests.servers.helpers import wait_until

LATENCY_MS = 100


def calibrate(seconds: float) -> int:
    """An exponent n for which `pow(3, n)` (one C call: the GIL is held throughout) takes
    at least `seconds` (bounded: at most ~12 doublings)."""
    n = 50_000
    for _ in range(12):
        started = time.monotonic()
        pow(3, n)
        if time.monotonic() - started >= seconds:
            break
        n *= 2
    return n


def hog(n: int) -> float:
    """Hold the GIL for one `pow(3, n)`; the time it took."""
    started = time.monotonic()
    pow(3, n)
    return time.monotonic() - started


def test_a_stall_while_an_answer_waits_is_not_charged(mesh: Any) -> None:
    with LoopbackCluster(2) as cluster:  # two endpoints: the monitors run when picks matter
        caller = mesh(cluster.policy("users"))
        keys = [backend.address for backend in cluster]
        for _ in range(4):
            assert caller.get("http://users/warm").status_code == 200
        for i in range(2):
            cluster.set(i, latency_ms=LATENCY_MS)
        n = calibrate(0.4)

        def in_flight() -> int:
            return sum(endpoint_snapshot(caller, key)["in_flight"] for key in keys)

        for _ in range(3):  # bounded: a stall shorter than wanted is tried again
            done = threading.Thread(target=caller.get, args=("http://users/a",))
            done.start()
            wait_until(lambda: in_flight() == 1)
            stalled = hog(n)
            done.join(timeout=30)
            assert not done.is_alive()
            if stalled >= 0.3 + LATENCY_MS / 1000:
                break
        for key in keys:
            estimate_ms = endpoint_snapshot(caller, key)["estimate_ms"]
            # charged, the sample would be about the whole stall (>= 400 ms)
            assert estimate_ms < LATENCY_MS + stalled * 1000 / 4, (key, estimate_ms, stalled)


def test_a_single_endpoint_service_runs_no_stall_monitor(mesh: Any, monkeypatch: Any) -> None:
    """With nothing to choose between, no latency sample decides a pick: the monitors
    (a timer per event loop, a thread for blocking callers) are not started for it."""
    from meshclient.transport import _async, _sync
    watched: list[int] = []
    for module in (_sync, _async):
        monkeypatch.setattr(module, "watch_lag", lambda: watched.append(1))
    with LoopbackCluster(1) as single, LoopbackCluster(2) as pair:
        one = mesh(single.policy("users"))
        assert one.get("http://users/").status_code == 200
        assert watched == []
        two = mesh(pair.policy("users"))
        assert two.get("http://users/").status_code == 200
        assert watched == [1]
