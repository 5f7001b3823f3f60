"""`meshclient.retrying`: real tenacity loops (`Retrying` and `AsyncRetrying`) around real
non-HTTP calls (TCP connects to a closed loopback port) share the service's retry budget
and deadline with its HTTP calls through the mesh."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest
import tenacity
from tenacity import retry_if_exception_type, stop_after_attempt, wait_fixed, wait_none

import meshclient
from meshclient import retrying as mr
from meshclient.context import Inbound, inbound_context
from meshclient.resilience.budget import budget_for
from meshclient.telemetry import semconv
from meshclient.testing import FakeClock, LoopbackCluster
from tests.servers.otel import Otel, otel_fixture  # noqa: F401 (the `otel` fixture)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Database:
    """A non-HTTP dependency that is down: each call is a real refused TCP connect."""

    def __init__(self, clock: FakeClock | None = None, takes_s: float = 0.0) -> None:
        self.port = closed_port()
        self.calls = 0
        self.clock = clock
        self.takes_s = takes_s

    def query(self) -> str:
        self.calls += 1
        if self.clock is not None:
            self.clock.advance(self.takes_s)
        with socket.create_connection(("127.0.0.1", self.port), timeout=2):
            return "row"  # pragma: no cover - nothing listens


def run(shell: str, fn: Callable[[], Any], **kwargs: Any) -> Any:
    """`fn` under a tenacity loop built from `kwargs`: `Retrying` (sync) or `AsyncRetrying`."""
    if shell == "sync":
        for attempt in tenacity.Retrying(**kwargs):
            with attempt:
                return fn()
        return None  # pragma: no cover

    async def go() -> Any:
        async for attempt in tenacity.AsyncRetrying(**kwargs):
            with attempt:
                return fn()
        return None  # pragma: no cover

    return anyio.run(go)


def fake_sleep(shell: str, clock: FakeClock) -> Any:
    if shell == "sync":
        return clock.advance

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    return sleep


def tight_budget(cluster: LoopbackCluster) -> meshclient.PolicyStore:
    """`users` with a budget of exactly two retries (no ratio, a reserve of 0.2/s for 10 s)."""
    return meshclient.PolicyStore(cluster.policy("users", retry={
        "attempts": 5, "backoff": {"base": 0.001, "max": 0.002},
        "budget": {"ratio": 0, "min_per_second": 0.2, "ttl": 10}}))


def test_a_database_retry_spends_the_services_http_budget(shell: str, mesh,
                                                          cluster: LoopbackCluster) -> None:
    store = tight_budget(cluster)
    db = Database()
    with pytest.raises(ConnectionRefusedError):  # the call's own error (reraise)
        run(shell, db.query, retry=mr.retry_if_budget(
            "users", retry_if_exception_type(ConnectionError), store=store),
            stop=stop_after_attempt(10), wait=wait_none(),
            before_sleep=mr.record_retry("users", store=store), reraise=True)
    assert db.calls == 3  # the first attempt and the two retries the budget had
    stats = budget_for("users", store.current.resolved["users"].retry.budget)
    assert (stats.retries, stats.budget_exhausted) == (2, 1)
    # the same budget refuses the HTTP call's retries now
    for i in range(3):
        cluster.set(i, status=503)
    caller = mesh(store)
    assert caller.get("http://users/x").status_code == 503
    assert sum(cluster.hits()) == 1
    assert stats.budget_exhausted == 2


def test_http_retries_spend_the_budget_a_database_retry_then_lacks(
        shell: str, mesh, cluster: LoopbackCluster) -> None:
    store = tight_budget(cluster)
    cluster.set(0, status=503)
    cluster.set(1, status=503)
    cluster.set(2, status=503)
    caller = mesh(store)
    assert caller.get("http://users/x").status_code == 503
    assert sum(cluster.hits()) == 3  # two retries: the whole budget
    db = Database()
    with pytest.raises(ConnectionRefusedError):
        run(shell, db.query, retry=mr.retry_if_budget("users", store=store),
            stop=stop_after_attempt(5), reraise=True)
    assert db.calls == 1


def test_stop_at_deadline_fits_the_next_attempt_in_the_inbound_deadline(shell: str) -> None:
    clock = FakeClock()
    db = Database(clock, takes_s=0.3)
    with inbound_context(Inbound(deadline_ns=clock.now_ns() + 1_000_000_000)), \
            pytest.raises(ConnectionRefusedError):
        run(shell, db.query, retry=retry_if_exception_type(ConnectionError),
            stop=mr.stop_at_deadline(attempt_s=0.3, clock=clock), wait=wait_fixed(0.1),
            sleep=fake_sleep(shell, clock), reraise=True)
    # t=0.3: 0.7 left, less the 0.1 wait, fits 0.3 -> retry; t=0.7: 0.3 - 0.1 < 0.3 -> stop
    assert db.calls == 2
    assert mr.time_left(clock) is None  # outside the block: no deadline


def test_stop_at_deadline_with_an_explicit_deadline_and_measured_attempts(shell: str) -> None:
    clock = FakeClock()
    db = Database(clock, takes_s=0.3)
    with mr.deadline(1.0, clock=clock) as left:
        assert left == 1.0
        with pytest.raises(ConnectionRefusedError):
            # attempts measured by tenacity (real time, far below 0.1 s): retried while the
            # wait fits, so t = 0.3, 0.7 (0.2 left after the wait), 1.1 (past) -> 3 calls
            run(shell, db.query, retry=retry_if_exception_type(ConnectionError),
                stop=mr.stop_at_deadline(clock=clock), wait=wait_fixed(0.1),
                sleep=fake_sleep(shell, clock), reraise=True)
        assert mr.time_left(clock) == 0.0
    assert db.calls == 3


def test_an_earlier_inbound_deadline_wins_and_http_calls_keep_to_the_block(
        cluster: LoopbackCluster) -> None:
    clock = FakeClock()
    with inbound_context(Inbound(deadline_ns=clock.now_ns() + 500_000_000, attempt=2)), \
            mr.deadline(5.0, clock=clock):
        assert mr.time_left(clock) == 0.5
    for i in range(3):
        cluster.set(i, latency_ms=2000)
    transport = meshclient.MeshTransport(cluster.policy("users"))
    with httpx.Client(transport=transport) as client, mr.deadline(0.2), \
            pytest.raises(httpx.TimeoutException):
        client.get("http://users/slow")


def test_retrying_builds_the_loop_from_the_services_policy(shell: str,
                                                           cluster: LoopbackCluster) -> None:
    store = meshclient.PolicyStore(cluster.policy("users", retry={
        "attempts": 4, "backoff": {"base": 0.001, "max": 0.002}}))
    db = Database()
    make = mr.retrying if shell == "sync" else mr.async_retrying
    loop = make("users", retry=retry_if_exception_type(ConnectionError), store=store)
    assert loop.reraise and isinstance(loop.wait, mr.wait_backoff)
    kwargs = {k: getattr(loop, k) for k in ("retry", "stop", "wait", "before_sleep")}
    with pytest.raises(ConnectionRefusedError):
        run(shell, db.query, reraise=True, **kwargs)
    assert db.calls == 4  # the policy's attempts
    # any tenacity wait in place of the policy's backoff; a name outside the policy gets
    # the defaults (3 attempts) and a budget of its own
    loop = make("orders-db", wait=wait_fixed(0), store=store)
    db2 = Database()
    with pytest.raises(ConnectionRefusedError):
        run(shell, db2.query, reraise=True, retry=loop.retry, stop=loop.stop, wait=loop.wait)
    assert db2.calls == 3
    assert loop.wait(tenacity.RetryCallState(loop, None, (), {})) == 0


def test_retries_show_in_metrics_and_span_events(shell: str, cluster: LoopbackCluster,
                                                 otel: Otel) -> None:
    store = tight_budget(cluster)
    db = Database()
    tracer = otel.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("handle-order"), pytest.raises(ConnectionRefusedError):
        run(shell, db.query, retry=mr.retry_if_budget("users", store=store),
            stop=stop_after_attempt(10), wait=wait_none(),
            before_sleep=mr.record_retry("users", store=store), reraise=True)
    svc = {semconv.MESH_SERVICE: "users"}
    (retries,) = otel.points("meshclient.retries", **svc)
    assert retries.value == 2
    (refused,) = otel.points("meshclient.retry_budget.exhausted", **svc)
    assert refused.value == 1
    (gave_up,) = otel.points("meshclient.retries.exhausted", **svc)
    assert gave_up.value == 1 and gave_up.attributes["meshclient.reason"] == "budget"
    (span,) = otel.named("handle-order")  # the current span when the retries happened
    assert [e.name for e in span.events] == ["meshclient.retry", "meshclient.retry",
                                             "meshclient.budget_exhausted"]


def test_bad_arguments_name_the_value() -> None:
    with pytest.raises(mr.RetryingError, match=r"service.*''"):
        mr.retry_if_budget("")
    with pytest.raises(mr.RetryingError, match="-1"):
        mr.stop_at_deadline(attempt_s=-1)
    with pytest.raises(mr.RetryingError, match="nan"), mr.deadline(float("nan")):
        pass  # pragma: no cover
    with pytest.raises(mr.RetryingError, match="7"):
        mr.record_retry(7)  # type: ignore[arg-type]
    assert isinstance(mr.RetryingError("x"), meshclient.MeshError)
