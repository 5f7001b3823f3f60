"""A real etcd on loopback, started and stopped by the tests (installed by .ci/run).

`stop()` kills the process and `start()` brings it back on the same ports and data
directory, so tests can take the registry away and give it back.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator

import httpx
import pytest

from meshclient._etcd import EtcdClient
from tests.servers.ports import free_port


class EtcdServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.client_port = free_port(host)
        self.peer_port = free_port(host)
        self.data_dir = tempfile.mkdtemp(prefix="meshclient-etcd-")
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.client_port}"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.client_port}"

    def url(self, path: str) -> str:
        """`etcd://host:port/path` for policies and resolvers."""
        return f"etcd://{self.address}{path}"

    def start(self) -> EtcdServer:
        if self._proc is not None:
            return self
        peer = f"http://{self.host}:{self.peer_port}"
        self._proc = subprocess.Popen(
            ["etcd", "--name", "test", "--data-dir", self.data_dir,
             "--listen-client-urls", self.base_url, "--advertise-client-urls", self.base_url,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", f"test={peer}", "--log-level", "error"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/health", timeout=0.5).status_code == 200:
                    return self
            if self._proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"etcd did not start on {self.base_url}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait(5)

    def client(self) -> EtcdClient:
        return EtcdClient(self.base_url)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def __repr__(self) -> str:
        return f"<EtcdServer {self.base_url} {'running' if self._proc else 'stopped'}>"


@pytest.fixture
def etcd_server() -> Iterator[EtcdServer]:
    if shutil.which("etcd") is None:
        pytest.fail("etcd is not installed (.ci/run installs etcd-server)")
    server = EtcdServer().start()
    try:
        yield server
    finally:
        server.close()
