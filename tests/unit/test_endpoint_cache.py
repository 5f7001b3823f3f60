"""The endpoint cache with a scripted fake resolver (a fake, not a mock): first-answer wait,
stale on error with one log line per streak, listeners, grace, close()."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from meshclient import _events
from meshclient.discovery import (
    DiscoveryError,
    Endpoint,
    EndpointCache,
    Resolution,
    ScheduleConfig,
)
from tests.servers.helpers import until

A = Endpoint("10.0.0.1", 80)
B = Endpoint("10.0.0.2", 80)
FAST = ScheduleConfig(min_ttl_s=0.05, max_ttl_s=0.05, grace_s=0.3, backoff_base_s=0.02,
                      backoff_max_s=0.05)


class ScriptedResolver:
    """Answers from `script` in turn (the last one repeats); an exception in it is raised."""

    source = "fake://users"

    def __init__(self, *script: Resolution | Exception, delay_s: float = 0.0) -> None:
        self.script = list(script)
        self.delay_s = delay_s
        self.calls = 0
        self.closed = False

    def resolve(self) -> Resolution:
        self.calls += 1
        time.sleep(self.delay_s)  # the scenario: a slow lookup
        item = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(item, Exception):
            raise item
        return item

    def close(self) -> None:
        self.closed = True


def res(*endpoints: Endpoint) -> Resolution:
    return Resolution(tuple(endpoints), "fake://users", 0.0, exists=bool(endpoints))


@pytest.fixture
def events() -> Iterator[list[tuple[str, str, dict[str, object]]]]:
    seen: list[tuple[str, str, dict[str, object]]] = []
    unsubscribe = _events.subscribe(lambda kind, service, attrs: seen.append(
        (kind, service, attrs)))
    yield seen
    unsubscribe()


def test_first_wait_then_listeners_get_each_new_set(events: list) -> None:
    resolver = ScriptedResolver(res(A), res(A), res(A, B))
    cache = EndpointCache("users", resolver, FAST)
    got: list[tuple[Endpoint, ...]] = []
    cache.subscribe(lambda r: got.append(r.endpoints))
    try:
        assert not cache.ready
        assert cache.wait(2.0)
        # the repeated (A,) is not re-sent
        assert until(lambda: got == [(A,), (A, B)], 3.0, every_s=0.01)
        late: list[tuple[Endpoint, ...]] = []
        cache.subscribe(lambda r: late.append(r.endpoints))
        assert late == [(A, B)]  # a new listener gets the current set at once
    finally:
        cache.close()
    assert resolver.closed
    assert [e[0] for e in events if e[0] == _events.DISCOVERY_REFRESH] == [
        _events.DISCOVERY_REFRESH] * 2
    assert not [t for t in threading.enumerate() if t.name == "meshclient-discovery-users"]


def test_stale_on_error_with_one_log_line_per_streak(caplog: pytest.LogCaptureFixture,
                                                     events: list) -> None:
    boom = DiscoveryError("registry down")
    resolver = ScriptedResolver(res(A, B), boom, boom, boom, boom, boom, res(B))
    cache = EndpointCache("users", resolver, FAST)
    with caplog.at_level(logging.INFO, logger="meshclient.discovery"):
        try:
            cache.wait(2.0)
            assert until(lambda: cache.resolution == res(B), 3.0, every_s=0.01)
        finally:
            cache.close()
    warnings = [r for r in caplog.records
                if r.levelno == logging.WARNING and r.name == "meshclient.discovery"]
    assert len(warnings) == 1 and "registry down" in warnings[0].getMessage()
    assert "serving 2 stale endpoints" in warnings[0].getMessage()
    assert any("recovered after 5 failed lookups" in r.getMessage() for r in caplog.records)
    errors = [attrs for kind, _, attrs in events if kind == _events.DISCOVERY_ERROR]
    assert len(errors) == 5 and all(a["stale_s"] is not None for a in errors)
    assert [a["failures"] for a in errors] == [1, 2, 3, 4, 5]


def test_empty_answer_keeps_the_working_set_for_the_grace_period() -> None:
    resolver = ScriptedResolver(res(A), res())
    cache = EndpointCache("users", resolver, FAST)
    try:
        cache.wait(2.0)
        start = time.monotonic()
        assert until(lambda: resolver.calls >= 3, 3.0, every_s=0.01)
        assert cache.resolution == res(A)  # held
        assert until(lambda: cache.resolution == res(), 3.0, every_s=0.01)
        assert time.monotonic() - start >= FAST.grace_s * 0.8
    finally:
        cache.close()


def test_wait_returns_only_after_the_listeners_have_the_first_answer() -> None:
    """A request woken by the first answer picks at once: the balancer (a listener) must
    hold the endpoints by then."""
    cache = EndpointCache("users", ScriptedResolver(res(A)), FAST)
    entered, release = threading.Event(), threading.Event()
    delivered: list[Resolution] = []

    def slow_listener(resolution: Resolution) -> None:
        entered.set()
        release.wait(10.0)  # a balancer update taking its time on a loaded machine
        delivered.append(resolution)

    cache.subscribe(slow_listener)
    try:
        cache.start()
        assert entered.wait(10.0)
        assert not cache.wait(0.2)  # the listener has not finished: not ready yet
        release.set()
        assert cache.wait(10.0)
        assert [r.endpoints for r in delivered] == [(A,)]
    finally:
        release.set()
        cache.close()


def test_wait_is_bounded_when_the_registry_never_answers() -> None:
    cache = EndpointCache("users", ScriptedResolver(DiscoveryError("down")), FAST)
    try:
        start = time.monotonic()
        assert not cache.wait(0.2)
        assert 0.15 <= time.monotonic() - start < 5.0  # bounded (generous: a loaded machine)
        # the lookup thread may not have run yet on a loaded machine: wait for its error
        assert until(lambda: cache.last_error == "down", 10.0, every_s=0.01)
    finally:
        cache.close()


class WatchingResolver(ScriptedResolver):
    def watch(self, publish: Callable[[Resolution], None],
              should_stop: Callable[[], bool]) -> None:
        publish(res(A))
        while not should_stop():
            time.sleep(0.01)  # the scenario: a watch that stays open until told to stop


def test_watching_resolver_is_followed_not_polled() -> None:
    resolver = WatchingResolver(res(B))
    cache = EndpointCache("users", resolver, FAST)
    try:
        assert cache.wait(2.0)
        time.sleep(0.2)  # the scenario: a window in which a polling cache would have polled
        assert cache.resolution == res(A) and resolver.calls == 0
    finally:
        cache.close()
    assert resolver.closed


def test_close_before_start_closes_the_resolver() -> None:
    resolver = ScriptedResolver(res(A))
    EndpointCache("users", resolver, FAST).close()
    assert resolver.closed and resolver.calls == 0
