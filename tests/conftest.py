from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from meshclient.policy._store import reset_default_store
from meshclient.resilience.budget import reset_budgets
from meshclient.telemetry import access_log
from meshclient.testing import LoopbackCluster
from tests.servers.caller import Caller

# Fixtures for real servers the tests start (etcd_server, …); each server module adds itself here.
pytest_plugins = ["tests.servers.dns", "tests.servers.etcd", "tests.servers.nginx",
                  "tests.servers.longpoll"]


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No MESHCLIENT_* variable leaks in from the machine or between tests."""
    for name in list(os.environ):
        if name.startswith("MESHCLIENT_"):
            monkeypatch.delenv(name)
    reset_default_store()
    reset_budgets()  # retry budgets are process-wide per service name
    access_log.reset()  # read from the (cleaned) environment again
    yield
    reset_default_store()
    reset_budgets()
    access_log.reset()


@pytest.fixture(autouse=True)
def no_thread_leaks() -> Iterator[None]:
    """Background work is released by close(): no non-daemon thread outlives a test."""
    before = {t.ident for t in threading.enumerate()}
    yield
    leaked = [t for t in threading.enumerate()
              if t.ident not in before and t.is_alive() and not t.daemon]
    for t in leaked:
        t.join(2)
    leaked = [t.name for t in leaked if t.is_alive()]
    assert not leaked, f"threads leaked: {leaked}"


@pytest.fixture
def cluster() -> Iterator[LoopbackCluster]:
    with LoopbackCluster(3) as c:
        yield c


@pytest.fixture(params=["sync", "async"])
def shell(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def mesh(shell: str) -> Iterator[Callable[..., Caller]]:
    """`mesh(policy, **transport_kwargs)` -> a Caller on the parametrised shell."""
    callers: list[Caller] = []

    def make(policy: Any = None, **kwargs: Any) -> Caller:
        caller = Caller(shell, policy, **kwargs)
        callers.append(caller)
        return caller

    yield make
    for caller in callers:
        caller.close()


@pytest.fixture
def world() -> Iterator[Any]:
    """An xDS world (`tests/servers/xds_world.py`: the test ADS server and 2 loopback
    backends), closed after the test; a test module may override it (more backends)."""
    from tests.servers.xds_world import XdsWorld

    w = XdsWorld(2)
    try:
        yield w
    finally:
        w.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line at the end when tests were skipped for a server that is not installed."""
    from tests.servers.process import INSTALL, MISSING

    skipped = [r for r in terminalreporter.stats.get("skipped", [])
               if INSTALL in str(getattr(r, "longrepr", ""))]
    if skipped:
        terminalreporter.write_line(
            f"{len(skipped)} tests skipped: {', '.join(sorted(MISSING))} not installed; "
            f"{INSTALL} installs them (apt-get, as root or through sudo)", yellow=True, bold=True)
