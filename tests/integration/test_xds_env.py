"""xDS from the environment, as a proxyless pod runs: `GRPC_XDS_BOOTSTRAP` makes the
process-wide store follow the server; without a bootstrap nothing xDS (gRPC, protos,
`meshclient.xds`) is imported. Child processes keep the variables out of this one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("grpc")
pytest.importorskip("envoy.service.discovery.v3.ads_pb2_grpc")

from tests.servers.xds_world import URL, XdsWorld

ROOT = Path(__file__).resolve().parents[2]
_CHILD = """
import json, sys, httpx, meshclient
with httpx.Client(transport=meshclient.MeshTransport()) as client:
    bodies = [client.get(sys.argv[1]).json()["backend"] for _ in range(5)]
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("grpc", "envoy")
                or m.startswith("meshclient.xds"))
print(json.dumps({"bodies": bodies, "loaded": loaded}))
"""


def _child(env: dict[str, str], url: str) -> dict[str, object]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("MESHCLIENT_", "GRPC_XDS_"))}
    out = subprocess.run([sys.executable, "-c", _CHILD, url], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, env={**clean, "PYTHONPATH": str(ROOT), **env})
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))



def test_grpc_xds_bootstrap_routes_the_default_transport(world: XdsWorld,
                                                         tmp_path: Path) -> None:
    world.split({"c-1": 100})
    bootstrap = tmp_path / "bootstrap.json"
    bootstrap.write_text(json.dumps(world.server.bootstrap("env-node")))
    got = _child({"GRPC_XDS_BOOTSTRAP": str(bootstrap)}, URL + "/")
    assert got["bodies"] == ["backend-1"] * 5
    assert any(str(m).startswith("meshclient.xds") for m in got["loaded"])  # type: ignore[attr-defined]
    assert any(r.node == "env-node" for r in world.server.acks)


def test_without_a_bootstrap_nothing_xds_is_imported(world: XdsWorld) -> None:
    got = _child({}, world.cluster[0].url + "/")
    assert got["bodies"] == ["backend-0"] * 5
    assert got["loaded"] == []
