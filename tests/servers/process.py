"""Base of the tests' real server processes (dnsmasq, nginx, etcd, redis-server).

A subclass picks its free loopback port(s) in `__init__` and says how to run it (`argv`)
and how to tell it answers (`answers`, one quick probe). `start()` runs it and waits until
it answers; `stop()` ends it; `start()` again brings it back on the same port(s), so tests
can take a server away and give it back. `with` starts it and `close()`s it (stop, then
remove `workdir` if the subclass made one). `started(a, b, ...)` launches several before
waiting for any, so that their start-ups overlap.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

_T = TypeVar("_T", bound="ServerProcess")


#: The one script that installs every server the tests run (named in every skip reason).
INSTALL = "scripts/install-test-servers.sh"

#: Programs a test wanted and did not find; tests/conftest.py sums them up at the end.
MISSING: set[str] = set()


def require(program: str, hint: str = "") -> None:
    """Skip the test when `program` is not on PATH. One rule for every server: a missing
    one skips (never fails or errors), and the run ends with one line naming them all and
    the script that installs them. `hint` is not used (kept for callers' sake)."""
    if shutil.which(program) is None:
        MISSING.add(program)
        import pytest  # here, not at the top: server processes started from tests import this

        pytest.skip(f"{program} is not installed: {INSTALL} installs it")


def workdir(name: str) -> Path:
    """A fresh temp directory for one server's config, data and logs."""
    return Path(tempfile.mkdtemp(prefix=f"meshclient-{name}-"))


class ServerProcess:
    name = "server"
    start_timeout_s = 10.0
    probe_interval_s = 0.02
    graceful_stop = True  # SIGTERM, SIGKILL after 5 s; False: SIGKILL at once
    address: str  # host:port, for messages
    dir: Path | None = None  # removed by close()

    _proc: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        raise NotImplementedError

    def answers(self) -> bool:
        """One quick probe: does the server answer yet? (Errors mean "not yet".)"""
        raise NotImplementedError

    def prepare(self) -> None:
        """Just before each start (write a config, …)."""

    def failure(self) -> str:
        """The message when it does not start."""
        return f"{self.name} did not start on {self.address}"

    @property
    def running(self) -> bool:
        return self._proc is not None

    def start(self: _T) -> _T:
        if self._proc is not None:
            return self
        self._launch()
        self._wait_answers()
        return self

    def _launch(self) -> None:
        require(self.argv()[0])  # a missing server skips the test, whoever started it
        self.prepare()
        self._proc = subprocess.Popen(self.argv(), stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)

    def _wait_answers(self) -> None:
        proc = self._proc
        assert proc is not None
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.answers():
                return
            if proc.poll() is not None:
                break
            time.sleep(self.probe_interval_s)  # polls until it answers, bounded
        self.stop()
        raise RuntimeError(self.failure())

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if self.graceful_stop:
            proc.terminate()
            try:
                proc.wait(5)
                return
            except subprocess.TimeoutExpired:
                pass
        proc.kill()
        proc.wait(5)

    def close(self) -> None:
        self.stop()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self: _T) -> _T:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.address} {'running' if self.running else 'stopped'}>"


@contextlib.contextmanager
def started(*servers: ServerProcess) -> Iterator[None]:
    """Start `servers` side by side (every process launched before any is waited for: their
    interpreter start-ups overlap), and close them all on exit, also when one fails to start."""
    try:
        for server in servers:
            if server._proc is None:
                server._launch()
        for server in servers:
            server._wait_answers()
        yield
    finally:
        for server in reversed(servers):
            server.close()
