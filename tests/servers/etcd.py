"""A real etcd on loopback, started and stopped by the tests (installed by
scripts/install-test-servers.sh).

`stop()` kills the process and `start()` brings it back on the same ports and data
directory, so tests can take the registry away and give it back.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest

from meshclient._etcd import EtcdClient
from tests.servers.ports import free_port
from tests.servers.process import ServerProcess, require, workdir


class EtcdServer(ServerProcess):
    name = "etcd"
    start_timeout_s = 15.0
    probe_interval_s = 0.05
    graceful_stop = False  # stop() kills it at once

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.client_port = free_port(host)
        self.peer_port = free_port(host)
        self.dir = workdir("etcd")

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.client_port}"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.client_port}"

    def url(self, path: str) -> str:
        """`etcd://host:port/path` for policies and resolvers."""
        return f"etcd://{self.address}{path}"

    def argv(self) -> list[str]:
        peer = f"http://{self.host}:{self.peer_port}"
        return ["etcd", "--name", "test", "--data-dir", str(self.dir),
                "--listen-client-urls", self.base_url, "--advertise-client-urls", self.base_url,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", f"test={peer}", "--log-level", "error"]

    def answers(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/health", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    def failure(self) -> str:
        return f"etcd did not start on {self.base_url}"

    def client(self) -> EtcdClient:
        return EtcdClient(self.base_url)

    def emptied(self) -> EtcdServer:
        """Running (started again if a test stopped it) and holding no keys: a shared server
        as a test expects a fresh one. Leases left behind run out by themselves."""
        self.start()
        every = base64.b64encode(b"\0").decode()  # key "\0" to range end "\0": all keys
        httpx.post(f"{self.base_url}/v3/kv/deleterange", json={"key": every, "range_end": every},
                   timeout=5.0).raise_for_status()
        return self


@pytest.fixture
def etcd_server() -> Iterator[EtcdServer]:
    require("etcd")
    with EtcdServer() as server:
        yield server


@pytest.fixture(scope="module")
def etcd_module_server() -> Iterator[EtcdServer]:
    """One etcd for a whole test module (its start-up is most of a short test); a module
    overrides `etcd_server` with `etcd_module_server.emptied()` to use it."""
    require("etcd")
    with EtcdServer() as server:
        yield server
