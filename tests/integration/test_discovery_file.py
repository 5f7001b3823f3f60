"""File discovery through both shells: re-read on change, stale on a broken file, the grace
period for an empty list; and `meshclient resolve`."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import meshclient
from meshclient import Policy
from meshclient.cli import main
from meshclient.testing import LoopbackCluster
from tests.servers.dns import DnsServer
from tests.servers.helpers import backends_of, until, wait_until


def write(path: Path, data: Any) -> None:
    """Atomically, as docs/discovery.md tells operators to."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(data if isinstance(data, str) else json.dumps(data))
    os.replace(tmp, path)


@pytest.mark.slow
def test_file_is_reread_when_it_changes(mesh, tmp_path: Path, cluster: LoopbackCluster,
                                       caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "users.json"
    write(path, [cluster[0].address, {"address": cluster[1].address, "weight": 2}])
    caller = mesh(Policy.from_dict({"services": {"users": {
        "discovery": {"url": f"file://{path}", "grace": "1s"},
        "balancer": {"kind": "round-robin"}}}}))
    assert backends_of(caller, 4) == {"backend-0", "backend-1"}
    write(path, {"endpoints": [cluster[2].address]})
    assert until(lambda: backends_of(caller, 2) == {"backend-2"}, 1.0)
    caplog.set_level(logging.WARNING, logger="meshclient.discovery")
    write(path, "[not json")  # broken: the last good set stays
    wait_until(lambda: any("failing" in r.getMessage() for r in caplog.records))
    assert backends_of(caller, 3) == {"backend-2"}
    write(path, [])  # empty: held for the grace period, then believed
    written = time.monotonic()
    assert backends_of(caller, 2) == {"backend-2"}
    errors: list[Exception] = []

    def refused() -> bool:
        try:
            caller.get("http://users/")
        except httpx.ConnectError as exc:
            errors.append(exc)
            return True
        return False

    # the re-read waits out the backoff of the broken file (< 1 s), then the 1 s grace (long
    # enough that the check above cannot outlast it on a loaded machine)
    wait_until(refused)
    assert time.monotonic() - written >= 1.0
    assert isinstance(errors[0], meshclient.NoEndpointsAvailable)
    assert "found none" in str(errors[0])


@pytest.mark.slow
def test_resolve_command_prints_endpoints(dns_server: DnsServer, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    dns_server.set(a={"a.mesh.test": ["127.0.0.2"]},
                   srv={"_http._tcp.users.mesh.test": [("a.mesh.test", 8001, 1, 7)]})
    policy = tmp_path / "mesh.json"
    policy.write_text(json.dumps({"services": {
        "users": {"discovery": {"url": "dns+srv://_http._tcp.users.mesh.test", "timeout": "300ms",
                                "nameservers": [dns_server.address]}},
        "static": {"endpoints": [{"address": "127.0.0.3:80", "zone": "z1"}]}}}))
    assert main(["resolve", "users", "--policy", str(policy)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["ADDRESS", "SOURCE", "WEIGHT", "PRIORITY", "ZONE", "TTL"]
    assert out[1].split()[:6] == ["127.0.0.2:8001", "dns+srv://_http._tcp.users.mesh.test",
                                  "7", "1", "-", "1s"]
    assert "(cached 5s)" in out[1]  # the TTL clamped to min_ttl
    assert main(["resolve", "static", "--policy", str(policy), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["endpoints"][0]["zone"] == "z1" and data["endpoints"][0]["source"] == "static"
    assert main(["resolve", "nope", "--policy", str(policy)]) == 2
    assert "unknown service 'nope'" in capsys.readouterr().err
    dns_server.stop()
    assert main(["resolve", "users", "--policy", str(policy)]) == 1
    assert "lookup failed" in capsys.readouterr().err
