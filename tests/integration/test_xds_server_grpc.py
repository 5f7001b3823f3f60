"""The test ADS server checked against an xDS client nobody here wrote: gRPC's own
(`xds:///…` channels with `GRPC_XDS_BOOTSTRAP`), routing real gRPC calls by the same
resources the meshclient tests serve. A child process keeps the variable out of this one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("grpc")
pytest.importorskip("envoy.service.discovery.v3.ads_pb2_grpc")

from envoy.config.listener.v3 import listener_pb2

from tests.servers.ads import LISTENER, AdsServer
from tests.servers.grpc_backend import GrpcBackend
from tests.servers.xds_resources import serve_split

TARGET = "users.default.svc.cluster.local:8080"
ROOT = Path(__file__).resolve().parents[2]


class GrpcClient:
    def __init__(self, bootstrap: Path) -> None:
        env = {**os.environ, "GRPC_XDS_BOOTSTRAP": str(bootstrap), "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.servers.grpc_xds_client", TARGET], cwd=ROOT, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        assert json.loads(self.proc.stdout.readline()) == {"ready": True}

    def calls(self, n: int) -> dict[str, int]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{n}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "gRPC client died"
        return dict(json.loads(line))

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[AdsServer, list[GrpcBackend], GrpcClient]]:
    backends = [GrpcBackend("127.0.0.2", "a").start(), GrpcBackend("127.0.0.3", "b").start()]
    server = AdsServer().start()
    bootstrap = tmp_path / "bootstrap.json"
    bootstrap.write_text(json.dumps(server.bootstrap("grpc-reference")))
    serve(server, backends, {"c-a": 80, "c-b": 20})
    client = GrpcClient(bootstrap)
    try:
        yield server, backends, client
    finally:
        client.close()
        server.stop()
        for b in backends:
            b.stop()


def serve(server: AdsServer, backends: list[GrpcBackend], weights: dict[str, int]) -> None:
    serve_split(server, TARGET, weights,
                {"c-a": [{"address": backends[0].address}],
                 "c-b": [{"address": backends[1].address}]})


def test_grpc_routes_by_the_servers_weights_live_updates_and_nacks(
        world: tuple[AdsServer, list[GrpcBackend], GrpcClient]) -> None:
    server, backends, client = world
    # gRPC draws each pick at random: over 4,000 calls the 4% bound is 6 standard
    # deviations wide (over 1,000 it was 3.2, missed about one run in 600)
    counts = client.calls(4000)
    assert counts.get("errors", 0) == 0, counts
    assert abs(counts["a"] / 4000 - 0.8) <= 0.04, counts

    # a live update: everything to b
    serve(server, backends, {"c-a": 0, "c-b": 100})
    assert server.wait_for(lambda: any(r.node == "grpc-reference" for r in server.acks
                                       if r.version == server.version(LISTENER)))
    for _ in range(50):  # bounded: gRPC applies the new route config moments after its ACK
        if client.calls(20).get("b") == 20:
            break
    assert client.calls(100) == {"b": 100}

    # an invalid listener (no api_listener): NACKed, and the last good config still serves
    server.set(LISTENER, [listener_pb2.Listener(name=TARGET)])
    assert server.wait_for(lambda: any(n.node == "grpc-reference" for n in server.nacks))
    nack = next(n for n in server.nacks if n.node == "grpc-reference")
    assert nack.type_url == LISTENER and nack.error
    assert client.calls(50) == {"b": 50}
