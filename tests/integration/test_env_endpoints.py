"""`MESHCLIENT_ENDPOINTS_<SERVICE>` with a dotted service name: requests to that host go
through the mesh to the listed endpoints. Both shells."""

from __future__ import annotations

import warnings

import pytest

from meshclient.testing import LoopbackCluster


def test_a_dotted_service_from_the_environment_is_routed(
        mesh, cluster: LoopbackCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESHCLIENT_ENDPOINTS_API__EXAMPLE__COM", ",".join(cluster.addresses))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        caller = mesh(None)
    assert "api.example.com" in caller.store.current.resolved
    for _ in range(6):
        r = caller.get("http://api.example.com/whoami")
        assert r.status_code == 200
        assert r.json()["headers"]["Host"] == "api.example.com"
    assert sum(cluster.hits()) == 6  # every call reached a backend of the mesh
