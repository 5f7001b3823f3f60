"""After routing, the destination's guard applies (Envoy: TLS, credentials and limits belong
to the destination cluster): a split to another service gets that service's credential,
TLS and limits, never the routed name's; a mirror copy gets no credential. Both shells,
real loopback backends and a real mTLS server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import meshclient
from meshclient.context import MIRROR_HEADER
from meshclient.policy import Policy
from meshclient.testing import LoopbackCluster
from tests.integration.test_mtls import Pki
from tests.servers.helpers import wait_until
from tests.servers.mtls import TlsServer

ALONE = {"retry": {"attempts": 1}, "breaker": {"failures": 10000},
         "outlier": {"consecutive_failures": 0}}


@pytest.fixture
def tokens(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {"FRONT_TOKEN": "front-secret-1", "BACK_TOKEN": "back-secret-2"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def bearer(env: str) -> dict[str, Any]:
    return {"bearer": {"token_env": env}}


def prefix(path: str, **rule: Any) -> dict[str, Any]:
    return {"match": {"path": {"prefix": path}}, **rule}


def split_policy(cluster: LoopbackCluster, back: dict[str, Any] | None = None,
                 **front: Any) -> Policy:
    """`front` (backend-0, its own token) routes /v2 to `back` (backend-1, another token),
    /plain to `plain` (backend-2, no auth), /half 50/50 between itself and `back`, and
    mirrors /mirror to `back`."""
    return Policy.from_dict({"services": {
        "front": {"endpoints": [cluster[0].address], "auth": bearer("FRONT_TOKEN"), **ALONE,
                  "routes": [prefix("/v2", to=[{"service": "back"}]),
                             prefix("/plain", to=[{"service": "plain"}]),
                             prefix("/half", to=[{"service": "front", "weight": 1},
                                                 {"service": "back", "weight": 1}]),
                             prefix("/mirror", mirror={"to": "back", "percent": 100})],
                  **front},
        "back": {"endpoints": [cluster[1].address], "auth": bearer("BACK_TOKEN"), **ALONE,
                 **(back or {})},
        "plain": {"endpoints": [cluster[2].address], **ALONE},
    }})


def auth_headers(cluster: LoopbackCluster, i: int) -> list[str | None]:
    return [next((v for k, v in h.items() if k.lower() == "authorization"), None)
            for _m, _p, h, _b in cluster[i].requests]


def test_a_split_carries_the_destinations_credential_only(mesh, cluster, tokens) -> None:
    caller = mesh(split_policy(cluster))
    assert caller.get("http://front/x").json()["backend"] == "backend-0"
    assert caller.get("http://front/v2/x").json()["backend"] == "backend-1"
    assert caller.get("http://front/plain/x").json()["backend"] == "backend-2"
    for _ in range(20):
        caller.get("http://front/half")
    assert auth_headers(cluster, 0) == ["Bearer front-secret-1"] * cluster[0].hits
    assert auth_headers(cluster, 1) == ["Bearer back-secret-2"] * cluster[1].hits
    assert auth_headers(cluster, 2) == [None]  # a destination without auth: nothing
    assert cluster[0].hits > 1 and cluster[1].hits > 1  # the 50/50 split went both ways
    # the split keeps the logical Host of the request, as Envoy does
    assert {h["Host"] for _m, _p, h, _b in cluster[1].requests} == {"front"}


def test_a_mirror_copy_never_gets_a_credential(mesh, cluster, tokens) -> None:
    caller = mesh(split_policy(cluster))
    assert caller.get("http://front/mirror").json()["backend"] == "backend-0"
    wait_until(lambda: cluster[1].hits == 1)
    (mirrored,) = cluster[1].requests
    assert mirrored[2][MIRROR_HEADER] == "1"
    assert auth_headers(cluster, 1) == [None]  # not the routed name's, not its own
    assert auth_headers(cluster, 0) == ["Bearer front-secret-1"]


def test_a_split_is_held_to_the_destinations_limits(mesh, cluster, tokens) -> None:
    one = {"rate": 0.1, "burst": 1, "adaptive_k": 0}
    caller = mesh(split_policy(cluster, back={"limits": one}, limits=one))
    assert caller.get("http://front/v2/a").status_code == 200  # back's one token
    with pytest.raises(meshclient.RateLimited, match="service 'back'") as info:
        caller.get("http://front/v2/b")
    assert info.value.service == "back"
    assert caller.get("http://front/x").status_code == 200  # front's token was not spent
    with pytest.raises(meshclient.RateLimited, match="service 'front'"):
        caller.get("http://front/x")
    assert (cluster[0].hits, cluster[1].hits) == (1, 1)


def test_a_split_to_a_tls_service_uses_its_tls(mesh, cluster, tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    cert, key = pki.server_files("secure", dns=("secure",))  # the destination's name only
    with TlsServer(str(pki.ca_file), cert, key) as server:
        caller = mesh(Policy.from_dict({"services": {
            "front": {"endpoints": [cluster[0].address], **ALONE,
                      "routes": [prefix("/v2", to=[{"service": "secure"}])]},
            "secure": {"scheme": "https", "endpoints": [server.address], "tls": pki.tls(),
                       **ALONE},
        }}))
        assert caller.get("http://front/x").json()["backend"] == "backend-0"
        body = caller.get("http://front/v2/hello").json()
        assert body["cn"] == "client-1"  # the destination's client certificate was shown
        assert body["headers"]["Host"] == "front"
